"""Metric values (docs/runlog.md "Metrics"): what `run.step(**metrics)`, `run.eval(...)`, `run.log(...)` and the
framework callbacks hand over, read without a host-device synchronisation.

The loop calls `metric_values`: a number becomes a JSON number (or the schema's "NaN"/"Infinity"/"-Infinity"), a
one-element tensor on the CPU its value (no device involved), and a tensor on a device is kept, detached, in the
queued record: `resolve` reads it on the thread that encodes the record (the socket's service thread), so the training
loop never waits for the device. This pair is the one place tensor metrics are read (issue #23's device-value module
takes it over).
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch


def number(x: Any) -> object:
    """A JSON number, or the string lrtop's schema uses for NaN and infinity."""
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def metric_value(v: Any) -> Optional[object]:
    """`v` as a record holds it, or None when it is not a number (a string, a list: not a metric)."""
    if isinstance(v, torch.Tensor):
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


def metric_values(values: Optional[dict]) -> Optional[dict]:
    """The metrics of `values` by name (as strings), in their order; None when there are none."""
    if not values:
        return None
    out = {}
    for k, v in values.items():
        value = metric_value(v)
        if value is not None:
            out[str(k)] = value
    return out or None


def resolve(o: Any) -> object:
    """The JSON encoder's hook for what it cannot encode itself: a device tensor `metric_value` kept."""
    if isinstance(o, torch.Tensor):
        return number(o.item() if o.numel() == 1 else o.float().mean().item())
    raise TypeError(f"{type(o).__name__} is not a metric value")
