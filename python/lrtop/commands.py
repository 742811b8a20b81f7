"""lrtop's steering language, parsed by the same rules as the Swift `CommandParser`
(Sources/LRTrain/Control/Command.swift). spec/steering_vectors.json holds the vectors both sides test against.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Optional, Sequence

VERBS = ["lr", "sched", "warmup", "pause", "resume", "step", "stop", "ckpt", "rollback", "eval", "find-lr", "fork",
         "adopt", "drop", "pace"]
# What a fork's branch may run: what changes the LR or its schedule (flow control belongs to the main run).
BRANCH_VERBS = ["lr", "sched", "warmup"]
MAX_BRANCHES = 16

# Swift's Double(String): decimal or hexadecimal, inf/infinity/nan, an optional sign, no white space or underscores.
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_HEX = re.compile(r"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?\d+)?")
_SPECIAL = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)
_INT = re.compile(r"[+-]?\d+")


def swift_double(text: str) -> Optional[float]:
    """What Swift's `Double(text)` gives: a float, or None where Swift gives nil."""
    if _DECIMAL.fullmatch(text) or _SPECIAL.fullmatch(text):
        return float(text)
    if _HEX.fullmatch(text):
        body = text.lstrip("+-")
        value = float.fromhex(body if re.search("[pP]", body) else body + "p0")
        return -value if text.startswith("-") else value
    return None


# The largest float32: an LR the trainer or a float32 parameter cannot hold is refused, not overflowed at the next
# optimizer.step() (Swift: Float.greatestFiniteMagnitude).
FLOAT32_MAX = 3.4028234663852886e38


def float32_finite(x: float) -> bool:
    """Whether `x` is a number a float32 holds (its magnitude at most float32's largest)."""
    return math.isfinite(x) and abs(x) <= FLOAT32_MAX


def swift_int(text: str) -> Optional[int]:
    """What Swift's `Int(text)` gives (64-bit; None on overflow)."""
    if not _INT.fullmatch(text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


class CommandError(ValueError):
    """A command that does not parse or cannot apply; the message is one line a person can act on."""


LRChangeKind = Literal["set", "scale", "hold", "release", "reset"]


class Command:
    """One command of the steering language, parsed: a value of one of the classes below, one per verb (`LR`,
    `Sched`, `Warmup`, `Pause`, ...), as the Swift `Command` enum has one case per verb. `to_record()` is its JSON
    form (the shared vectors' record, the `"command"` of a command event in the run log)."""

    verb: ClassVar[str]

    def to_record(self) -> dict[str, Any]:
        return {"verb": self.verb}

    def is_risky(self, current_lrs: Sequence[float]) -> bool:
        """Whether a checkpoint is taken before applying it (a scheduler switch, an LR jump of 4x or more)."""
        return False


@dataclass(frozen=True)
class LRChange:
    kind: LRChangeKind
    value: Optional[float] = None  # "set": the LR; "scale": the factor (`/F` is stored as 1/F)


@dataclass(frozen=True)
class LR(Command):
    """`lr 3e-4`, `lr *0.5`, `lr /2`, `lr hold`, `lr release`, `lr reset`, each optionally for one group."""
    change: LRChange
    group: Optional[str] = None
    verb: ClassVar[str] = "lr"

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verb": "lr", "change": self.change.kind}
        if self.group is not None:
            out["group"] = self.group
        if self.change.value is not None:
            out["value"] = self.change.value
        return out

    def is_risky(self, current_lrs: Sequence[float]) -> bool:
        c = self.change
        if c.kind == "reset":
            return True
        if c.kind == "scale" and c.value is not None:
            return c.value >= 4 or c.value <= 0.25
        if c.kind == "set" and c.value is not None:
            v = c.value
            return any(old > 0 and (v / old >= 4 or v / old <= 0.25) for old in current_lrs)
        return False


@dataclass(frozen=True)
class Sched(Command):
    """`sched SPEC`: switch scheduler now, continuing from the current LR."""
    spec: str
    verb: ClassVar[str] = "sched"

    def to_record(self) -> dict[str, Any]:
        return {"verb": "sched", "spec": self.spec}

    def is_risky(self, current_lrs: Sequence[float]) -> bool:
        return True


@dataclass(frozen=True)
class Warmup(Command):
    """`warmup N`: the LR the optimizer uses ramps from 1/N to 1 of the scheduled one over N steps."""
    count: int
    verb: ClassVar[str] = "warmup"

    def to_record(self) -> dict[str, Any]:
        return {"verb": "warmup", "count": self.count}


@dataclass(frozen=True)
class Step(Command):
    """`step [N]`: N steps while paused."""
    count: int = 1
    verb: ClassVar[str] = "step"

    def to_record(self) -> dict[str, Any]:
        return {"verb": "step", "count": self.count}


@dataclass(frozen=True)
class Pause(Command):
    """`pause`: the loop waits at the boundary (DDP: every rank)."""
    verb: ClassVar[str] = "pause"


@dataclass(frozen=True)
class Resume(Command):
    """`resume` (`continue`): the loop goes on."""
    verb: ClassVar[str] = "resume"


@dataclass(frozen=True)
class Stop(Command):
    """`stop` (`quit`): the run ends at this boundary, its log `stopped`."""
    verb: ClassVar[str] = "stop"


@dataclass(frozen=True)
class Checkpoint(Command):
    """`ckpt` (`checkpoint`): a checkpoint now, in memory and on disk."""
    verb: ClassVar[str] = "ckpt"


@dataclass(frozen=True)
class Rollback(Command):
    """`rollback`: back to the last checkpoint (weights, optimizer, schedule, RNG, step)."""
    verb: ClassVar[str] = "rollback"


@dataclass(frozen=True)
class Eval(Command):
    """`eval`: the run's evaluation now."""
    verb: ClassVar[str] = "eval"


@dataclass(frozen=True)
class FindLR(Command):
    """`find-lr [start=X] [end=Y] [steps=N]`: the LR range test from here (count: its steps)."""
    start: float
    end: float
    count: int
    verb: ClassVar[str] = "find-lr"

    def to_record(self) -> dict[str, Any]:
        return {"verb": "find-lr", "start": self.start, "end": self.end, "count": self.count}


@dataclass(frozen=True)
class Branch:
    """One branch of a `fork`: its label and the commands it runs at the fork point."""
    label: str
    commands: tuple[Command, ...]


@dataclass(frozen=True)
class Fork(Command):
    """`fork lr=V1,V2 steps=N [jobs=N]` or quoted branches: "what if" branches from here (lrtop's trainer only)."""
    branches: tuple[Branch, ...]
    steps: int
    jobs: int = 1
    verb: ClassVar[str] = "fork"

    def to_record(self) -> dict[str, Any]:
        return {"verb": "fork", "steps": self.steps, "jobs": self.jobs,
                "branches": [{"label": b.label, "commands": [c.to_record() for c in b.commands]}
                             for b in self.branches]}


@dataclass(frozen=True)
class Adopt(Command):
    """`adopt K`: a fork's branch K continues as the run (lrtop's trainer only)."""
    branch: int  # from 1
    verb: ClassVar[str] = "adopt"

    def to_record(self) -> dict[str, Any]:
        return {"verb": "adopt", "branch": self.branch}


@dataclass(frozen=True)
class Drop(Command):
    """`drop`: a fork's branches dropped (lrtop's trainer only)."""
    verb: ClassVar[str] = "drop"


# The fastest pace a run can be held to, in steps a second (Swift: Command.maxPace).
MAX_PACE = 1_000_000.0
PaceChangeKind = Literal["set", "scale", "off"]


@dataclass(frozen=True)
class Pace(Command):
    """`pace 20/s`, `pace *2`, `pace /2`, `pace off`: at most N optimizer steps a second (lrtop's trainer: a bridged
    run goes at its own speed and refuses it with the reason)."""
    change: PaceChangeKind
    value: Optional[float] = None
    verb: ClassVar[str] = "pace"

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"verb": "pace", "change": self.change}
        if self.value is not None:
            record["value"] = self.value
        return record


def parse(text: str) -> Command:
    """Parses one command; raises CommandError with the same messages as the Swift parser."""
    words = [w for w in re.split(r"[ \t]", text) if w]
    if not words:
        raise CommandError(f"empty command: try one of {', '.join(VERBS)}")
    verb = words[0].lower()
    args = words[1:]

    def no_args(c: Command) -> Command:
        if args:
            raise CommandError(f"'{verb}' takes no argument, got '{' '.join(args)}'")
        return c

    if verb == "lr":
        return _parse_lr(args)
    if verb in ("sched", "scheduler"):
        if not args:
            raise CommandError("'sched' needs a scheduler spec, e.g. 'sched cosine:T_max=2000' "
                               "or 'sched warmup:steps=100 -> cosine'")
        return Sched(" ".join(args))
    if verb == "warmup":
        return Warmup(_one_positive(args, "'warmup' needs a positive number of steps, e.g. 'warmup 200'"))
    if verb == "pause":
        return no_args(Pause())
    if verb in ("resume", "continue"):
        return no_args(Resume())
    if verb in ("step", "n"):
        if not args:
            return Step(1)
        return Step(_one_positive(args, "'step' takes an optional positive count, e.g. 'step' or 'step 10'"))
    if verb in ("stop", "quit"):
        return no_args(Stop())
    if verb in ("ckpt", "checkpoint"):
        return no_args(Checkpoint())
    if verb == "rollback":
        return no_args(Rollback())
    if verb == "eval":
        return no_args(Eval())
    if verb in ("find-lr", "findlr"):
        return _parse_find_lr(args)
    if verb == "fork":
        stripped = text.lstrip(" \t")
        return _parse_fork(re.sub(r"^[^ \t]*", "", stripped))  # its quotes keep their blanks
    if verb == "adopt":
        return Adopt(_one_positive(args, "'adopt' needs one branch number, e.g. 'adopt 2' (branches are numbered "
                                         "from 1)"))
    if verb == "drop":
        return no_args(Drop())
    if verb == "pace":
        return _parse_pace(args)
    raise CommandError(f"unknown command '{verb}': valid commands are {', '.join(VERBS)}")


def _parse_pace(args: list[str]) -> Command:
    """`pace 20/s` (or `pace 20`), `pace *2`, `pace /2`, `pace off` (or `full`), as the Swift `parsePace`."""
    usage = "use 'pace 20/s' (at most 20 steps a second), 'pace *2', 'pace /2' or 'pace off' (full speed)"
    if len(args) != 1:
        raise CommandError(f"'pace' needs a rate: {usage}" if not args else f"too many arguments to 'pace': {usage}")
    arg = args[0].lower()
    if arg in ("off", "full"):
        return Pace("off")
    if arg[0] in "*/x":
        number = arg[1:]
        f = swift_double(number)
        if f is None or not math.isfinite(f) or f <= 0 or f > MAX_PACE or 1 / f > MAX_PACE:
            raise CommandError(f"invalid pace factor '{number}': expected a positive number, e.g. 'pace *2' or "
                               "'pace /2'")
        return Pace("scale", 1 / f if arg[0] == "/" else f)
    number = arg[:-2] if arg.endswith("/s") else arg
    rate = swift_double(number)
    if rate is None or not math.isfinite(rate) or rate <= 0 or rate > MAX_PACE:
        raise CommandError(f"invalid pace '{args[0]}': expected steps a second from 0 (excluded) to 1e6, e.g. "
                           f"'pace 20/s'; {usage}")
    return Pace("set", rate)


def _one_positive(args: list[str], error: str) -> int:
    """The one argument as a positive Int (Swift's `Int(text)`), or CommandError(error)."""
    n = swift_int(args[0]) if len(args) == 1 else None
    if n is None or n <= 0:
        raise CommandError(error)
    return n


_FORK_USAGE = "e.g. 'fork lr=1e-3,1e-4 steps=300' or \"fork 'sched cosine' | 'lr *0.5' steps=300\""


def _fork_tokens(text: str) -> list:
    """Words, quoted branches (' or ") and bars, as the Swift `ForkParser` reads them."""
    tokens, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
        elif c == "|":
            tokens.append(("bar", "|"))
            i += 1
        elif c in "'\"":
            end = text.find(c, i + 1)
            if end < 0:
                raise CommandError(f"unterminated quote in 'fork': close each branch's quote, {_FORK_USAGE}")
            tokens.append(("quoted", text[i + 1:end]))
            i = end + 1
        else:
            j = i
            while j < n and text[j] not in " \t|'\"":
                j += 1
            tokens.append(("word", text[i:j]))
            i = j
    return tokens


def _fork_branch(number: int, label: str, texts: list) -> Branch:
    parsed = []
    for text in texts:
        try:
            command = parse(text)
        except CommandError as e:
            raise CommandError(f"branch {number}: {e}") from None
        if command.verb not in BRANCH_VERBS:
            verb = re.split(r"[ \t]", text.strip(" \t"))[0].lower()
            raise CommandError(f"branch {number}: '{verb}' cannot run inside a branch: a branch takes "
                               f"{', '.join(BRANCH_VERBS)} commands")
        parsed.append(command)
    return Branch(label, tuple(parsed))


def _parse_fork(arguments: str) -> Command:
    """`fork lr=V1,V2,... steps=N [jobs=N]` or `fork 'A; B' | 'C' steps=N [jobs=N]` (the Swift `ForkParser`)."""
    lr_values, quoted, steps, jobs = None, [], None, None
    expect_branch, saw_bar = True, False
    for kind, value in _fork_tokens(arguments):
        if kind == "quoted":
            if not expect_branch:
                raise CommandError(f"two quoted branches need '|' between them: {_FORK_USAGE}")
            quoted.append(value)
            expect_branch, saw_bar = False, False
        elif kind == "bar":
            if expect_branch:
                raise CommandError(f"'|' must stand between two quoted branches: {_FORK_USAGE}")
            expect_branch, saw_bar = True, True
        else:
            if "=" not in value:
                raise CommandError(f"unexpected '{value}' in 'fork': quote each branch's commands, {_FORK_USAGE}")
            key, val = value.split("=", 1)
            key = key.lower()
            if key == "lr":
                if lr_values is not None:
                    raise CommandError("'lr' given twice in 'fork'")
                lr_values = val.split(",")
                if any(not v for v in lr_values):
                    raise CommandError("'fork lr=' needs LR values separated by commas, e.g. lr=1e-3,3e-4,1e-4")
            elif key == "steps":
                if steps is not None:
                    raise CommandError("'steps' given twice in 'fork'")
                steps = swift_int(val)
                if steps is None or steps <= 0:
                    raise CommandError(f"invalid steps '{val}' in 'fork': expected a positive number of steps each "
                                       "branch trains, e.g. steps=300")
            elif key == "jobs":
                if jobs is not None:
                    raise CommandError("'jobs' given twice in 'fork'")
                jobs = swift_int(val)
                if jobs is None or jobs <= 0:
                    raise CommandError(f"invalid jobs '{val}' in 'fork': expected a positive number of branches to "
                                       "train at once, e.g. jobs=2")
            else:
                raise CommandError(f"unknown fork option '{key}': 'fork' takes lr=V1,V2,... or quoted branches, "
                                   "steps=N and jobs=N")
    if saw_bar:
        raise CommandError(f"'|' must stand between two quoted branches: {_FORK_USAGE}")
    if lr_values is not None and quoted:
        raise CommandError(f"'fork' takes either lr=V1,V2,... or quoted branches, not both: {_FORK_USAGE}")
    if lr_values is not None:
        branches = [_fork_branch(i + 1, f"lr {v}", [f"lr {v}"]) for i, v in enumerate(lr_values)]
    else:
        branches = []
        for i, body in enumerate(quoted):
            texts = [t.strip(" \t") for t in body.split(";")]
            texts = [t for t in texts if t]
            branches.append(_fork_branch(i + 1, "; ".join(texts) if texts else "as is", texts))
    if not branches:
        raise CommandError(f"'fork' needs branches: {_FORK_USAGE}")
    if len(branches) > MAX_BRANCHES:
        raise CommandError(f"'fork' takes at most {MAX_BRANCHES} branches, got {len(branches)}")
    if steps is None:
        raise CommandError(f"'fork' needs steps=N, how many steps each branch trains: {_FORK_USAGE}")
    return Fork(tuple(branches), steps, jobs or 1)


def _parse_find_lr(args: list[str]) -> Command:
    """`find-lr [start=X] [end=Y] [steps=N]`, each key at most once, in any order (fastai's defaults)."""
    from .findlr import DEFAULT_END, DEFAULT_START, DEFAULT_STEPS
    usage = "e.g. 'find-lr' or 'find-lr start=1e-6 end=1 steps=200'"
    values = {"start": DEFAULT_START, "end": DEFAULT_END, "steps": DEFAULT_STEPS}
    seen = set()
    for arg in args:
        parts = arg.split("=", 1)
        key = parts[0].lower()
        if len(parts) != 2 or key not in values:
            raise CommandError(f"'find-lr' takes start=LR, end=LR and steps=N, got '{arg}': {usage}")
        if key in seen:
            raise CommandError(f"'find-lr': {key} given twice")
        seen.add(key)
        if key == "steps":
            n = swift_int(parts[1])
            if n is None or not 6 <= n <= 10_000:
                raise CommandError(f"invalid find-lr steps '{parts[1]}': expected a whole number from 6 to 10000")
            values["steps"] = n
        else:
            v = swift_double(parts[1])
            if v is None or not float32_finite(v) or v <= 0:
                raise CommandError(f"invalid find-lr {key} '{parts[1]}': expected a positive LR like 1e-7")
            values[key] = v
    if not values["start"] < values["end"]:
        raise CommandError(f"'find-lr' needs start < end, got start={values['start']!r} end={values['end']!r}")
    return FindLR(float(values["start"]), float(values["end"]), int(values["steps"]))


def _parse_lr(args: list[str]) -> Command:
    usage = "use 'lr 3e-4', 'lr *0.5', 'lr /2', 'lr hold', 'lr release', 'lr reset', or 'lr GROUP ...'"
    rest = list(args)
    group = None
    if len(rest) == 2:
        group = rest.pop(0)
    if len(rest) != 1:
        raise CommandError(f"'lr' needs a value: {usage}" if not rest else f"too many arguments to 'lr': {usage}")
    arg = rest[0]
    keyword = arg.lower()
    if keyword in ("hold", "pin"):
        return LR(LRChange("hold"), group)
    if keyword in ("release", "unpin"):
        return LR(LRChange("release"), group)
    if keyword == "reset":
        return LR(LRChange("reset"), group)
    if arg[0] in "*/x":
        number = arg[1:]
        f = swift_double(number)
        if f is None or not float32_finite(f) or f <= 0 or not float32_finite(1 / f):
            raise CommandError(f"invalid LR factor '{number}' in 'lr {arg}': expected a positive number within "
                               "float32's range (1e-38 to 3.4e38), e.g. 'lr *0.5'")
        return LR(LRChange("scale", 1 / f if arg[0] == "/" else f), group)
    v = swift_double(arg)
    if v is None:
        raise CommandError(f"invalid LR '{arg}': expected a number like 3e-4, or {usage}")
    if not float32_finite(v) or v < 0:
        raise CommandError(f"invalid LR '{arg}': must be a finite number >= 0 within float32's range (at most 3.4e38)")
    return LR(LRChange("set", v), group)

