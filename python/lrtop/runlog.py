"""The run log in lrtop's JSONL schema (docs/runlog.md), written the way the Swift `RunLogWriter` writes it: one JSON
object per line, keys in the writer's order, NaN/infinity as the strings "NaN"/"Infinity"/"-Infinity", buffered and
handed to the file at least once a second so `lrtop watch` follows it live. Every line is whole: a record leaves
memory only once its line is in the file.

Each record is encoded once, off the training loop, and numbered by its line in the file (the header is line 0):
the same bytes go to the file and, through `lines_from`, to the viewers the socket pushes records to (docs/bridge.md
"Records, pushed"). The last `RING_LINES` written lines stay in memory beside the unwritten ones for a viewer that
joins.
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import json
import math
import os
import threading
import time
from typing import Callable, Iterable, Iterator, Optional

from .devicevalues import Deferred, Value, record_ready
from .metrics import number, resolve
from .safefs import create_file

SCHEMA = 2
EVENT_KINDS = ("command", "error", "guard", "checkpoint", "rollback", "info")
END_REASONS = ("completed", "stopped", "interrupted", "diverged", "failed")


# A metric's value may be a tensor kept from the loop (metrics.py): read here, on the thread that encodes, never there.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=resolve)


def resolved(v: object) -> object:
    """A queued value in JSON form: a ready `Deferred` (devicevalues.py) as its number, anything else as it is."""
    return number(float(v)) if type(v) is Deferred else v


def numbers(xs: Iterable) -> list:
    return [number(x) for x in xs]


_INF = math.inf


def _json_number(x: float) -> str:
    """`number(x)` as the JSON encoder writes it (floats through `float.__repr__`, as `json` does)."""
    x = float(x)
    if x != x:
        return '"NaN"'
    if x == _INF:
        return '"Infinity"'
    if x == -_INF:
        return '"-Infinity"'
    return repr(x)


_STEP_KEYS = frozenset(("type", "step", "epoch", "lrs", "loss", "grad_norm", "samples_per_sec", "wall_time",
                        "metrics"))
_EVAL_KEYS = frozenset(("type", "step", "epoch", "loss", "accuracy", "wall_time", "metrics"))


def _with_metrics(record: dict, extra: Optional[dict], own: frozenset) -> dict:
    """`record` with the metrics in `extra` after its own keys; a metric named like one of the record's own keys goes
    in its `metrics` object, last (docs/runlog.md "Metrics")."""
    if extra:
        clashing = None
        for k, v in extra.items():
            if k in own:
                clashing = clashing or {}
                clashing[k] = v
            else:
                record[k] = v
        if clashing:
            record["metrics"] = clashing
    return record


def _step_line(item: tuple) -> str:
    """A queued step record, encoded exactly as `_ENCODER.encode` encodes the same dict, only faster."""
    step, epoch, lrs, loss, grad_norm, samples_per_sec, wall_time, extra = item
    if extra and not _STEP_KEYS.isdisjoint(extra):
        record = {"type": "step", "step": step, "epoch": epoch, "lrs": numbers(lrs), "loss": number(loss),
                  "grad_norm": number(grad_norm), "samples_per_sec": number(samples_per_sec), "wall_time": wall_time}
        return _ENCODER.encode(_with_metrics(record, {k: resolved(v) for k, v in extra.items()}, _STEP_KEYS)) + "\n"
    line = (f'{{"type":"step","step":{step},"epoch":{epoch},"lrs":[{",".join(map(_json_number, lrs))}],'
            f'"loss":{_json_number(loss)},"grad_norm":{_json_number(grad_norm)},'
            f'"samples_per_sec":{_json_number(samples_per_sec)},"wall_time":{wall_time!r}')
    if extra:
        line += "," + ",".join(f"{_ENCODER.encode(str(k))}:{_ENCODER.encode(resolved(v))}" for k, v in extra.items())
    return line + "}\n"


def _ready(item: object) -> bool:
    """Whether every value of a queued record has arrived: a step tuple's (devicevalues.record_ready), or a
    `metrics` record's (`run.log` of device tensors)."""
    if type(item) is tuple:
        return record_ready(item)
    metrics = item.get("metrics") if type(item) is dict else None
    return not metrics or all(type(v) is not Deferred or v.ready() for v in metrics.values())


def _encode(item: object) -> bytes:
    text = _step_line(item) if type(item) is tuple else _ENCODER.encode(item) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from an API caller's text: written as '?', never lost
        return text.encode("utf-8", "replace")


FLUSH_INTERVAL = 1.0


class RunLogWriter:
    """Appends records to the log file `name` in the folder descriptor `folder` (created with O_EXCL|O_NOFOLLOW: a
    new file, never one reached through a link); `flush()` hands buffered lines to the kernel (no fsync, as the Swift
    writer).

    A write that fails (a full disk, a quota) loses nothing and never raises into the training loop: the records stay
    queued, a line the disk cut in half is cut off the file again, and the next flush (about once a second) tries
    again; `on_trouble(message)` is called once when writing starts to fail and once when it works again. While the
    disk stays full the queue holds at most `MAX_HELD` records; step records beyond that are counted, not kept
    (`dropped_steps`), and the end record says so."""

    # A loop that outruns the flushing thread (or one with no such thread) flushes by itself at this many records.
    MAX_QUEUED = 10000
    # Records held in memory at most while writes fail (a step record is a tuple of about 200 bytes).
    MAX_HELD = 200_000
    RETRY_INTERVAL = 1.0
    # Lines already in the file that stay in memory too, for a viewer that joins (several seconds of a fast run).
    RING_LINES = 4096

    def __init__(self, folder: int, name: str, path: str, start: float, flush_interval: float = FLUSH_INTERVAL,
                 on_trouble: Optional[Callable[[str], None]] = None,
                 on_encoded: Optional[Callable[[object], None]] = None):
        self.path = path
        # Told each record as it is encoded (values arrived; off the loop): the status's figures (livefigures.py).
        self.on_encoded = on_encoded
        self.start = start
        self.flush_interval = flush_interval
        self.on_trouble = on_trouble
        self._fd: Optional[int] = create_file(folder, name, exclusive=True, append=True)
        # Records wait here unencoded (a step record as a tuple, others as dicts): the training loop only appends,
        # and whoever encodes (the socket's service thread: about once a second, or every round while a viewer takes
        # pushed records; the loop at a pause, an end or when too much is queued) takes them in order. deque.append
        # and popleft are atomic, so the loop takes no lock per step.
        self._queue: collections.deque = collections.deque()
        # Encoded lines (bytes, each with its newline), in order: `_written` of them, at the front, are in the file
        # already (the last RING_LINES kept for viewers that join); the rest wait for the file. `_first_line` is the
        # line number of the first. A record leaves memory only once its whole line is in the file.
        self._lines: collections.deque[bytes] = collections.deque()
        self._first_line = 0
        self._written = 0
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        # The thread inside a flush now (a signal handler on that thread must not flush again: see signals.py).
        self.flushing_thread: Optional[int] = None
        self.failing_since: Optional[float] = None
        self.trouble: Optional[str] = None  # the first failure, for the end record
        self.dropped_steps = 0
        self.dropped_range: Optional[tuple[int, int]] = None

    def wall_time(self) -> float:
        return time.time() - self.start

    def _write(self, record: dict) -> None:
        self._queue.append(record)
        if len(self._queue) >= self.MAX_QUEUED and self.failing_since is None and \
                self.flushing_thread != threading.get_ident():
            self.flush()

    def _encode_queued(self) -> None:
        """Under the lock: encodes the queued records into lines, in order. While the file takes nothing (a full
        disk) and `MAX_HELD` lines wait, step records are counted instead of kept."""
        queue, lines = self._queue, self._lines
        pop = queue.popleft
        observe = self.on_encoded
        for _ in range(len(queue)):
            # A record whose device values have not arrived yet (devicevalues.py) holds it and the ones behind it:
            # lines keep their order, so their numbers (the push path's) stay those of the file.
            if not _ready(queue[0]):
                break
            item = pop()
            if type(item) is tuple and self.failing_since is not None and \
                    len(lines) - self._written >= self.MAX_HELD:
                self.dropped_steps += 1
                step = item[0]
                self.dropped_range = (self.dropped_range[0] if self.dropped_range else step, step)
                continue
            if observe is not None:
                observe(item)
            lines.append(_encode(item))

    def lines_from(self, first: int) -> tuple[int, list[bytes]]:
        """The lines numbered `first` on that are in memory (written or not), encoding what is queued first, and the
        number of the first one returned: greater than `first` when those before it are only in the file."""
        with self._holding():
            self._encode_queued()
            lines = self._lines
            start = max(first, self._first_line)
            # By index from the right end (deque indexing walks from the nearer end): a viewer that is caught up asks
            # for the last few lines of thousands.
            return start, [lines[i] for i in range(start - self._first_line, len(lines))]

    def encode_queued(self) -> None:
        """Encodes the queued records whose values have arrived (`on_encoded` has seen them all then)."""
        with self._holding():
            self._encode_queued()

    def line_count(self) -> int:
        """How many lines the log has, written or not (encoding what is queued first)."""
        with self._holding():
            self._encode_queued()
            return self._first_line + len(self._lines)

    @contextlib.contextmanager
    def _holding(self) -> Iterator[None]:
        """The lock, with this thread named as the one inside (a signal handler on it must not flush: signals.py)."""
        with self._lock:
            self.flushing_thread = threading.get_ident()
            try:
                yield
            finally:
                self.flushing_thread = None

    def flush(self) -> bool:
        """Writes what is queued; False when the file would not take it (the records stay queued)."""
        with self._holding():
            return self._flush_locked()

    def _flush_locked(self) -> bool:
        self._last_flush = time.monotonic()
        self._encode_queued()
        lines = self._lines
        if self._fd is None or self._written == len(lines):
            return True
        data = b"".join(itertools.islice(lines, self._written, None))
        written = 0
        try:
            view = memoryview(data)
            while written < len(data):
                written += os.write(self._fd, view[written:])
        except OSError as e:
            whole = data.rfind(b"\n", 0, written) + 1
            if whole < written:
                self._cut(written - whole)
            self._written += data.count(b"\n", 0, whole)
            self._forget_written()
            self._failed(e)
            return False
        self._written = len(lines)
        self._forget_written()
        if self.failing_since is not None:
            seconds = time.monotonic() - self.failing_since
            self.failing_since = None
            self._tell(f"the run log {self.path} is written again after {seconds:.0f} s of failed writes"
                       + (f"; {self.dropped_steps} step records were dropped meanwhile" if self.dropped_steps
                          else "; no record was lost"))
        return True

    def _forget_written(self) -> None:
        """Keeps the last `RING_LINES` written lines in memory, no more."""
        lines = self._lines
        while self._written > self.RING_LINES:
            lines.popleft()
            self._written -= 1
            self._first_line += 1

    def _cut(self, extra: int) -> None:
        """Cuts the half line a failed write left at the file's end."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, os.fstat(self._fd).st_size - extra)
        except OSError:
            pass

    def _failed(self, e: OSError) -> None:
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            what = e.strerror or str(e)
            if self.trouble is None:
                self.trouble = what
            self._tell(f"cannot write the run log {self.path}: {what}; lrtop keeps its records in memory and writes "
                       "them when it can (training goes on)")

    def _tell(self, message: str) -> None:
        if self.on_trouble is not None:
            try:
                self.on_trouble(message)
            except Exception:
                pass

    def maybe_flush(self, interval: Optional[float] = None) -> None:
        """Flushes when the last flush is older than `interval` (default: the flush interval, a second for a run;
        0.05 s while a viewer watches, for viewers that read the file: over SSH); failed writes are retried at most
        once a second."""
        interval = self.flush_interval if interval is None else interval
        if self.failing_since is not None:
            interval = max(interval, self.RETRY_INTERVAL)
        if self.unwritten and time.monotonic() - self._last_flush >= interval:
            self.flush()

    def close(self) -> bool:
        """Flushes and closes; False when records could not be written (the disk is still full)."""
        with self._lock:
            ok = True
            if self._fd is not None:
                self.flushing_thread = threading.get_ident()
                try:
                    ok = self._flush_locked()
                finally:
                    self.flushing_thread = None
                os.close(self._fd)
                self._fd = None
            return ok

    @property
    def unwritten(self) -> int:
        return len(self._queue) + len(self._lines) - self._written

    @property
    def trouble_note(self) -> Optional[str]:
        """What the end record says about failed writes, or None when every write worked."""
        if self.trouble is None:
            return None
        note = f"the run log could not be written for a while ({self.trouble}); its records were held and written late"
        if self.dropped_range is not None:
            a, b = self.dropped_range
            note += f"; {self.dropped_steps} step records (steps {a}-{b}) were dropped while it could not"
        return note

    # Records, keys in the Swift writer's order.

    def header(self, *, version: str, start_time: str, seed: int, groups: list[str], steps_per_epoch: int,
               total_steps: Optional[int], config: dict, extra: dict) -> None:
        record = {"type": "header", "schema": SCHEMA, "lrtop_version": version, "start_time": start_time,
                  "seed": int(seed) & 0xFFFFFFFFFFFFFFFF, "groups": list(groups), "steps_per_epoch": int(steps_per_epoch)}
        if total_steps is not None:
            record["total_steps"] = int(total_steps)
        record["config"] = {str(k): str(v) for k, v in sorted(config.items())}
        record.update(extra)
        self._write(record)
        self.flush()

    def step(self, step: int, epoch: int, lrs: list[float], loss: Value, grad_norm: Value, samples_per_sec: float,
             extra: Optional[dict] = None) -> None:
        """Queued as a tuple and encoded at the flush, off the training loop's path. `lrs` must not be changed
        afterwards; `extra` holds JSON values only, or `Deferred` ones (so may `loss` and `grad_norm`): the record is
        written once they have arrived."""
        queue = self._queue
        if len(queue) >= self.MAX_QUEUED:
            if self.failing_since is None:
                self.flush()
            elif len(queue) + len(self._lines) - self._written >= self.MAX_HELD:
                # the disk has been full for a long while: count, do not hold
                self.dropped_steps += 1
                self.dropped_range = (self.dropped_range[0] if self.dropped_range else step, step)
                return
        queue.append((step, epoch, lrs, loss, grad_norm, samples_per_sec, time.time() - self.start, extra))

    def eval(self, step: int, epoch: int, loss: float, accuracy: float, extra: Optional[dict] = None) -> None:
        record = {"type": "eval", "step": step, "epoch": epoch, "loss": number(loss), "accuracy": number(accuracy),
                  "wall_time": self.wall_time()}
        self._write(_with_metrics(record, extra, _EVAL_KEYS))

    def metrics(self, step: int, values: dict) -> None:
        """A `metrics` record: metrics logged on their own, at any cadence (`run.log`); `values` as `extra`."""
        self._write({"type": "metrics", "step": step, "wall_time": self.wall_time(), "metrics": values})

    def event(self, step: int, kind: str, text: str, lrs_before: list[float], lrs_after: list[float],
              message: Optional[str] = None, command: Optional[dict] = None, result: Optional[dict] = None,
              ranks: Optional[int] = None) -> None:
        """An event; `command` is the parsed command's record (the shared vectors' form) beside its `text`, for
        command events and for error events of commands that parsed; `result` its outcome as data; `ranks`, under
        DDP, how many ranks applied it."""
        assert kind in EVENT_KINDS, kind
        record: dict = {"type": "event", "step": step, "kind": kind, "text": text}
        if command is not None:
            record["command"] = command
        if result:
            record["result"] = result
        record["lrs_before"] = numbers(lrs_before)
        record["lrs_after"] = numbers(lrs_after)
        if message is not None:
            record["message"] = message
        if ranks is not None:
            record["ranks"] = ranks  # DDP: the ranks that applied it, all at this step
        record["wall_time"] = self.wall_time()
        self._write(record)

    def end(self, reason: str, step: int, epoch: int, final_loss: Optional[float] = None,
            best_eval_loss: Optional[float] = None, best_accuracy: Optional[float] = None,
            final_accuracy: Optional[float] = None, message: Optional[str] = None) -> None:
        assert reason in END_REASONS, reason
        if self.failing_since is not None:
            self.flush()  # the note that writing works again (if it does) goes before the end, not after it
        record = {"type": "end", "reason": reason, "step": step, "epoch": epoch}
        for key, value in (("final_loss", final_loss), ("best_eval_loss", best_eval_loss),
                           ("best_accuracy", best_accuracy), ("final_accuracy", final_accuracy)):
            if value is not None:
                record[key] = number(value)
        record["wall_time"] = self.wall_time()
        if message is not None:
            record["message"] = message
        self._write(record)
        self.flush()
