"""The LR range test (fastai's `lr_find`) as lrtop runs it, by the same rules as the Swift trainer
(Sources/LRLog/RangeTest): the LR of sweep step i is `start * (end/start) ** (i/steps)`; the loss is smoothed as
fastai's `AvgSmoothLoss` (beta 0.98, debiased); the sweep stops when the smoothed loss passes 4x its minimum (fastai's
`stop_div`) or is not finite. The suggestions are computed as fastai (`valley`, `steep`, `minimum`, `slide`, on what
`Learner.lr_find` hands them) and Lightning (`_LRFinder.suggestion`) compute them: on float32 tensors, with the same
operations, so the same index wins (python/tests/test_findlr.py holds them to spec/lr_find_curves.json, recorded
from the libraries themselves).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch

DEFAULT_START = 1e-7
DEFAULT_END = 10.0
DEFAULT_STEPS = 100
SMOOTHING = 0.98
DIVERGENCE_FACTOR = 4.0


@dataclass(frozen=True)
class Settings:
    start: float = DEFAULT_START
    end: float = DEFAULT_END
    steps: int = DEFAULT_STEPS

    def lr(self, index: int) -> float:
        return self.start * math.pow(self.end / self.start, index / self.steps)

    @property
    def command_text(self) -> str:
        """As the command is written, the defaults left out (the Swift `LRRangeSettings.commandText`)."""
        parts = ["find-lr"]
        if self.start != DEFAULT_START:
            parts.append(f"start={self.start!r}")
        if self.end != DEFAULT_END:
            parts.append(f"end={self.end!r}")
        if self.steps != DEFAULT_STEPS:
            parts.append(f"steps={self.steps}")
        return " ".join(parts)

    @property
    def config_entries(self) -> dict:
        """The sub-run header's config keys that carry the settings, so a reader rebuilds the same curve."""
        return {"find_lr_start": repr(float(self.start)), "find_lr_end": repr(float(self.end)),
                "find_lr_steps": str(self.steps)}


STOP_TEXT = {"completed": "all steps taken", "diverged": "stopped: loss > 4x min",
             "non_finite": "stopped: loss not finite"}


@dataclass
class Curve:
    """A range test's curve as it grows: LRs, raw losses, fastai's smoothed losses, and why it stopped."""
    settings: Settings
    lrs: list = field(default_factory=list)
    raw_losses: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    stop: Optional[str] = None  # "completed" | "diverged" | "non_finite"
    _average: float = 0.0
    _best: float = math.inf

    @property
    def count(self) -> int:
        return len(self.lrs)

    @property
    def next_lr(self) -> Optional[float]:
        return self.settings.lr(len(self.lrs)) if self.stop is None else None

    def append(self, lr: float, loss: float) -> bool:
        """Records one step; returns whether the sweep goes on."""
        if self.stop is not None:
            return False
        self.lrs.append(lr)
        self.raw_losses.append(loss)
        self._average = SMOOTHING * self._average + (1 - SMOOTHING) * loss
        smoothed = self._average / (1 - SMOOTHING ** len(self.lrs))
        self.losses.append(smoothed)
        if not math.isfinite(loss) or not math.isfinite(smoothed):
            self.stop = "non_finite"
        else:
            self._best = min(self._best, smoothed)
            if smoothed > DIVERGENCE_FACTOR * self._best:
                self.stop = "diverged"
            elif len(self.lrs) >= self.settings.steps:
                self.stop = "completed"
        return self.stop is None

    def suggestions(self) -> dict:
        return suggestions(self.lrs, self.losses, self.settings.steps)

    @property
    def summary(self) -> str:
        """'87 steps, stopped: loss > 4x min; valley 2.1e-03 · steep ...' (the Swift `LRRangeCurve.summary`)."""
        n = self.count
        text = f"{n} step" + ("" if n == 1 else "s")
        if self.stop is not None:
            text += ", " + STOP_TEXT[self.stop]
        named = [(name, lr) for name, lr in self.suggestions().items() if lr is not None]
        if not named:
            return text + "; too few points for a suggestion"
        return text + "; " + " · ".join(f"{name} {'%.3g' % lr}" for name, lr in named)


# ---------------------------------------------------------------------------------------------------- suggestions


def suggestions(lrs: list, losses: list, num_it: int) -> dict:
    """Every suggestion for a curve of LRs and smoothed losses over a sweep planned for `num_it` steps, in display
    order (valley first: fastai's default); None where the library gives none. Keys: valley, steep, min/10, slide,
    lightning."""
    t_lrs, t_losses = _fastai_slice(lrs, losses, num_it)
    return {"valley": valley(t_lrs, t_losses), "steep": steep(t_lrs, t_losses), "min/10": minimum(t_lrs, t_losses),
            "slide": slide(t_lrs, t_losses), "lightning": lightning_suggestion(lrs, losses)}


def _fastai_slice(lrs: list, losses: list, num_it: int):
    """What `Learner.lr_find` hands the functions: `tensor(recorder.lrs[num_it//10:-5])` (losses alike), cut at the
    first NaN loss."""
    t_lrs = torch.tensor([float(x) for x in lrs[num_it // 10:-5]], dtype=torch.float32)
    t_losses = torch.tensor([float(x) for x in losses[num_it // 10:-5]], dtype=torch.float32)
    nan = torch.nonzero(torch.isnan(t_losses.view(-1)))
    if len(nan) > 0:
        drop = int(nan.min())
        t_lrs, t_losses = t_lrs[:drop], t_losses[:drop]
    return t_lrs, t_losses


def valley(lrs: torch.Tensor, losses: torch.Tensor) -> Optional[float]:
    """fastai's `valley`: about two thirds down the longest descending run."""
    n = len(losses)
    if n == 0:
        return None
    values = losses.tolist()  # the float32 values, compared as fastai compares the tensor's elements
    max_start = max_end = 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if values[i] < values[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    try:
        return float(lrs[idx])
    except IndexError:
        return None


def steep(lrs: torch.Tensor, losses: torch.Tensor) -> Optional[float]:
    """fastai's `steep`: where the loss falls fastest against log(LR)."""
    if len(losses) < 2:
        return None
    grads = (losses[1:] - losses[:-1]) / (lrs[1:].log() - lrs[:-1].log())
    return lrs[grads.argmin()].item()


def minimum(lrs: torch.Tensor, losses: torch.Tensor) -> Optional[float]:
    """fastai's `minimum`: a tenth of the LR at the lowest loss."""
    if len(losses) == 0:
        return None
    return lrs[losses.argmin()].item() / 10


def slide(lrs: torch.Tensor, losses: torch.Tensor, lr_diff: int = 15, thresh: float = .005,
          adjust_value: float = 1.) -> Optional[float]:
    """fastai's `slide` (the interval slide rule); None where fastai raises (a curve of `lr_diff` points or fewer)."""
    import numpy as np
    if len(losses) <= lr_diff:
        return None
    values = losses.numpy()
    loss_grad = np.gradient(values)
    r_idx = -1
    l_idx = r_idx - lr_diff
    local_min_lr = lrs[l_idx]
    while (l_idx >= -len(values)) and (abs(loss_grad[r_idx] - loss_grad[l_idx]) > thresh):
        local_min_lr = lrs[l_idx]
        r_idx -= 1
        l_idx -= 1
    return float(local_min_lr) * adjust_value


def lightning_suggestion(lrs: list, losses: list, skip_begin: int = 10, skip_end: int = 1) -> Optional[float]:
    """Lightning's `_LRFinder.suggestion()`: the steepest gradient against the LR after skipping the first 10 points
    and the last one. Returns the recorded LR itself (not its float32 copy), as Lightning does."""
    t_losses = torch.tensor([float(x) for x in losses[skip_begin:-skip_end]], dtype=torch.float32)
    t_lrs = torch.tensor([float(x) for x in lrs[skip_begin:-skip_end]], dtype=torch.float32)
    finite = torch.isfinite(t_losses)
    t_losses, t_lrs = t_losses[finite], t_lrs[finite]
    if len(t_losses) < 2:
        return None
    gradients = torch.gradient(t_losses, spacing=[t_lrs])[0]
    best = int(torch.argmin(gradients).item())
    kept = torch.arange(len(losses))[skip_begin:-skip_end][finite]
    return float(lrs[int(kept[best].item())])
