"""The run log in lrtop's JSONL schema (docs/runlog.md), written the way the Swift `RunLogWriter` writes it: one JSON
object per line, keys in the writer's order, NaN/infinity as the strings "NaN"/"Infinity"/"-Infinity", buffered and
handed to the file at least once a second so `lrtop watch` and `lrtop attach` follow it live.
"""
from __future__ import annotations

import collections
import json
import math
import os
import threading
import time
from typing import Iterable, Optional

SCHEMA = 1
EVENT_KINDS = ("command", "error", "guard", "checkpoint", "rollback", "info")
END_REASONS = ("completed", "stopped", "interrupted", "diverged", "failed")


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def number(x) -> object:
    """A JSON number, or the string lrtop's schema uses for NaN and infinity."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


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


_STEP_KEYS = frozenset(("type", "step", "epoch", "lrs", "loss", "grad_norm", "samples_per_sec", "wall_time"))


def _step_line(item: tuple) -> str:
    """A queued step record, encoded exactly as `_ENCODER.encode` encodes the same dict, only faster."""
    step, epoch, lrs, loss, grad_norm, samples_per_sec, wall_time, extra = item
    if extra and not _STEP_KEYS.isdisjoint(extra):  # a metric named like a standard key replaces it, as dict.update
        record = {"type": "step", "step": step, "epoch": epoch, "lrs": numbers(lrs), "loss": number(loss),
                  "grad_norm": number(grad_norm), "samples_per_sec": number(samples_per_sec), "wall_time": wall_time}
        record.update(extra)
        return _ENCODER.encode(record) + "\n"
    line = (f'{{"type":"step","step":{step},"epoch":{epoch},"lrs":[{",".join(map(_json_number, lrs))}],'
            f'"loss":{_json_number(loss)},"grad_norm":{_json_number(grad_norm)},'
            f'"samples_per_sec":{_json_number(samples_per_sec)},"wall_time":{wall_time!r}')
    if extra:
        line += "," + ",".join(f"{_ENCODER.encode(str(k))}:{_ENCODER.encode(v)}" for k, v in extra.items())
    return line + "}\n"


FLUSH_INTERVAL = 1.0


class RunLogWriter:
    """Appends records to `path`; `flush()` hands buffered lines to the kernel (no fsync, as the Swift writer)."""

    # A loop that outruns the flushing thread (or one with no such thread) flushes by itself at this many records.
    MAX_QUEUED = 10000

    def __init__(self, path: str, start: float, flush_interval: float = FLUSH_INTERVAL):
        self.path = path
        self.start = start
        self.flush_interval = flush_interval
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        # Records wait here unencoded (a step record as a tuple, others as dicts): the training loop only appends,
        # and whoever flushes (the socket's service thread about once a second, or the loop at a pause, an end or
        # when too much is queued) encodes them, in order. deque.append/popleft are atomic, so the loop takes no
        # lock per step.
        self._queue: collections.deque = collections.deque()
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    def wall_time(self) -> float:
        return time.time() - self.start

    def _write(self, record: dict) -> None:
        self._queue.append(record)
        if len(self._queue) >= self.MAX_QUEUED:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        queue = self._queue
        if self._fd is None or not queue:
            self._last_flush = time.monotonic()
            return
        lines = []
        pop = queue.popleft
        try:
            while True:
                item = pop()
                lines.append(_step_line(item) if type(item) is tuple else _ENCODER.encode(item) + "\n")
        except IndexError:
            pass
        view = memoryview("".join(lines).encode("utf-8"))
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._last_flush = time.monotonic()

    def maybe_flush(self, interval: Optional[float] = None) -> None:
        """Flushes when the last flush is older than `interval` (default: the flush interval, a second for a run)."""
        if self._queue and time.monotonic() - self._last_flush >= (self.flush_interval if interval is None else interval):
            self.flush()

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                self._flush_locked()
                os.close(self._fd)
                self._fd = None

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

    def step(self, step: int, epoch: int, lrs: list[float], loss: float, grad_norm: float, samples_per_sec: float,
             extra: Optional[dict] = None) -> None:
        """Queued as a tuple and encoded at the flush, off the training loop's path. `lrs` must not be changed
        afterwards; `extra` holds JSON values only."""
        self._queue.append((step, epoch, lrs, loss, grad_norm, samples_per_sec, time.time() - self.start, extra))
        if len(self._queue) >= self.MAX_QUEUED:
            self.flush()

    def eval(self, step: int, epoch: int, loss: float, accuracy: float, extra: Optional[dict] = None) -> None:
        record = {"type": "eval", "step": step, "epoch": epoch, "loss": number(loss), "accuracy": number(accuracy),
                  "wall_time": self.wall_time()}
        if extra:
            record.update(extra)
        self._write(record)

    def event(self, step: int, kind: str, text: str, lrs_before: list[float], lrs_after: list[float],
              message: Optional[str] = None) -> None:
        assert kind in EVENT_KINDS, kind
        record = {"type": "event", "step": step, "kind": kind, "text": text, "lrs_before": numbers(lrs_before),
                  "lrs_after": numbers(lrs_after)}
        if message is not None:
            record["message"] = message
        record["wall_time"] = self.wall_time()
        self._write(record)

    def end(self, reason: str, step: int, epoch: int, final_loss: Optional[float] = None,
            best_eval_loss: Optional[float] = None, best_accuracy: Optional[float] = None,
            final_accuracy: Optional[float] = None, message: Optional[str] = None) -> None:
        assert reason in END_REASONS, reason
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
