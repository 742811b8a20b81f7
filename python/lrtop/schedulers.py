"""lrtop scheduler specs built as PyTorch schedulers: `cosine:T_max=200` is `CosineAnnealingLR(T_max=200)`,
`warmup:steps=500 -> cosine` is `SequentialLR([LinearLR, CosineAnnealingLR], milestones=[500])`.
"""
from __future__ import annotations

import copy
from typing import Any, Optional

import torch
from torch.optim import lr_scheduler as S

from .specs import Schedule, Segment, resolve


def _segment(opt: torch.optim.Optimizer, seg: Segment):
    p = seg.params
    k = seg.kind
    lrs = [g["lr"] for g in opt.param_groups]
    if k == "constant":
        return S.ConstantLR(opt, factor=1.0, total_iters=0)
    if k == "constantlr":
        return S.ConstantLR(opt, factor=p["factor"], total_iters=p["total_iters"])
    if k == "step":
        return S.StepLR(opt, step_size=p["step_size"], gamma=p["gamma"])
    if k == "multistep":
        return S.MultiStepLR(opt, milestones=p["milestones"], gamma=p["gamma"])
    if k == "exp":
        return S.ExponentialLR(opt, gamma=p["gamma"])
    if k == "cosine":
        return S.CosineAnnealingLR(opt, T_max=p["T_max"], eta_min=p["eta_min"])
    if k == "warm_restarts":
        return S.CosineAnnealingWarmRestarts(opt, T_0=p["T_0"], T_mult=p["T_mult"], eta_min=p["eta_min"])
    if k == "linear":
        return S.LinearLR(opt, start_factor=p["start_factor"], end_factor=p["end_factor"],
                          total_iters=p["total_iters"])
    if k == "warmup":
        return S.LinearLR(opt, start_factor=p["start_factor"], end_factor=1.0, total_iters=p["steps"] - 1)
    if k == "poly":
        return S.PolynomialLR(opt, total_iters=p["total_iters"], power=p["power"])
    if k == "onecycle":
        max_lr = p["max_lr"] if p["max_lr"] is not None else lrs
        return S.OneCycleLR(opt, max_lr=max_lr, total_steps=p["total_steps"], pct_start=p["pct_start"],
                            anneal_strategy=p["anneal_strategy"], div_factor=p["div_factor"],
                            final_div_factor=p["final_div_factor"], three_phase=p["three_phase"],
                            cycle_momentum=False)
    if k == "cyclic":
        base_lr = p["base_lr"] if p["base_lr"] is not None else lrs
        return S.CyclicLR(opt, base_lr=base_lr, max_lr=p["max_lr"], step_size_up=p["step_size_up"],
                          step_size_down=p["step_size_down"], mode=p["mode"], gamma=p["gamma"],
                          cycle_momentum=False)
    if k == "plateau":
        return S.ReduceLROnPlateau(opt, mode=p["mode"], factor=p["factor"], patience=p["patience"],
                                   threshold=p["threshold"], threshold_mode=p["threshold_mode"],
                                   cooldown=p["cooldown"], min_lr=p["min_lr"], eps=p["eps"])
    raise AssertionError(k)


def build(opt: torch.optim.Optimizer, schedule: Schedule):
    """Builds `schedule` over `opt`, relative to each group's current LR (which becomes its `initial_lr`, so a
    switch mid-run continues from where the LR is now instead of PyTorch's remembered first LR)."""
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    if len(schedule.segments) == 1:
        return _segment(opt, schedule.segments[0])
    children = [_segment(opt, seg) for seg in schedule.segments]
    return S.SequentialLR(opt, schedulers=children, milestones=schedule.milestones)


def build_spec(opt: torch.optim.Optimizer, spec: str, total_steps: Optional[int]):
    return build(opt, resolve(spec, total_steps, groups=len(opt.param_groups)))


def shadow_optimizer(opt: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """An optimizer with `opt`'s groups and LRs and one dummy parameter each: a scheduler stepped on it shows the
    schedule as planned, untouched by manual LR changes."""
    groups = []
    for g in opt.param_groups:
        # Every key the group holds: schedulers keep their anchors there too (OneCycleLR's `max_lr`, `min_lr`).
        d = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
        d["params"] = [torch.zeros(1, requires_grad=True)]
        d["lr"] = float(g["lr"])
        if "initial_lr" in g:
            d["initial_lr"] = float(g["initial_lr"])
        groups.append(d)
    shadow = torch.optim.SGD(groups, lr=float(opt.param_groups[0]["lr"]))

    # Never stepped for real: tell PyTorch's scheduler order check so it does not warn on every step.
    def step(*args: Any, **kwargs: Any) -> None:
        return None

    setattr(step, "_wrapped_by_lr_sched", True)
    setattr(shadow, "step", step)
    setattr(shadow, "_opt_called", True)
    return shadow


def twin(scheduler, opt: torch.optim.Optimizer, shadow_opt: torch.optim.Optimizer):
    """A copy of a user's scheduler driving `shadow_opt` instead of `opt` (None if it cannot be copied). The
    scheduler may hold a wrapper of `opt` (HF builds its scheduler on accelerate's `AcceleratedOptimizer`): the
    wrapper is replaced too, or the copy would step a copy of it, which PyTorch warns about (its step is not the
    one the scheduler's order check knows)."""
    memo = {id(opt): shadow_opt}
    held = getattr(scheduler, "optimizer", None)
    if held is not None:
        memo[id(held)] = shadow_opt
    try:
        return copy.deepcopy(scheduler, memo=memo)
    except Exception:
        return None


def describe(scheduler, spec: Optional[str]) -> str:
    """The status line's scheduler text: the lrtop spec when lrtop built it, else the PyTorch class and its clock."""
    if scheduler is None:
        return "constant"
    if spec:
        return spec
    name = getattr(type(scheduler), "_lrtop_base", type(scheduler)).__name__
    epoch = getattr(scheduler, "last_epoch", None)
    return f"{name} step {epoch}" if epoch is not None else name
