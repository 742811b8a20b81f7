"""What a bridged run does when its process is signalled: it writes what it holds, then behaves as the process would
have without lrtop.

SIGTERM (Slurm's `scancel` and preemption, `timeout`, Kubernetes, `mp.spawn` tearing down its workers), SIGINT
(Ctrl-C) and SIGHUP (the SSH session gone) each end with the log flushed. The handler that was installed before
lrtop's (the user's, Lightning's, Python's own) still decides what happens next:

- the default action (terminate): lrtop ends the log (`interrupted`), removes its socket, restores the default and
  sends the signal again, so the process dies of it as it would have (the same exit status);
- ignored: lrtop ignores it too;
- a Python handler: lrtop flushes the log, notes the signal, and calls it. If it raises (Python's SIGINT handler
  raises KeyboardInterrupt), the exception goes on as before and the run's end record, written where that exception
  ends the run (`with run:`, a framework's exception hook, or at interpreter exit), says `interrupted`. If it returns
  (Lightning's notes the SIGTERM and stops at its next check), the run goes on until the framework stops it.

SIGUSR1 (Slurm's warning before the time limit, `sbatch --signal`): a checkpoint at the next step boundary and an
event, then the previous Python handler if there is one (Lightning's requeue); its default action (terminate) is
not taken.

Handlers can only be installed from the main thread; elsewhere the run goes without them.
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable, Optional

STOPPING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
WARNING = signal.SIGUSR1
# When a signal lands while the main thread is writing the log, it is delivered again this much later.
REDELIVERY_DELAY = 0.02


class SignalHandlers:
    """Chains a run's handlers in front of the ones installed before; `uninstall()` puts those back."""

    def __init__(self, *, note: Callable[[int], None], flush: Callable[[], None],
                 finish: Callable[[int], None], warning: Callable[[], None], busy: Callable[[], bool]):
        self._note, self._flush, self._finish, self._warning, self._busy = note, flush, finish, warning, busy
        self._previous: dict[int, Any] = {}
        self.active = False
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOPPING + (WARNING,):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except (ValueError, OSError):
                continue
        self.active = True

    def uninstall(self) -> None:
        """Puts the previous handlers back where lrtop's is still the installed one (a handler installed after
        lrtop's, a framework's, stays; lrtop's then only passes signals on)."""
        self.active = False
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous.items():
            try:
                if signal.getsignal(signum) == self._handle:
                    signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            except (ValueError, OSError):
                pass

    def _handle(self, signum: int, frame: Any) -> None:
        previous = self._previous.get(signum)
        if not self.active:
            _pass_on(signum, frame, previous)
            return
        if signum == WARNING:
            self._warning()
            if callable(previous):
                previous(signum, frame)
            return
        if previous == signal.SIG_IGN:
            return
        if self._busy():
            # The main thread was interrupted inside the log's flush: writing now could interleave with it.
            threading.Timer(REDELIVERY_DELAY, os.kill, (os.getpid(), signum)).start()
            return
        self._note(signum)
        if callable(previous):
            self._flush()
            previous(signum, frame)  # may raise (KeyboardInterrupt): the run's end record is written where it ends
            return
        self._finish(signum)
        self.uninstall()
        _pass_on(signum, frame, previous)


def _pass_on(signum: int, frame: Any, previous: Optional[Any]) -> None:
    """Does what the handler before lrtop's would have done."""
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    elif signum != WARNING:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
