"""A step's values (loss, grad norm, loss scale, metrics) read without a host-device sync, and the GPU's memory.

The interface the run log and the socket's record path rely on:

- `DeviceValues.value(x)` at a step turns what `run.step()` was given into a float now (a Python number, a CPU
  tensor: nothing to wait for) or a `Deferred` (a tensor on a CUDA device): its value comes later.
- A step record is queued as the tuple `(step, epoch, lrs, loss, grad_norm, samples_per_sec, wall_time, extra)`
  (runlog.py) whose `loss`, `grad_norm` and values of `extra` may be `Deferred`. `record_ready(item)` says whether
  every value of a queued record has arrived; whoever encodes records (the socket's service thread) encodes them in
  order and stops at the first one that is not ready: it holds the ones behind it, so records stay in step order.
  `float(d)` of a ready `Deferred` is its value (runlog.resolved(v): its JSON form).
- Deferred values are gathered per device into a window; at the step boundary that closes the window (every
  `INTERVAL` seconds or `MIN_STEPS` steps, whichever is later; at `CAPACITY` values at once) the window's tensors are
  stacked into one tensor, copied to pinned host memory with `non_blocking=True`, and a CUDA event is recorded behind
  the copy. A value is ready once `Event.query()` says the copy is done (never `synchronize()`). So a record is
  written one window after its step at the earliest, plus however far the GPU runs behind the CPU (usually a step or
  two); `flush(wait=True)` (at close, at pause) waits for the copies, which is allowed off the steady state.
- CPU tensors take the direct path: `item()` of a CPU tensor waits for nothing. `defer_cpu=True` (or the environment
  variable LRTOP_DEFERRED_VALUES=1) sends them through the windows as well: the GPU's path, exercised without a GPU
  (the zero-sync tests do so with a tensor subclass that counts blocking conversions).

Nothing here grows with the run: a window holds at most `CAPACITY` tensors, the pinned buffers are a pool of at most
`MAX_HOST_BUFFERS` reused ones.
"""
from __future__ import annotations

import math
import os
import threading
import time
from typing import Any, Optional, Union

import torch

# A window closes at the boundary where both hold: this long since it opened, and this many steps in it.
INTERVAL = 0.1
MIN_STEPS = 8
# Values in a window at most (a window this full closes at once).
CAPACITY = 1024
# Pinned host buffers in flight at most; beyond (the GPU more than this many windows behind), the oldest copy is
# waited for: the CUDA launch queue keeps the CPU that close to the GPU anyway.
MAX_HOST_BUFFERS = 8


class Deferred:
    """One value of a step that lives on a device: ready once its window's copy to the host is done."""
    __slots__ = ("_window", "_index")

    def __init__(self, window: "_Window", index: int):
        self._window = window
        self._index = index

    def ready(self) -> bool:
        return self._window.done()

    def __float__(self) -> float:
        values = self._window.values()
        if values is None:
            raise RuntimeError("lrtop: a device value was read before its copy to the host finished")
        return values[self._index]

    def __repr__(self) -> str:
        return f"Deferred({float(self)!r})" if self.ready() else "Deferred(pending)"


Value = Union[float, Deferred]


class _Window:
    """The deferred values of one device between two copies, then their copy to the host."""
    __slots__ = ("device", "tensors", "opened", "steps", "host", "event", "n", "_values", "_lock")

    def __init__(self, device: torch.device, now: float):
        self.device = device
        self.tensors: list[torch.Tensor] = []
        self.opened = now
        self.steps = 0
        self.host: Optional[torch.Tensor] = None  # set once closed: the host copy (pinned on CUDA)
        self.event: Any = None  # the CUDA event behind the copy; None where there is nothing to wait for
        self.n = 0
        self._values: Optional[list[float]] = None
        self._lock = threading.Lock()

    def done(self) -> bool:
        if self._values is not None:
            return True
        if self.host is None:
            return False
        event = self.event
        if event is not None and not event.query():
            return False
        self.values()
        return True

    def values(self) -> Optional[list[float]]:
        """The window's values once copied (read once, by whichever thread asks first)."""
        if self._values is None:
            with self._lock:
                if self._values is None:
                    host = self.host
                    if host is None or (self.event is not None and not self.event.query()):
                        return None
                    self._values = host[:self.n].tolist()  # a host tensor: no device is involved
                    self.host = None
                    self.event = None
        return self._values


class DeviceValues:
    """Turns a step's values into floats now or `Deferred` ones, and copies the windows at display cadence."""

    def __init__(self, defer_cpu: Optional[bool] = None, interval: float = INTERVAL, min_steps: int = MIN_STEPS):
        if defer_cpu is None:
            defer_cpu = os.environ.get("LRTOP_DEFERRED_VALUES", "") not in ("", "0")
        self.defer_cpu = defer_cpu
        self.interval = interval
        self.min_steps = min_steps
        self._open: dict[torch.device, _Window] = {}
        self._in_flight: list[_Window] = []  # closed windows whose values are not read yet, oldest first
        # Pinned buffers and the window whose copy each holds (None: free); a buffer is reused once that window's
        # values are read (`done()` reads them as soon as its event says the copy is complete).
        self._host_pool: list[tuple[torch.Tensor, Optional[_Window]]] = []
        self.any_deferred = False

    def value(self, x: Any) -> Value:
        """A step's value: a float now, or a `Deferred` one for a device tensor. NaN for what is not a number."""
        if x is None:
            return math.nan
        if isinstance(x, torch.Tensor):
            n = x.numel()
            if x.is_cpu and not self.defer_cpu:  # the direct path: nothing to wait for
                return float(x.item()) if n == 1 else float(x.detach().float().mean().item()) if n else math.nan
            t = x.detach()
            if n != 1:
                if n == 0:
                    return math.nan
                t = t.float().mean()
            return self._defer(t)
        try:
            return float(x)
        except (TypeError, ValueError):
            return math.nan

    def _defer(self, t: torch.Tensor) -> Deferred:
        if t.dim():
            t = t.reshape(())
        device = t.device
        window = self._open.get(device)
        if window is None:
            window = self._open[device] = _Window(device, time.perf_counter())
            self.any_deferred = True
        tensors = window.tensors
        tensors.append(t)
        return Deferred(window, len(tensors) - 1)

    def end_step(self, now: float) -> None:
        """At each step boundary: counts the step in the open windows and closes those that are due."""
        if not self._open:
            return
        for device, window in list(self._open.items()):
            window.steps += 1
            if len(window.tensors) >= CAPACITY or \
                    (window.steps >= self.min_steps and now - window.opened >= self.interval):
                self._close(device, window)

    def flush(self, wait: bool = False) -> None:
        """Closes every open window now; with `wait`, also waits until every copy is done (off the steady state:
        at a pause, at close)."""
        for device, window in list(self._open.items()):
            self._close(device, window)
        if wait:
            for window in self._in_flight:
                if window.event is not None:
                    window.event.synchronize()
                window.values()
            self._in_flight.clear()

    def _close(self, device: torch.device, window: _Window) -> None:
        del self._open[device]
        tensors = window.tensors
        window.n = n = len(tensors)
        if n == 0:
            return
        stacked = torch.stack(tensors)  # promotes to the widest dtype given: one kernel for the window
        window.tensors = []
        if stacked.dtype != torch.float64 and stacked.dtype != torch.float32:
            stacked = stacked.float()
        if device.type == "cuda":
            host, slot = self._host_buffer(stacked.dtype)
            host[:n].copy_(stacked, non_blocking=True)
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(device))
            window.event = event
            window.host = host
            self._host_pool[slot] = (host, window)
        elif device.type == "cpu":
            window.host = stacked.to("cpu", non_blocking=True)  # the tensor itself: nothing to copy or wait for
        else:  # another accelerator (MPS, XPU): a blocking copy, the one place a sync remains
            window.host = stacked.to("cpu")
        self._in_flight = [w for w in self._in_flight if not w.done()]
        self._in_flight.append(window)

    def _host_buffer(self, dtype: torch.dtype) -> tuple[torch.Tensor, int]:
        """A pinned buffer no window still needs (reused), or a new one while the pool has room."""
        pool = self._host_pool
        for i, (buf, window) in enumerate(pool):
            if buf.dtype == dtype and (window is None or window.done()):
                return buf, i
        if len(pool) < MAX_HOST_BUFFERS:
            pool.append((torch.empty(CAPACITY, dtype=dtype, pin_memory=True), None))
            return pool[-1][0], len(pool) - 1
        # The GPU is more than MAX_HOST_BUFFERS windows behind: wait for the oldest copy (off the steady state: the
        # CUDA launch queue keeps the CPU closer to the GPU than this).
        i = next((i for i, (buf, _) in enumerate(pool) if buf.dtype == dtype), 0)
        buf, window = pool[i]
        if window is not None:
            if window.event is not None:
                window.event.synchronize()
            window.values()
        if buf.dtype != dtype:
            buf = torch.empty(CAPACITY, dtype=dtype, pin_memory=True)
            pool[i] = (buf, None)
        return buf, i


def ready(v: Any) -> bool:
    return type(v) is not Deferred or v.ready()


def record_ready(item: tuple) -> bool:
    """Whether every value of a queued step record has arrived (see the module's docstring)."""
    if type(item[3]) is Deferred and not item[3].ready():
        return False
    if type(item[4]) is Deferred and not item[4].ready():
        return False
    extra = item[7]
    if extra:
        for v in extra.values():
            if type(v) is Deferred and not v.ready():
                return False
    return True


# ---------------------------------------------------------------------------------------------------- GPU memory

def gpu_stats(device: Optional[torch.device] = None) -> Optional[dict]:
    """The GPU's memory (and utilisation, with nvidia-ml-py installed) since the last call, as the reserved metrics
    of docs/runlog.md; None without CUDA. None of these calls waits for the stream: `max_memory_allocated`,
    `memory_reserved` and `reset_peak_memory_stats` read and reset the caching allocator's counters on the host;
    `mem_get_info` is `cudaMemGetInfo` (a driver query, not ordered with the stream); utilisation is NVML's, which
    does not touch CUDA at all."""
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return None
    try:
        index = torch.cuda.current_device() if device is None or device.index is None else device.index
        stats = {"gpu_mem_peak": float(torch.cuda.max_memory_allocated(index)),
                 "gpu_mem_reserved": float(torch.cuda.memory_reserved(index))}
        torch.cuda.reset_peak_memory_stats(index)  # the next window's peak is its own, not the run's
        free, total = torch.cuda.mem_get_info(index)
        stats["gpu_mem_total"] = float(total)
        stats["gpu_mem_free"] = float(free)
    except Exception:  # a driver that does not answer: no memory figures, never a failed step
        return None
    util = _gpu_util(index)
    if util is not None:
        stats["gpu_util"] = util
    return stats


_nvml_failed = False


def _gpu_util(index: int) -> Optional[float]:
    """NVML's utilisation (torch maps CUDA's index to NVML's, CUDA_VISIBLE_DEVICES included); None without it."""
    global _nvml_failed
    if _nvml_failed:
        return None
    try:
        return float(torch.cuda.utilization(index))
    except Exception:  # nvidia-ml-py not installed, or no NVML here: no utilisation figure
        _nvml_failed = True
        return None
