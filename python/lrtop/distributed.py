"""Commands across DDP ranks. Rank 0 reads the socket; at every step boundary every rank calls `exchange()`, which
broadcasts rank 0's accepted command records so each rank applies the same commands at the same step.

No pickle: `broadcast_object_list` pickles, so the records travel as UTF-8 JSON bytes in a uint8 tensor, preceded by
a one-element int64 length broadcast (the only collective when nothing is pending). Receivers re-parse every record's
text with the command parser before applying it.
"""
from __future__ import annotations

import json
import sys
from typing import Optional

import torch

MAX_PAYLOAD = 1 << 20
# Where a record may come from: a viewer, the guard, the API, a find-lr sweep's end, a signal (SIGUSR1's checkpoint).
ORIGINS = ("socket", "guard", "api", "sweep", "signal")


class CommandChannel:
    def __init__(self, distributed: bool):
        self.distributed = distributed
        self._device: Optional[torch.device] = None
        self._length = torch.zeros(1, dtype=torch.int64)

    def _dev(self) -> torch.device:
        """Where the exchanged tensors live: the CPU for gloo, the current CUDA device for NCCL."""
        if self._device is None:
            backend = torch.distributed.get_backend()
            if backend == "nccl":
                self._device = torch.device("cuda", torch.cuda.current_device())
            else:
                self._device = torch.device("cpu")
            self._length = torch.zeros(1, dtype=torch.int64, device=self._device)
        return self._device

    def agree(self, value: int) -> int:
        """Rank 0's `value` on every rank (one broadcast; at attach, not per step)."""
        if not self.distributed:
            return value
        self._dev()
        length = self._length
        length.fill_(int(value))
        torch.distributed.broadcast(length, src=0)
        return int(length.item())

    def exchange(self, records: list[dict]) -> list[dict]:
        """On rank 0: sends `records`, or as many of the first ones as fit in `MAX_PAYLOAD` bytes, and returns what it
        sent (the caller carries the rest to the next boundary; nothing raises on one rank alone). Elsewhere: returns
        what rank 0 sent (validated shape)."""
        if not self.distributed:
            return records
        dist = torch.distributed
        device = self._dev()
        rank = dist.get_rank()
        length = self._length
        if rank == 0:
            payload = json.dumps(records, separators=(",", ":")).encode() if records else b""
            while len(payload) > MAX_PAYLOAD and records:
                records = records[:len(records) // 2]
                payload = json.dumps(records, separators=(",", ":")).encode() if records else b""
            length.fill_(len(payload))
        dist.broadcast(length, src=0)
        n = int(length.item())
        if n == 0:
            return records if rank == 0 else []
        if not 0 < n <= MAX_PAYLOAD:
            raise RuntimeError(f"lrtop: bad command payload length {n} from rank 0")
        if rank == 0:
            buf = torch.frombuffer(bytearray(payload), dtype=torch.uint8).to(device)
        else:
            buf = torch.empty(n, dtype=torch.uint8, device=device)
        dist.broadcast(buf, src=0)
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
                reason = r.get("reason")
                out.append({"text": r["text"][:4096], "origin": r["origin"],
                            "reason": reason if isinstance(reason, str) else None})
        return out
