"""Who writes the LR of a bridged run, and when: the Python side of the Swift `LRControl`
(Sources/LRTrain/Control/LRControl.swift), by the same rules (docs/steering.md).

- The scheduler writes the LR after each of its steps; PyTorch's chainable schedulers continue from whatever the
  group holds, so a manual `lr` is the value the next step continues from.
- `lr hold` pins a group: the scheduler's clock runs on, its writes to that group are undone.
- `lr release` hands the group back to the schedule as planned: a shadow copy of the scheduler on a parameter-less
  optimizer, which no manual change touches.
- `lr reset` puts the base LRs back and restarts the schedule; `sched SPEC` builds a new PyTorch scheduler from the
  current LRs; `warmup N` scales the LR the optimizer uses by k/N for the next N steps, on top of the schedule.

The user's (or the framework's) own `scheduler.step()` keeps working after `sched SPEC`: the scheduler's class is
swapped for a subclass whose `step()` routes here, so `state_dict()` stays plain.
"""
from __future__ import annotations

import copy
import threading
import weakref
from typing import Any, Callable, Optional, Sequence

import torch

from . import schedulers as SB
from .specs import SpecError

_S = torch.optim.lr_scheduler
# Schedulers whose LR at step k is a formula of k (`_get_closed_form_lr`), exactly the classes, not subclasses.
_CLOSED_FORM = frozenset(c for c in (_S.StepLR, _S.MultiStepLR, _S.ExponentialLR, _S.CosineAnnealingLR, _S.LinearLR,
                                     _S.ConstantLR, _S.PolynomialLR) if hasattr(c, "_get_closed_form_lr"))


def base_class(scheduler: Any) -> Any:
    """The scheduler's own class (under the routed subclass lrtop may have swapped in)."""
    cls = type(scheduler)
    return getattr(cls, "_lrtop_base", cls)


def _routed_class(cls: Any, control: "LRControl") -> type:
    """A subclass whose `step()` routes to the control's active scheduler, so the framework's (or the user's) usual
    `scheduler.step()` keeps working after `sched SPEC` and honours `lr hold`. A class, not an instance attribute,
    so `state_dict()` stays plain."""
    ref = weakref.ref(control)
    base_step = cls.step
    plateau = issubclass(cls, _S.ReduceLROnPlateau)

    def step(self: Any, *args: Any, **kwargs: Any) -> None:
        c = ref()
        if c is None or c.detached:
            return base_step(self, *args, **kwargs)
        c.user_steps += 1
        if not (args or kwargs or plateau) and self is c.scheduler and not c.frozen and True not in c.held:
            base_step(self)  # the common case, `step` unrolled: once per optimizer step, so kept short
            if c.shadow is not None:
                c.shadow_owed += 1
            return None
        if c.driven and not (args or kwargs):
            return None  # lrtop steps the schedule `sched` built at every optimizer step (see `switch`)
        c.step(args, kwargs)
        return None

    def get_last_lr(self: Any) -> list:
        # What the framework logs (HF's `learning_rate`, hence trainer_state.json, TensorBoard, W&B) is this: after
        # `sched` this object no longer writes the LR, and after `lr`, find-lr or a rollback what it remembers is
        # not what trains. The optimizer's groups hold the LR the next step uses.
        c = ref()
        if c is None or c.detached:
            return base_get_last_lr(self)
        f = c.ramp_factor
        return c.lrs if f is None else [lr * f for lr in c.lrs]

    base_get_last_lr = cls.get_last_lr
    return type(cls.__name__, (cls,), {"step": step, "get_last_lr": get_last_lr, "_lrtop_base": cls,
                                       "__module__": cls.__module__})


def _raw_step(scheduler: Any, args: tuple = (), kwargs: Optional[dict] = None) -> None:
    kwargs = kwargs or {}
    cls = base_class(scheduler)
    if isinstance(scheduler, _S.ReduceLROnPlateau):
        if not args and "metrics" not in kwargs:
            return  # a plateau schedule steps on a metric (run.eval / the framework's monitor)
        cls.step(scheduler, *args, **kwargs)
    else:
        cls.step(scheduler)


class LRControl:
    """The LRs of `optimizer`'s param groups, their schedule, and what the steering commands do to them."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler: Any, *, stepped_externally: Optional[bool],
                 remaining: Callable[[], Optional[int]], on_replaced: Callable[[Any], None]):
        self.optimizer = optimizer
        self._remaining = remaining
        self._on_replaced = on_replaced
        groups = optimizer.param_groups
        n = len(groups)
        self.base_lrs = [float(g.get("initial_lr", g["lr"])) for g in groups]
        self.held = [False] * n
        self.overridden = [False] * n
        # How much `lr` rescaled each group's anchors in schedulers that recompute the LR (`_rebase`).
        self.anchor_scale = [1.0] * n
        self.warmup_total = 0
        self.warmup_done = 0
        # The warmup ramp's factor on the last optimizer step (None: no ramp): the groups hold the unscaled LR between
        # steps, so what the framework logs (`get_last_lr`) is scaled by it to be the LR that step trained with.
        self.ramp_factor: Optional[float] = None
        # The active scheduler, its lrtop spec (None: the user's own), and its planned twin.
        self.user_scheduler = scheduler
        self.scheduler = scheduler
        self.spec: Optional[str] = None
        self._spec_length: Optional[int] = None  # the length its defaults spanned when it was installed
        self.external = scheduler is not None if stepped_externally is None else stepped_externally
        self._user_external = self.external
        # The script's `scheduler.step()` calls (counted by the routed class), and whether lrtop steps the schedule
        # `sched` built itself, at every optimizer step, because the script steps its scheduler once an epoch.
        self.user_steps = 0
        self.driven = False
        # While a find-lr sweep sets the LR, the schedule stands still; after close(), routing passes straight on.
        self.frozen = False
        self.detached = False
        self._shadow_opt = SB.shadow_optimizer(optimizer)
        self.shadow = SB.twin(scheduler, optimizer, self._shadow_opt) if scheduler is not None else None
        # The shadow is stepped lazily: the loop only counts the steps it owes (`shadow_owed`, written by the loop
        # alone) and the socket's service thread pays them off the loop's path (`tick`); `settle_shadow()` pays the
        # rest before anything reads or replaces the shadow. The lock keeps the two threads off it at once.
        self._shadow_lock = threading.Lock()
        self.shadow_owed = 0
        self._shadow_paid = 0
        if scheduler is not None and self.external:
            self._route(scheduler)

    @property
    def lrs(self) -> list[float]:
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    # ------------------------------------------------------------------ stepping

    def _route(self, scheduler: Any) -> None:
        cls = type(scheduler)
        if not hasattr(cls, "_lrtop_base"):
            scheduler.__class__ = _routed_class(cls, self)

    def step(self, args: tuple = (), kwargs: Optional[dict] = None) -> None:
        """One scheduler step (with the arguments the caller gave, a plateau's metric): held groups keep their LR."""
        kwargs = kwargs or {}
        if self.frozen:
            return  # the sweep sets the LR; the schedule (put back at the sweep's end) stands still
        held = True in self.held
        pinned = self.lrs if held else None
        if self.scheduler is not None:
            _raw_step(self.scheduler, args, kwargs)
        if self.shadow is not None:
            if args or kwargs:
                self.settle_shadow(then=(args, kwargs))
            else:
                self.shadow_owed += 1
        if pinned is not None:
            for i, g in enumerate(self.optimizer.param_groups):
                if self.held[i]:
                    g["lr"] = pinned[i]

    def settle_shadow(self, then: Optional[tuple] = None) -> None:
        """Steps the shadow schedule the steps it is owed (and then once with `then`'s arguments). A schedule with
        a closed form (StepLR, CosineAnnealingLR, ...: nothing but the shadow ever changes its LR) jumps there."""
        with self._shadow_lock:
            shadow = self.shadow
            owed = self.shadow_owed - self._shadow_paid
            if owed > 0 and shadow is not None and base_class(shadow) in _CLOSED_FORM:
                shadow.last_epoch += owed
                shadow._step_count += owed
                lrs = [float(x) for x in shadow._get_closed_form_lr()]
                for g, lr in zip(self._shadow_opt.param_groups, lrs):
                    g["lr"] = lr
                shadow._last_lr = lrs
                self._shadow_paid += owed
            while self._shadow_paid < self.shadow_owed:
                self._shadow_paid += 1
                if shadow is not None:
                    _raw_step(shadow)
            if then is not None and shadow is not None:
                _raw_step(shadow, *then)

    def tick(self) -> None:
        """The socket's service thread: the shadow's owed steps, off the loop's path."""
        if self._shadow_paid < self.shadow_owed:
            self.settle_shadow()

    def warmup_step_done(self) -> None:
        """One optimizer step of the warmup ramp taken (the run's optimizer hooks apply the ramp: the factor of the
        k-th of N steps is k/N, `(warmup_done + 1) / warmup_total`)."""
        self.warmup_done += 1

    # ------------------------------------------------------------------ commands

    def set(self, groups: Sequence[int], value: float) -> Optional[str]:
        """`lr V` for these groups (the next scheduler step continues from it)."""
        pg = self.optimizer.param_groups
        notes = set()
        for i in groups:
            notes.add(self._rebase(i, value))
            pg[i]["lr"] = value
            self.overridden[i] = True
        return "; ".join(sorted(n for n in notes if n)) or None

    def scale(self, groups: Sequence[int], factor: float) -> Optional[str]:
        """`lr *F` for these groups."""
        return self.set_each(groups, [self.optimizer.param_groups[i]["lr"] * factor for i in groups])

    def set_each(self, groups: Sequence[int], values: Sequence[float]) -> Optional[str]:
        notes = set()
        for i, value in zip(groups, values):
            notes.add(self.set([i], value))
        return "; ".join(sorted(n for n in notes if n)) or None

    def hold(self, groups: Sequence[int]) -> str:
        for i in groups:
            self.held[i] = True
        return "held until 'lr release'"

    def release(self, groups: Sequence[int]) -> str:
        """Back to the schedule as planned: the LR the shadow schedule holds now."""
        self.settle_shadow()
        planned = [g["lr"] for g in self._shadow_opt.param_groups] if self.shadow is not None \
            else (self.base_lrs if self.scheduler is None else None)
        pg = self.optimizer.param_groups
        self._unscale_anchors(groups)
        for i in groups:
            self.held[i] = False
            self.overridden[i] = False
            if planned is not None:
                pg[i]["lr"] = planned[i]
        return "back to the schedule as planned" if planned is not None else \
            "released (the schedule's planned LR is unknown: the scheduler could not be copied)"

    def reset(self, groups: Optional[Sequence[int]]) -> str:
        """`lr reset`: every group's base LR and the schedule from its first step; `lr GROUP reset`: that group's
        base LR, the schedule continuing from it."""
        if groups is not None:
            self.set_each(groups, [self.base_lrs[i] for i in groups])
            return "base LR restored for this group; the schedule continues from it"
        self._unscale_anchors(range(len(self.base_lrs)))
        self._restart()
        return "base LR restored, schedule restarted"

    def switch(self, spec: str, steps_taken: Optional[int] = None) -> str:
        """`sched SPEC`: a new schedule from the current LRs (a held group keeps its LR). Its lengths are in
        optimizer steps, as lrtop's language says; when the script steps its own scheduler less often than the
        optimizer (pytorch/examples step theirs once an epoch; `steps_taken` optimizer steps so far), lrtop steps
        the new schedule itself at every optimizer step and the script's `scheduler.step()` no longer moves it:
        stepped once an epoch, a schedule in steps would barely move, silently."""
        calls = self.user_steps
        drive = steps_taken is not None and self.user_scheduler is not None and self._user_external \
            and calls < steps_taken - 1
        self.driven = drive
        self.external = self._user_external and not drive
        self.install(spec, self.lrs)
        note = f"now {self.describe()}, continuing from the current LR"
        if drive:
            note += (f"; the script stepped its scheduler {calls} time{'' if calls == 1 else 's'} in {steps_taken} "
                     "optimizer steps, so lrtop steps this schedule at every optimizer step and the script's "
                     "scheduler.step() no longer moves it")
        return note

    def schedule_ramp(self) -> Optional[tuple[str, int]]:
        """The schedule's own ramp still raising the LR (a LinearLR whose factor grows: lrtop's `warmup`, a rising
        `linear`; a falling one is a decay that goes on from a manual LR) and the scheduler steps it has left, or None. Inside a SequentialLR the ramp lasts until the next part restarts from its base
        LR at its milestone (`warmup:steps=N` reaches its base at N-1; the step to N still belongs to it)."""
        s = self.scheduler
        if s is None or self.frozen:
            return None
        done = max(int(s.last_epoch), 0)
        if isinstance(s, _S.SequentialLR):
            milestones = list(s._milestones)
            idx = sum(1 for m in milestones if m <= done)
            child = s._schedulers[idx]
            if idx < len(milestones) and isinstance(child, _S.LinearLR) and child.start_factor < child.end_factor:
                return base_class(child).__name__, milestones[idx] - done
            s, done = child, max(int(child.last_epoch), 0)
        if isinstance(s, _S.LinearLR) and s.start_factor < s.end_factor and done < s.total_iters:
            return base_class(s).__name__, s.total_iters - done
        return None

    def override_refusal(self, groups: Sequence[int], step: int) -> Optional[str]:
        """Why `lr X` / `lr *F` would not hold now, or None: as the Swift trainer's `checkOverride` (docs/steering.md).
        A `warmup N` re-warm scales the LR the optimizer uses (held groups too) until it ends; the schedule's own
        ramp raises a manual LR with it, unless every group named is held. (Schedules that compute the LR from their
        step count have their anchors rescaled instead: `_rebase`.)"""
        if self.warmup_done < self.warmup_total:
            end = step + self.warmup_total - self.warmup_done
            return (f"the 'warmup {self.warmup_total}' ramp scales the LR the optimizer uses until step {end}, so "
                    f"this LR would train at a fraction of itself: set it at step {end} (a script's '@{end} lr ...'), "
                    "when the ramp is over")
        ramp = self.schedule_ramp()
        if ramp is None or all(self.held[i] for i in groups):
            return None
        kind, left = ramp
        until = f"for {left} more scheduler step{'' if left == 1 else 's'}" if self.external \
            else f"until step {step + left}"
        return (f"the schedule's {kind} ramp writes the LR {until}, so this LR would not hold: 'lr hold' first pins "
                f"the LR (then 'lr X' holds until 'lr release'), or wait {until.removeprefix('for ')} and set it then: "
                "the schedule goes on from it")

    def start_warmup(self, steps: int) -> str:
        self.warmup_total, self.warmup_done = steps, 0
        return f"ramping the LR up over {steps} steps"

    def check(self, spec: str) -> None:
        """Raises SpecError when `spec` would not build for the rest of the run (before anything changes)."""
        SB.resolve(spec, self._remaining(), groups=len(self.base_lrs))

    def override(self, new: list[float]) -> None:
        """Sets the LRs and rescales the scheduler's remembered base LRs to match, so a restored scheduler does not
        silently put its saved LR back (the common resume-with-a-new-LR trap)."""
        groups = self.optimizer.param_groups
        old = [g["lr"] for g in groups]
        ratios = [n / o if o else 1.0 for n, o in zip(new, old)]
        for g, x, r in zip(groups, new, ratios):
            g["lr"] = x
            if "initial_lr" in g:
                g["initial_lr"] = g["initial_lr"] * r
        for s in [self.scheduler] + list(getattr(self.scheduler, "_schedulers", []) or []):
            if s is None:
                continue
            if hasattr(s, "base_lrs"):
                s.base_lrs = [b * r for b, r in zip(s.base_lrs, ratios)]
            if hasattr(s, "_last_lr"):
                s._last_lr = list(new)
            for attr in ("max_lrs", "min_lrs"):
                if isinstance(getattr(s, attr, None), list) and len(getattr(s, attr)) == len(new) \
                        and not isinstance(s, _S.ReduceLROnPlateau):
                    setattr(s, attr, [b * r for b, r in zip(getattr(s, attr), ratios)])
        self.overridden = [True] * len(groups)

    def _rebase(self, i: int, new_lr: float) -> Optional[str]:
        """Schedulers that compute the LR from their own anchors each step (LambdaLR: HF's default schedules;
        OneCycleLR, CyclicLR, CosineAnnealingWarmRestarts) would undo a manual change at their next step: their
        anchors for this group are rescaled by the same ratio, so the schedule goes on from the new value, its
        shape kept, as PyTorch's chainable schedulers do by themselves (`lr release` and `lr reset` scale them
        back). Returns what the answer says about it."""
        old = self.optimizer.param_groups[i]["lr"]
        ratio = new_lr / old if old > 0 else None
        rescaled = self._rescale_anchors(i, ratio, new_lr)
        if ratio is not None and rescaled:
            self.anchor_scale[i] *= ratio
        named = [n for n in rescaled if n != "LambdaLR"]
        return f"{' and '.join(named)} rescaled to go on from it" if named else None

    def _rescale_anchors(self, i: int, ratio: Optional[float], new_lr: float = 0.0) -> list[str]:
        """Multiplies group `i`'s anchors in the active schedulers by `ratio` (None: from an LR of zero the ratio is
        unknown, so the anchors restart at `new_lr`); returns what it rescaled."""
        def scaled(x: Any) -> Any:
            return x * ratio if ratio is not None else new_lr

        rescaled = []
        for s in [self.scheduler] + list(getattr(self.scheduler, "_schedulers", []) or []):
            if isinstance(s, (_S.LambdaLR, _S.CosineAnnealingWarmRestarts)):
                s.base_lrs[i] = scaled(s.base_lrs[i])
                floor = getattr(s, "eta_min", 0)
                rescaled.append(f"{base_class(s).__name__} (its floor eta_min={floor:g} stays)" if floor
                                else base_class(s).__name__)
            elif isinstance(s, _S.OneCycleLR):
                group = s.optimizer.param_groups[i]
                for key in ("initial_lr", "max_lr", "min_lr"):
                    group[key] = scaled(group[key])
                rescaled.append("OneCycleLR")
            elif isinstance(s, _S.CyclicLR):
                for anchors in (s.base_lrs, s.max_lrs):
                    anchors[i] = scaled(anchors[i])
                rescaled.append("CyclicLR")
        return rescaled

    def _unscale_anchors(self, groups: Sequence[int]) -> None:
        """Back to the schedule's own anchors (`lr release`, `lr reset`)."""
        for i in groups:
            if self.anchor_scale[i] != 1.0:
                self._rescale_anchors(i, 1.0 / self.anchor_scale[i])
                self.anchor_scale[i] = 1.0

    def install(self, spec: str, base_lrs: list[float], length: Optional[int] = None) -> None:
        """Builds `spec` over the optimizer (and its shadow) relative to `base_lrs`, and makes it the active one. Its
        lengths left out (`T_max`, ...) span `length` steps, by default the rest of the run."""
        groups = self.optimizer.param_groups
        before = self.lrs
        if length is None:
            length = self._remaining()
        for g, lr in zip(groups, base_lrs):
            g["lr"] = lr
        try:
            built = SB.build_spec(self.optimizer, spec, length)
        except Exception:
            for g, lr in zip(groups, before):
                g["lr"] = lr
            raise
        with self._shadow_lock:
            self._shadow_paid = self.shadow_owed  # the old shadow is replaced: what it was owed is moot
            for sg, lr in zip(self._shadow_opt.param_groups, base_lrs):
                sg["lr"] = lr
            shadow = SB.build_spec(self._shadow_opt, spec, length)
            self.shadow = shadow
        for i, g in enumerate(groups):
            if self.held[i]:
                g["lr"] = before[i]  # a held group keeps its LR through a scheduler switch
        if self.external:
            self._route(built)
        self.scheduler, self.shadow, self.spec = built, shadow, spec
        self.anchor_scale = [1.0] * len(groups)
        self._spec_length = length
        self._on_replaced(built)

    def _restart(self) -> None:
        groups = self.optimizer.param_groups
        self.held = [False] * len(groups)
        self.overridden = [False] * len(groups)
        self.warmup_total = self.warmup_done = 0
        if self.spec is not None:
            # The same schedule from its first step: its lengths as when it was installed (the Swift LRControl's
            # context), not the rest of the run now.
            self.install(self.spec, self.base_lrs, self._spec_length)
            return
        for g, lr in zip(groups, self.base_lrs):
            g["lr"] = lr
            g["initial_lr"] = lr
        self.driven = False
        self.external = self._user_external
        if self.user_scheduler is not None:
            # Restart the user's own scheduler from its first step.
            sched = self.user_scheduler
            fresh = self._fresh_state(sched)
            if fresh is not None:
                base_class(sched).load_state_dict(sched, fresh)
            for g, lr in zip(groups, self.base_lrs):
                g["lr"] = lr
            self.scheduler = sched
            with self._shadow_lock:
                self._shadow_paid = self.shadow_owed
                self.shadow = SB.twin(sched, self.optimizer, self._shadow_opt)
                for sg, lr in zip(self._shadow_opt.param_groups, self.base_lrs):
                    sg["lr"] = lr
            self._on_replaced(sched)

    def _fresh_state(self, sched: Any) -> Optional[dict]:
        state = dict(sched.state_dict())
        if "last_epoch" in state:
            state["last_epoch"] = 0
            state["_step_count"] = 1
            state["base_lrs"] = list(self.base_lrs)
            state["_last_lr"] = list(self.base_lrs)
            return state
        return None

    # ------------------------------------------------------------------ what the status shows

    def canonical(self) -> Optional[str]:
        """The spec in force as it was built: its lengths are those it spanned when installed (the rest of the run
        then), not the rest of the run now."""
        if self.spec is None:
            return None
        try:
            return SB.resolve(self.spec, self._spec_length, len(self.base_lrs)).spec
        except SpecError:
            return self.spec

    def describe(self) -> str:
        return SB.describe(self.scheduler, self.canonical())

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict:
        """Everything a rollback puts back, as plain data and the schedulers' own state dicts."""
        self.settle_shadow()
        state: dict = {"spec": self.spec, "spec_length": self._spec_length, "held": list(self.held), "overridden": list(self.overridden),
                       "anchor_scale": list(self.anchor_scale), "driven": self.driven,
                       "warmup": [self.warmup_total, self.warmup_done], "scheduler": None, "shadow": None,
                       "shadow_lrs": None}
        if self.scheduler is not None:
            state["scheduler"] = _copy(self.scheduler.state_dict())
        if self.shadow is not None:
            state["shadow"] = _copy(self.shadow.state_dict())
            state["shadow_lrs"] = [g["lr"] for g in self._shadow_opt.param_groups]
        return state

    def load_state_dict(self, state: dict, lrs: list[float]) -> None:
        """Puts back `state_dict()`'s state; `lrs` are the LRs in force when it was taken."""
        if state["spec"] != self.spec and state["spec"] is not None:
            self.install(state["spec"], lrs, state.get("spec_length"))
        elif state["spec"] is None and self.user_scheduler is not None and self.scheduler is not self.user_scheduler:
            self.scheduler = self.user_scheduler
            self.spec = None
            self._on_replaced(self.scheduler)
        self.driven = bool(state.get("driven", False))
        self.external = self._user_external and not self.driven
        if state["spec"] is not None:
            self._spec_length = state.get("spec_length")
        if self.scheduler is not None and state["scheduler"] is not None:
            base_class(self.scheduler).load_state_dict(self.scheduler, _copy(state["scheduler"]))
        if self.shadow is not None and state["shadow"] is not None:
            with self._shadow_lock:
                self._shadow_paid = self.shadow_owed
                base_class(self.shadow).load_state_dict(self.shadow, _copy(state["shadow"]))
                for g, x in zip(self._shadow_opt.param_groups, state["shadow_lrs"]):
                    g["lr"] = x
        self.held = list(state["held"])
        self.overridden = list(state["overridden"])
        self.anchor_scale = list(state.get("anchor_scale", [1.0] * len(self.held)))
        self.warmup_total, self.warmup_done = state["warmup"]
        for g, x in zip(self.optimizer.param_groups, lrs):
            g["lr"] = x


def _copy(state: dict) -> dict:
    return copy.deepcopy(state)
