"""Commands across DDP ranks, with no collective per step. Rank 0 reads the socket; the ranks exchange at the step
boundaries `due(step)` names: every step for the first `WARMUP` steps, then every K-th step, K a pure function of the
step (every rank reaches the same decision without talking: torchtitan's rule). Rank 0 picks K at the warm-up's last
exchange from its measured step time so that a command waits about `TARGET_WAIT` at most, sends it in that exchange,
and K is fixed thereafter. Commands wait on rank 0 for the next exchange; an exchanged command applies at the step of
that exchange on every rank (the exchange carries the step; a rank at another step says so). Pause, stop, rollback and
find-lr therefore still take effect at the same step everywhere; while paused every rank exchanges on each poll.

One exchange is one `all_gather` of a small float64 vector per rank (rank 0's command payload length and K, each
rank's step and its step times over the window since the last exchange: mean, max, time since its last step), plus,
only when commands are pending, one broadcast of their payload. Under NCCL the exchange runs over a gloo group of its
own: CPU tensors, so reading what arrived never waits for the GPU.

No pickle: `broadcast_object_list` pickles, so the records travel as UTF-8 JSON bytes in a uint8 tensor. Receivers
re-parse every record's text with the command parser before applying it.
"""
from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, Optional

import torch

MAX_PAYLOAD = 1 << 20
# Where a record may come from: a viewer, the guard, the API, a find-lr sweep's end, a signal (SIGUSR1's checkpoint).
ORIGINS = ("socket", "guard", "api", "sweep", "signal")
# Steps exchanged one by one while rank 0 measures the step time; then every K-th.
WARMUP = 8
# How long a command waits for its exchange, at most (about): K = TARGET_WAIT / the step time.
TARGET_WAIT = 0.1
MAX_K = 10_000
# The vector each rank gives to the all_gather.
_LENGTH, _K, _STEP, _MEAN, _MAX, _SINCE = range(6)
_FIELDS = 6


class CommandChannel:
    def __init__(self, distributed: bool):
        self.distributed = distributed
        self._device: Optional[torch.device] = None
        self._group: Any = None  # a ProcessGroup of lrtop's own (gloo beside NCCL), or None: the default group
        self._length = torch.zeros(1, dtype=torch.int64)
        self.k: Optional[int] = None  # fixed at the warm-up's last exchange
        # This rank's step times since the last exchange.
        self._sum = 0.0
        self._max = 0.0
        self._count = 0
        self._last_step = time.perf_counter()
        self._measured = 0.0  # rank 0: step time summed over the warm-up, and its steps
        self._measured_steps = 0
        self.ranks: Optional[list[dict]] = None  # every rank's figures at the last exchange
        self._warned_step = False

    def _dev(self) -> torch.device:
        """Where the exchanged tensors live: the CPU (gloo; a gloo group of lrtop's own beside NCCL)."""
        if self._device is None:
            dist = torch.distributed
            if dist.get_backend() != "gloo":
                try:
                    self._group = dist.new_group(backend="gloo")  # every rank calls this at attach
                    self._device = torch.device("cpu")
                except Exception:  # no gloo in this build: over the main group's device (a sync per exchange)
                    self._device = torch.device("cuda", torch.cuda.current_device())
            else:
                self._device = torch.device("cpu")
            self._length = torch.zeros(1, dtype=torch.int64, device=self._device)
            self._mine = torch.zeros(_FIELDS, dtype=torch.float64, device=self._device)
            self._all = [torch.zeros(_FIELDS, dtype=torch.float64, device=self._device)
                         for _ in range(dist.get_world_size())]
        return self._device

    def due(self, step: int) -> bool:
        """Whether the ranks exchange at this step's boundary (the same answer on every rank)."""
        k = self.k
        return k is None or step <= WARMUP or step % k == 0

    def count_step(self, elapsed: float, now: float) -> None:
        """Every rank, every step: its step time joins the window's (a few float operations)."""
        self._sum += elapsed
        self._count += 1
        if elapsed > self._max:
            self._max = elapsed
        self._last_step = now

    def agree(self, value: int) -> int:
        """Rank 0's `value` on every rank (one broadcast; at attach, not per step)."""
        if not self.distributed:
            return value
        self._dev()
        length = self._length
        length.fill_(int(value))
        torch.distributed.broadcast(length, src=0, group=self._group)
        return int(length.item())

    def exchange(self, records: list[dict], step: int = 0) -> list[dict]:
        """Every rank at the same boundary (`due(step)`, or each poll while paused). On rank 0: sends `records`, or as
        many of the first ones as fit in `MAX_PAYLOAD` bytes, and returns what it sent (the caller carries the rest to
        the next exchange; nothing raises on one rank alone). Elsewhere: returns what rank 0 sent (validated shape).
        Every rank's step times since the last exchange end up in `ranks`."""
        if not self.distributed:
            return records
        dist = torch.distributed
        device = self._dev()
        rank = dist.get_rank()
        now = time.perf_counter()
        mine = self._mine
        payload = b""
        if rank == 0:
            payload = json.dumps(records, separators=(",", ":")).encode() if records else b""
            while len(payload) > MAX_PAYLOAD and records:
                records = records[:len(records) // 2]
                payload = json.dumps(records, separators=(",", ":")).encode() if records else b""
            if step > 1:  # the first step's time holds the script's setup since attach (and compiling): not a step's
                self._measured += self._sum
                self._measured_steps += self._count
            k = self.k
            if k is None and step >= WARMUP and self._measured_steps:
                k = max(1, min(MAX_K, int(TARGET_WAIT / max(self._measured / self._measured_steps, 1e-9))))
            mine[_LENGTH] = len(payload)
            mine[_K] = k or 0
        count = self._count
        mine[_STEP] = step
        mine[_MEAN] = self._sum / count if count else math.nan  # no step since the last exchange (paused)
        mine[_MAX] = self._max if count else math.nan
        mine[_SINCE] = now - self._last_step
        self._sum = self._max = 0.0
        self._count = 0
        gathered = self._all
        dist.all_gather(gathered, mine, group=self._group)
        rows = [t.tolist() for t in gathered]  # CPU tensors (gloo): nothing waits for a GPU
        if self.k is None and rows[0][_K] >= 1:
            self.k = int(rows[0][_K])  # every rank learns K at the same exchange
        self.ranks = [{"rank": r, "step_time_mean": _seconds(row[_MEAN]), "step_time_max": _seconds(row[_MAX]),
                       "since_last_step": _seconds(row[_SINCE])} for r, row in enumerate(rows)]
        if any(int(row[_STEP]) != step for row in rows) and not self._warned_step:
            self._warned_step = True
            print(f"lrtop: rank {rank}: the ranks exchanged commands at different steps "
                  f"({', '.join(str(int(row[_STEP])) for row in rows)}): does every rank call run.step() once per "
                  "optimizer step?", file=sys.stderr, flush=True)
        n = int(rows[0][_LENGTH])
        if n == 0:
            return records if rank == 0 else []
        if not 0 < n <= MAX_PAYLOAD:
            raise RuntimeError(f"lrtop: bad command payload length {n} from rank 0")
        if rank == 0:
            buf = torch.frombuffer(bytearray(payload), dtype=torch.uint8).to(device)
        else:
            buf = torch.empty(n, dtype=torch.uint8, device=device)
        dist.broadcast(buf, src=0, group=self._group)
        if rank == 0:
            return records
        try:
            received = json.loads(bytes(buf.cpu().tolist()).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            print(f"lrtop: rank {rank}: the commands from rank 0 did not decode; none applied at this step",
                  file=sys.stderr, flush=True)
            return []
        out = []
        for r in received if isinstance(received, list) else []:
            if isinstance(r, dict) and isinstance(r.get("text"), str) and r.get("origin") in ORIGINS:
                reason, at = r.get("reason"), r.get("at")
                out.append({"text": r["text"][:4096], "origin": r["origin"],
                            "reason": reason if isinstance(reason, str) else None,
                            "at": at if isinstance(at, int) and not isinstance(at, bool) else None})
        return out


def _seconds(x: float) -> Optional[float]:
    """A gathered time, or None where there is none (no step in the window)."""
    return x if math.isfinite(x) else None
