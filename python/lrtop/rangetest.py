"""`find-lr` on a bridged run: the LR range test over the user's own next optimizer steps.

The bridge does not own the loop, so the sweep is a mode of the run rather than a loop of its own: when `find-lr`
applies at a step boundary, the run keeps an in-memory snapshot (weights, optimizer, scheduler and its shadow,
GradScaler, RNG, lrtop's own state); for each of the next optimizer steps the optimizer's pre-hook sets every group's
LR to the sweep's next LR and the scheduler is not stepped; `run.step()` records the loss into the curve and the
sub-run's log instead of the run's. When the curve stops (every step taken, the smoothed loss over 4x its minimum,
or a loss that is not finite), the snapshot is put back at that boundary and the run goes on from where it was.
The step count does not move during the sweep; the data the sweep trained on is consumed (a user's loop cannot be
rewound), which docs/bridge.md says.

Under DDP every rank sweeps (the `find-lr` command reaches every rank at the same step), and the decision to end
the sweep is rank 0's, sent to every rank with the commands at each boundary, so all ranks restore at the same step.
Commands that arrive during a sweep wait for its end. A paused run sweeps too (the TUI's `f` pauses before it
sends `find-lr`): the loop is let through for the sweep's steps and held again at its last boundary.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from . import commands as C
from ._version import __version__
from .findlr import Curve, Settings
from .runlog import RunLogWriter
from .safefs import FOLDER_MODE, close_quietly, open_folder

if TYPE_CHECKING:
    from .run import Run

# A sub-run's log is flushed this often: the live UI draws the curve from it while the sweep runs.
SUBRUN_FLUSH_INTERVAL = 0.1


@dataclass
class RangeTest:
    text: str
    command: C.FindLR
    pending: Any  # the _Pending that asked for it (answered when the sweep ends)
    curve: Curve
    snapshot: dict
    guard_state: dict
    lrs_before: list
    from_step: int
    started: float
    writer: Optional[RunLogWriter] = None
    folder: Optional[str] = None
    # Commands applied in the same boundary after `find-lr`: they wait for the sweep's end, on every rank alike.
    deferred: list = field(default_factory=list)


@dataclass
class RangeTestResult:
    """The last range test of a run, for headless users: `run.last_find_lr`."""
    from_step: int
    folder: Optional[str]
    lrs: list
    losses: list
    raw_losses: list
    stop: Optional[str]
    suggestions: dict
    summary: str
    seconds: float


class RangeTester:
    """The find-lr mode of a `Run` (see the module's text): the sweep in progress (`current`) and the last one's
    result (`last`, `run.last_find_lr`)."""

    def __init__(self, run: "Run"):
        self._run = run
        self.current: Optional[RangeTest] = None
        self.last: Optional[RangeTestResult] = None

    def start(self, command: C.FindLR, p: Any) -> None:
        run = self._run
        if self.current is not None:
            raise C.CommandError("a find-lr sweep is running already: it ends by itself")
        if run._model is None:
            raise C.CommandError("find-lr needs the model to put its weights back: pass model= to lrtop.attach")
        settings = Settings(command.start, command.end, command.count)
        snapshot = run._snapshot("find-lr")
        test = RangeTest(text=p.text, command=command, pending=p, curve=Curve(settings), snapshot=snapshot,
                         guard_state=run._guard.state_dict(), lrs_before=run.lrs, from_step=run._step,
                         started=time.time())
        if run._writer is not None:
            test.folder, test.writer = self._open_log(settings)
        self.current = test
        run._lr.frozen = True  # the sweep sets the LR; the schedule stands still until it is put back
        if run._server is not None:
            run._server.broadcast(run._status())

    def _open_log(self, settings: Settings) -> tuple[str, RunLogWriter]:
        """Makes `subruns/find-lr-STEP` (`-2`, `-3` ... when taken) and its log with the sub-run header."""
        run = self._run
        base = os.path.join(run._run_dir, "subruns")
        name, n = f"find-lr-{run._step}", 2
        subruns = sub = None
        try:
            subruns = open_folder("subruns", parent=run._folder, path=base, create=True, what="sub-runs folder")
            while True:
                try:
                    os.mkdir(name, FOLDER_MODE, dir_fd=subruns)
                    break
                except FileExistsError:
                    name, n = f"find-lr-{run._step}-{n}", n + 1
            folder = os.path.join(base, name)
            sub = open_folder(name, parent=subruns, path=folder, what="sub-run folder")
            writer = RunLogWriter(sub, "log.jsonl", os.path.join(folder, "log.jsonl"), time.time(),
                                  flush_interval=SUBRUN_FLUSH_INTERVAL)
        except OSError as e:
            raise C.CommandError(f"find-lr: cannot create its sub-run log in {os.path.join(base, name)}: "
                                 f"{e.strerror or e}; nothing changed") from None
        finally:
            close_quietly(sub)
            close_quietly(subruns)
        config = dict(run._config)
        config.update(settings.config_entries)
        writer.header(version=__version__,
                      start_time=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      seed=run._seed, groups=run._group_names, steps_per_epoch=run._steps_per_epoch or 0,
                      total_steps=settings.steps, config=config,
                      extra={"subrun": {"kind": "find-lr", "label": settings.command_text,
                                        "from_step": run._step, "parent": "../../run.jsonl"},
                             "source": "pytorch", "framework": run._framework, "world_size": run._world_size})
        return "subruns/" + name, writer

    def next_lr(self) -> Optional[float]:
        """The LR the next optimizer step trains with, while a sweep runs."""
        test = self.current
        return None if test is None else test.curve.next_lr

    def step(self, loss: float, elapsed: float, samples: Optional[int]) -> None:
        """`run.step()` during a sweep: the point on the curve and in the sub-run's log, then the boundary."""
        run = self._run
        test = self.current
        assert test is not None
        curve = test.curve
        lr = curve.next_lr
        if lr is not None:
            curve.append(lr, loss)
            if test.writer is not None:
                n = samples if samples is not None else run._batch_size
                test.writer.step(curve.count, run._epoch, [lr] * len(run._group_names), loss, math.nan,
                                 (n / elapsed) if n and elapsed > 0 else math.nan)
        # Every rank goes through the exchange; rank 0's curve decides, and every rank ends at the same boundary.
        done = run._channel.exchange([{"text": "find-lr end", "origin": "sweep", "reason": None}]
                                      if run._rank == 0 and curve.stop is not None else [])
        if any(r.get("origin") == "sweep" for r in done) or (not run._distributed and curve.stop is not None):
            self.finish()
            run._boundary()  # what waited applies here; a run paused before the sweep is held here again

    def finish(self, cut_short: Optional[str] = None) -> None:
        run = self._run
        test = self.current
        assert test is not None
        self.current = None
        run._lr.frozen = False
        curve = test.curve
        summary = curve.summary + (f" ({cut_short})" if cut_short else "")
        run._restore(test.snapshot)
        run._guard.load_state_dict(test.guard_state)
        run._optimizer.zero_grad(set_to_none=True)
        seconds = time.time() - test.started
        self.last = RangeTestResult(test.from_step, test.folder, list(curve.lrs), list(curve.losses),
                                            list(curve.raw_losses), curve.stop, curve.suggestions(), summary, seconds)
        if test.writer is not None:
            test.writer.end("completed" if curve.stop == "completed" else "stopped", curve.count, 0,
                            final_loss=curve.raw_losses[-1] if curve.raw_losses else None, message=summary)
            test.writer.close()
        message = (f"{test.folder}: " if test.folder else "") + summary
        result: dict = {"subruns": [test.folder]} if test.folder else {}
        named = [{"name": name, "lr": lr} for name, lr in self.last.suggestions.items() if lr is not None]
        if named:
            result["suggestions"] = named
        run._answer(test.pending, test.command, test.lrs_before, run.lrs, message, result or None)
        if run._rank == 0 and run._announce:
            print(f"lrtop: {test.text}: {message}", file=sys.stderr, flush=True)
        if run._server is not None:
            run._server.broadcast(run._status())
        for p in test.deferred:
            run._apply_accepted(p)
