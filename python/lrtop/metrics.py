"""Metric values (docs/runlog.md "Metrics"): what `run.step(**metrics)`, `run.eval(...)`, `run.log(...)` and the
framework callbacks hand over, read without a host-device synchronisation.

The loop calls `metric_values` with the run's `DeviceValues.value` (devicevalues.py, issue #23): a number becomes a
JSON number (or the schema's "NaN"/"Infinity"/"-Infinity"), a CPU tensor its value (no device involved), and a tensor
on a device a `Deferred` whose record the log holds until its window's copy to the host has arrived, so the training
loop never waits for the device. Without it (an eval, a find-lr sweep's sub-run: off the steady state) a device tensor
is kept, detached, in the queued record and `resolve` reads it on the thread that encodes the record.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch

from .devicevalues import Deferred, Value


def number(x: Any) -> object:
    """A JSON number, or the string lrtop's schema uses for NaN and infinity."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def metric_value(v: Any, device_value: Optional[Callable[[Any], Value]] = None) -> Optional[object]:
    """`v` as a record holds it, or None when it is not a number (a string, a list: not a metric). With
    `device_value` (the run's `DeviceValues.value`), a tensor becomes a float now or a `Deferred` that arrives a
    window later with no host-device sync (the step's and `run.log`'s path)."""
    if isinstance(v, torch.Tensor):
        if device_value is not None:
            x = device_value(v)
            return x if type(x) is Deferred else number(x)
        n = v.numel()
        if n == 0:
            return "NaN"
        v = v.detach()
        if n > 1:
            v = v.float().mean()  # queued on the device like any kernel; read later, as below
        if v.device.type == "cpu":
            return number(v.item())  # a CPU tensor: its memory, no device to wait for
        return v
    if isinstance(v, (bool, int, float)):
        return number(v)
    try:
        return number(v.__float__())  # NumPy scalars and the like
    except (AttributeError, TypeError, ValueError):
        return None


def metric_values(values: Optional[dict], device_value: Optional[Callable[[Any], Value]] = None) -> Optional[dict]:
    """The metrics of `values` by name (as strings), in their order; None when there are none."""
    if not values:
        return None
    out = {}
    for k, v in values.items():
        value = metric_value(v, device_value)
        if value is not None:
            out[str(k)] = value
    return out or None


def resolve(o: Any) -> object:
    """The JSON encoder's hook for what it cannot encode itself: a ready `Deferred` (devicevalues.py: the record was
    held until it is) or a device tensor `metric_value` kept (an eval's, off the steady state)."""
    if type(o) is Deferred:
        return number(float(o))
    if isinstance(o, torch.Tensor):
        return number(o.item() if o.numel() == 1 else o.float().mean().item())
    raise TypeError(f"{type(o).__name__} is not a metric value")
