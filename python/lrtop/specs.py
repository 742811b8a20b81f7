"""Scheduler specs (`cosine:T_max=2000`, `warmup:steps=500 -> cosine`), resolved by the same rules as the Swift
`SchedulerFactory` (Sources/LROptim/Factories.swift, Specs/SpecSyntax.swift): the same names and aliases, the same
keys, the same defaults (PyTorch's), the same errors and the same canonical spec text.
"""
from __future__ import annotations

import builtins
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from .commands import float32_finite, swift_double


class SpecError(ValueError):
    """A spec that does not parse or validate; the message names the bad part and the valid choices."""


@dataclass(frozen=True)
class Kind:
    name: str
    aliases: tuple[str, ...]
    keys: tuple[str, ...]


KINDS = [
    Kind("constant", ("none",), ()),
    Kind("constantlr", ("ConstantLR",), ("factor", "total_iters")),
    Kind("step", ("StepLR",), ("step_size", "gamma")),
    Kind("multistep", ("MultiStepLR",), ("milestones", "gamma")),
    Kind("exp", ("exponential", "ExponentialLR"), ("gamma",)),
    Kind("cosine", ("CosineAnnealingLR",), ("T_max", "eta_min")),
    Kind("warm_restarts", ("cosine_restarts", "CosineAnnealingWarmRestarts"), ("T_0", "T_mult", "eta_min")),
    Kind("linear", ("LinearLR",), ("start_factor", "end_factor", "total_iters")),
    Kind("warmup", (), ("steps", "start_factor")),
    Kind("poly", ("polynomial", "PolynomialLR"), ("total_iters", "power")),
    Kind("onecycle", ("OneCycleLR",), ("max_lr", "total_steps", "pct_start", "anneal_strategy", "div_factor",
                                       "final_div_factor", "three_phase", "cycle_momentum")),
    Kind("cyclic", ("CyclicLR",), ("base_lr", "max_lr", "step_size_up", "step_size_down", "mode", "gamma",
                                   "cycle_momentum")),
    Kind("plateau", ("ReduceLROnPlateau",), ("mode", "factor", "patience", "threshold", "threshold_mode",
                                             "cooldown", "min_lr", "eps")),
]
NAMES = [k.name for k in KINDS]


def kind_named(name: str) -> Kind:
    for candidate in (name, name.lower()):
        for k in KINDS:
            if k.name == candidate or candidate in k.aliases:
                return k
    raise SpecError(f"unknown scheduler '{name}' (valid: {', '.join(NAMES)})")


def spec_number(x: float) -> str:
    """Integers without a fraction, others in shortest round-trip form (Swift's `specNumber`)."""
    if x == round(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


def py_repr(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "-inf" if x < 0 else "inf"
    return repr(float(x))


def _strip(s: str) -> str:
    return s.strip()


def parse_item(text: str) -> tuple[str, list[tuple[str, str]]]:
    """`name` or `name:key=value,...` -> (name, options in order)."""
    trimmed = _strip(text)
    if not trimmed:
        raise SpecError("empty scheduler spec")
    if ":" in trimmed:
        name, rest = trimmed.split(":", 1)
        name = _strip(name)
    else:
        name, rest = trimmed, ""
    if not name:
        raise SpecError(f"missing scheduler name in '{trimmed}'")
    options: list[tuple[str, str]] = []
    for raw in rest.split(","):
        part = _strip(raw)
        if not part:
            if not _strip(rest):
                continue
            raise SpecError(f"{name}: empty parameter in '{_strip(rest)}' (write key=value,key=value)")
        if "=" not in part:
            raise SpecError(f"{name}: malformed parameter '{part}' (expected key=value)")
        key, value = (_strip(s) for s in part.split("=", 1))
        if not key:
            raise SpecError(f"{name}: malformed parameter '{part}' (missing key)")
        if not value:
            raise SpecError(f"{name}: missing value for {key}")
        if any(k == key for k, _ in options):
            raise SpecError(f"{name}: parameter '{key}' given twice")
        options.append((key, value))
    return name, options


def parse_sequence(text: str) -> list[tuple[str, list[tuple[str, str]], Optional[int]]]:
    """`A -> @N B -> C` -> [(name, options, explicit start or None)]."""
    parts = text.split("->")
    out = []
    for i, raw in enumerate(parts):
        part = _strip(raw)
        at = None
        if part.startswith("@"):
            if i == 0:
                raise SpecError("'@N' marks where a later part of a '->' sequence starts; the first starts at 0")
            digits = ""
            for ch in part[1:]:
                if not ch.isdigit():
                    break
                digits += ch
            if not digits:
                raise SpecError(f"expected a step number after '@' in '{part}'")
            at = int(digits)
            part = _strip(part[1 + len(digits):])
        if not part:
            raise SpecError(f"empty part in scheduler sequence '{_strip(text)}'" if len(parts) > 1
                            else "empty scheduler spec")
        name, options = parse_item(part)
        out.append((name, options, at))
    return out


class _Options:
    """Typed access to a spec's options, with errors that name the owner, the key and what was expected."""

    def __init__(self, owner: str, options: list[tuple[str, str]], valid: tuple[str, ...]):
        self.owner = owner
        for k, _ in options:
            if k not in valid:
                listed = ", ".join(valid) if valid else "none"
                raise SpecError(f"{owner}: unknown parameter '{k}' (valid: {listed})")
        self.values = dict(options)

    def _bad(self, key: str, value: str, expected: str) -> SpecError:
        return SpecError(f"{self.owner}: invalid value '{value}' for {key}: expected {expected}")

    @staticmethod
    def _number(s: str) -> Optional[float]:
        d = swift_double(s.strip())
        return d if d is not None and math.isfinite(d) else None

    def double(self, key: str, default: Optional[float] = None) -> Optional[float]:
        s = self.values.get(key)
        if s is None:
            return default
        d = self._number(s)
        if d is None:
            raise self._bad(key, s, "a number")
        if not float32_finite(d):
            raise self._bad(key, s, "a number within float32's range (at most 3.4e38 in size)")
        return d

    def required_double(self, key: str) -> float:
        d = self.double(key)
        if d is None:
            raise SpecError(f"{self.owner}: missing parameter '{key}'")
        return d

    def int(self, key: str, default: Optional[builtins.int] = None) -> Optional[builtins.int]:
        s = self.values.get(key)
        if s is None:
            return default
        d = self._number(s)
        if d is None or d != round(d) or abs(d) >= 1e15:
            raise self._bad(key, s, "an integer")
        return int(d)

    def required_int(self, key: str) -> builtins.int:
        i = self.int(key)
        if i is None:
            raise SpecError(f"{self.owner}: missing parameter '{key}'")
        return i

    def bool(self, key: str, default: builtins.bool) -> builtins.bool:
        s = self.values.get(key)
        if s is None:
            return default
        t = s.strip().lower()
        if t in ("true", "yes", "on", "1"):
            return True
        if t in ("false", "no", "off", "0"):
            return False
        raise self._bad(key, s, "true or false")

    def choice(self, key: str, options: list[str], default: str) -> str:
        s = self.values.get(key)
        if s is None:
            return default
        if s not in options:
            raise self._bad(key, s, "one of " + ", ".join(options))
        return s

    def double_list(self, key: str) -> Optional[list[float]]:
        s = self.values.get(key)
        if s is None:
            return None
        parts = [self._number(p) for p in s.split("/")]
        if not parts or any(p is None for p in parts):
            raise self._bad(key, s, "numbers separated by '/'")
        numbers = [p for p in parts if p is not None]
        if not all(float32_finite(p) for p in numbers):
            raise self._bad(key, s, "numbers within float32's range (at most 3.4e38 in size) separated by '/'")
        return numbers

    def int_list(self, key: str) -> Optional[list[builtins.int]]:
        s = self.values.get(key)
        if s is None:
            return None
        try:
            ds = self.double_list(key)
        except SpecError:
            ds = None
        if ds is None or not all(d == round(d) and abs(d) < 1e15 for d in ds):
            raise self._bad(key, s, "integers separated by '/', like 30/80")
        return [int(d) for d in ds]


@dataclass
class Segment:
    """One resolved part of a schedule: its kind, every parameter with defaults filled in, where it starts."""
    kind: str
    params: dict = field(default_factory=dict)
    start: int = 0

    @property
    def length(self) -> Optional[int]:
        p = self.params
        return {"constantlr": p.get("total_iters"), "cosine": p.get("T_max"), "linear": p.get("total_iters"),
                "warmup": p.get("steps"), "poly": p.get("total_iters"),
                "onecycle": p.get("total_steps")}.get(self.kind)

    @property
    def spec(self) -> str:
        p, n = self.params, spec_number
        k = self.kind
        if k == "constant":
            return "constant"
        if k == "constantlr":
            return f"constantlr:factor={n(p['factor'])},total_iters={p['total_iters']}"
        if k == "step":
            return f"step:step_size={p['step_size']},gamma={n(p['gamma'])}"
        if k == "multistep":
            return f"multistep:milestones={'/'.join(str(m) for m in p['milestones'])},gamma={n(p['gamma'])}"
        if k == "exp":
            return f"exp:gamma={n(p['gamma'])}"
        if k == "cosine":
            return f"cosine:T_max={p['T_max']},eta_min={n(p['eta_min'])}"
        if k == "warm_restarts":
            return f"warm_restarts:T_0={p['T_0']},T_mult={p['T_mult']},eta_min={n(p['eta_min'])}"
        if k == "linear":
            return (f"linear:start_factor={n(p['start_factor'])},end_factor={n(p['end_factor'])},"
                    f"total_iters={p['total_iters']}")
        if k == "warmup":
            return f"warmup:steps={p['steps']},start_factor={n(p['start_factor'])}"
        if k == "poly":
            return f"poly:total_iters={p['total_iters']},power={n(p['power'])}"
        if k == "onecycle":
            s = "onecycle:"
            if p["max_lr"] is not None:
                s += f"max_lr={n(p['max_lr'])},"
            s += (f"total_steps={p['total_steps']},pct_start={n(p['pct_start'])},"
                  f"anneal_strategy={p['anneal_strategy']},div_factor={n(p['div_factor'])},"
                  f"final_div_factor={n(p['final_div_factor'])},three_phase={str(p['three_phase']).lower()}")
            return s
        if k == "cyclic":
            s = "cyclic:"
            if p["base_lr"] is not None:
                s += f"base_lr={n(p['base_lr'])},"
            s += f"max_lr={n(p['max_lr'])},step_size_up={p['step_size_up']},"
            if p["step_size_down"] is not None:
                s += f"step_size_down={p['step_size_down']},"
            return s + f"mode={p['mode']},gamma={n(p['gamma'])}"
        if k == "plateau":
            mins = p["min_lr"]
            min_lr = n(mins[0] if mins else 0) if len(set(mins)) <= 1 else "/".join(n(m) for m in mins)
            return (f"plateau:mode={p['mode']},factor={n(p['factor'])},patience={p['patience']},"
                    f"threshold={n(p['threshold'])},threshold_mode={p['threshold_mode']},cooldown={p['cooldown']},"
                    f"min_lr={min_lr},eps={n(p['eps'])}")
        raise AssertionError(k)


@dataclass
class Schedule:
    """A resolved spec: one segment, or a `->` sequence (PyTorch's SequentialLR)."""
    segments: list[Segment]

    @property
    def spec(self) -> str:
        s = self.segments[0].spec
        for seg in self.segments[1:]:
            s += f" -> @{seg.start} {seg.spec}"
        return s

    @property
    def milestones(self) -> list[int]:
        return [s.start for s in self.segments[1:]]

    @property
    def needs_metric(self) -> bool:
        return self.segments[0].kind == "plateau"


def _resolve(name: str, options: list[tuple[str, str]], remaining: Optional[int], groups: int) -> Segment:
    k = kind_named(name)
    o = _Options(k.name, options, k.keys)
    p: dict[str, Any]

    def run_length(key: str) -> int:
        v = o.int(key)
        if v is not None:
            return v
        if remaining is None:
            raise SpecError(f"{k.name}: the run's length is unknown, so {key} has no default; give {key}=N "
                            "(or pass total_steps= to lrtop.attach)")
        if remaining <= 0:
            raise SpecError(f"{k.name}: no steps left for the default {key} (the run has ended); give {key}=N")
        return remaining

    def no_momentum_cycling() -> None:
        if o.bool("cycle_momentum", False):
            raise SpecError(f"{k.name}: cycle_momentum=true is not supported (lrtop schedules the LR only)")

    n = k.name
    if n == "constant":
        return Segment(n)
    if n == "constantlr":
        p = {"factor": o.double("factor", 1.0 / 3), "total_iters": o.int("total_iters", 5)}
        if not 0 <= p["factor"] <= 1:
            raise SpecError("constantlr: Constant multiplicative factor expected to be between 0 and 1.")
        return Segment(n, p)
    if n == "step":
        p = {"step_size": o.required_int("step_size"), "gamma": o.double("gamma", 0.1)}
        if p["step_size"] <= 0:
            raise SpecError(f"step: step_size must be a positive integer (got {p['step_size']})")
        return Segment(n, p)
    if n == "multistep":
        ms = o.int_list("milestones")
        if ms is None:
            raise SpecError("multistep: missing parameter 'milestones'")
        return Segment(n, {"milestones": ms, "gamma": o.double("gamma", 0.1)})
    if n == "exp":
        return Segment(n, {"gamma": o.required_double("gamma")})
    if n == "cosine":
        p = {"T_max": run_length("T_max"), "eta_min": o.double("eta_min", 0.0)}
        if p["T_max"] <= 0:
            raise SpecError(f"cosine: T_max must be a positive integer (got {p['T_max']})")
        return Segment(n, p)
    if n == "warm_restarts":
        p = {"T_0": o.required_int("T_0"), "T_mult": o.int("T_mult", 1), "eta_min": o.double("eta_min", 0.0)}
        if p["T_0"] <= 0:
            raise SpecError(f"warm_restarts: Expected positive integer T_0, but got {p['T_0']}")
        if p["T_mult"] < 1:
            raise SpecError(f"warm_restarts: Expected integer T_mult >= 1, but got {p['T_mult']}")
        return Segment(n, p)
    if n in ("linear", "warmup"):
        if n == "warmup":
            steps = o.required_int("steps")
            if steps < 1:
                raise SpecError(f"warmup: steps must be a positive integer (got {steps})")
            p = {"steps": steps, "start_factor": o.double("start_factor", 1.0 / steps)}
            start, end, total = p["start_factor"], 1.0, steps - 1
        else:
            p = {"start_factor": o.double("start_factor", 1.0 / 3), "end_factor": o.double("end_factor", 1.0),
                 "total_iters": o.int("total_iters", 5)}
            start, end, total = p["start_factor"], p["end_factor"], p["total_iters"]
        if not (0 < start <= 1.0):
            raise SpecError(f"{n}: Starting multiplicative factor expected to be greater than 0 and less or equal to 1.")
        if not (0 <= end <= 1.0):
            raise SpecError(f"{n}: Ending multiplicative factor expected to be between 0 and 1.")
        if total < 0:
            raise SpecError(f"{n}: total_iters must be >= 0 (got {total})")
        return Segment(n, p)
    if n == "poly":
        p = {"total_iters": run_length("total_iters"), "power": o.double("power", 1.0)}
        if p["total_iters"] <= 0:
            raise SpecError(f"poly: total_iters must be a positive integer (got {p['total_iters']})")
        return Segment(n, p)
    if n == "onecycle":
        no_momentum_cycling()
        p = {"max_lr": o.double("max_lr"), "total_steps": run_length("total_steps"),
             "pct_start": o.double("pct_start", 0.3),
             "anneal_strategy": o.choice("anneal_strategy", ["cos", "linear"], "cos"),
             "div_factor": o.double("div_factor", 25.0), "final_div_factor": o.double("final_div_factor", 1e4),
             "three_phase": o.bool("three_phase", False)}
        if p["total_steps"] <= 0:
            raise SpecError(f"onecycle: Expected positive integer total_steps, but got {p['total_steps']}")
        if not 0 <= p["pct_start"] <= 1:
            raise SpecError(f"onecycle: Expected float between 0 and 1 pct_start, but got {py_repr(p['pct_start'])}")
        return Segment(n, p)
    if n == "cyclic":
        no_momentum_cycling()
        p = {"base_lr": o.double("base_lr"), "max_lr": o.required_double("max_lr"),
             "step_size_up": o.int("step_size_up", 2000), "step_size_down": o.int("step_size_down"),
             "mode": o.choice("mode", ["triangular", "triangular2", "exp_range"], "triangular"),
             "gamma": o.double("gamma", 1.0)}
        if p["step_size_up"] <= 0 or (p["step_size_down"] if p["step_size_down"] is not None else 1) <= 0:
            raise SpecError("cyclic: step_size_up and step_size_down must be positive integers")
        return Segment(n, p)
    if n == "plateau":
        min_lr = o.double_list("min_lr") or [0.0]
        min_lrs = [min_lr[0]] * groups if len(min_lr) == 1 else min_lr
        p = {"mode": o.choice("mode", ["min", "max"], "min"), "factor": o.double("factor", 0.1),
             "patience": o.int("patience", 10), "threshold": o.double("threshold", 1e-4),
             "threshold_mode": o.choice("threshold_mode", ["rel", "abs"], "rel"), "cooldown": o.int("cooldown", 0),
             "min_lr": min_lrs, "eps": o.double("eps", 1e-8)}
        if not p["factor"] < 1.0:
            raise SpecError("plateau: Factor should be < 1.0.")
        if len(min_lrs) != groups:
            raise SpecError(f"plateau: expected {groups} min_lrs, got {len(min_lrs)}")
        return Segment(n, p)
    raise SpecError(f"unknown scheduler '{name}' (valid: {', '.join(NAMES)})")


def resolve(spec: str, total_steps: Optional[int], groups: int = 1) -> Schedule:
    """Parses and resolves `spec` for a schedule spanning `total_steps` steps (the rest of the run)."""
    parts = parse_sequence(spec)
    if len(parts) == 1:
        name, options, _ = parts[0]
        return Schedule([_resolve(name, options, total_steps, groups)])
    segments: list[Segment] = []
    for i, (name, options, at) in enumerate(parts):
        start = 0
        if i > 0:
            if at is not None:
                start = at
            else:
                prev = segments[i - 1]
                if prev.length is None:
                    prev_text = _item_text(parts[i - 1])
                    raise SpecError(f"'{prev.kind}' has no fixed length: write where the next part starts, "
                                    f"e.g. '{prev_text} -> @100 {_item_text(parts[i])}'")
                start = segments[i - 1].start + prev.length
            if start <= segments[i - 1].start:
                raise SpecError(f"'{_item_text(parts[i])}' starts at step {start}, not after the previous part "
                                f"(step {segments[i - 1].start})")
        if kind_named(name).name == "plateau":
            raise SpecError("plateau cannot be part of a '->' sequence (it needs a metric)")
        seg = _resolve(name, options, None if total_steps is None else total_steps - start, groups)
        seg.start = start
        segments.append(seg)
    return Schedule(segments)


def _item_text(part) -> str:
    name, options, _ = part
    return name if not options else name + ":" + ",".join(f"{k}={v}" for k, v in options)


def canonical(spec: str, total_steps: int) -> str:
    """The canonical spec (every default resolved), as `SchedulerFactory.validate(spec:context:)` gives it."""
    return resolve(spec, total_steps).spec
