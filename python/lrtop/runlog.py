"""The run log in lrtop's JSONL schema (docs/runlog.md), written the way the Swift `RunLogWriter` writes it: one JSON
object per line, keys in the writer's order, NaN/infinity as the strings "NaN"/"Infinity"/"-Infinity", buffered and
handed to the file at least once a second so `lrtop watch` and `lrtop attach` follow it live.
"""
from __future__ import annotations

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


class RunLogWriter:
    """Appends records to `path`; `flush()` hands buffered lines to the kernel (no fsync, as the Swift writer)."""

    FLUSH_INTERVAL = 1.0
    MAX_BUFFER = 1 << 20

    def __init__(self, path: str, start: float):
        self.path = path
        self.start = start
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._buffer: list[str] = []
        self._buffered = 0
        self._last_flush = time.monotonic()
        # The socket's service thread calls maybe_flush() too, so a line waits at most a second even while one
        # training step takes minutes.
        self._lock = threading.Lock()

    def wall_time(self) -> float:
        return time.time() - self.start

    def _write(self, record: dict) -> None:
        line = _ENCODER.encode(record) + "\n"
        with self._lock:
            self._buffer.append(line)
            self._buffered += len(line)
            due = time.monotonic() - self._last_flush >= self.FLUSH_INTERVAL or self._buffered >= self.MAX_BUFFER
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._fd is None or not self._buffer:
            self._last_flush = time.monotonic()
            return
        data = "".join(self._buffer).encode("utf-8")
        self._buffer.clear()
        self._buffered = 0
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._last_flush = time.monotonic()

    def maybe_flush(self) -> None:
        """Flushes when the last flush is more than a second old."""
        if self._buffer and time.monotonic() - self._last_flush >= self.FLUSH_INTERVAL:
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
        record = {"type": "step", "step": step, "epoch": epoch, "lrs": numbers(lrs), "loss": number(loss),
                  "grad_norm": number(grad_norm), "samples_per_sec": number(samples_per_sec),
                  "wall_time": self.wall_time()}
        if extra:
            record.update(extra)
        self._write(record)

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
