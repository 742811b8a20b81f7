"""The divergence guard of a bridged run, as the Swift trainer's (Sources/LRTrain/Training/DivergenceGuard.swift):
a NaN or infinite loss, or a loss over `factor` times the best smoothed (EMA 0.9) loss after 10 steps (floored at a
tenth of the first losses), trips it. What it then does (pause, rollback with the LR halved, stop) is the run's to
apply at the step boundary; the guard says why, and counts the rollbacks that did not help: after
`MAX_ROLLBACKS` in a row without the run getting past the step that diverged, it asks to escalate.
"""
from __future__ import annotations

import math
from typing import Literal, Optional

GuardAction = Literal["pause", "rollback", "stop", "off"]
ACTIONS: tuple[GuardAction, ...] = ("pause", "rollback", "stop", "off")
# Rollbacks in a row (each to the last checkpoint, LR halved) before the guard stops trying.
MAX_ROLLBACKS = 3


class DivergenceGuard:
    def __init__(self, action: GuardAction = "pause", factor: float = 10.0):
        if action not in ACTIONS:
            raise ValueError(f"lrtop: guard must be one of pause, rollback, stop, off (got {action!r})")
        self.action: GuardAction = action
        self.factor = factor
        self._ema: Optional[float] = None
        self._best: Optional[float] = None
        self._first: list[float] = []
        self._floor = 0.0
        self.rollbacks = 0  # in a row
        self._tripped_at = 0  # the furthest step a trip answered by a rollback happened at

    def check(self, loss: float, step: int) -> Optional[str]:
        """The reason the guard trips at this step's loss, or None (and the loss joins the smoothed baseline)."""
        if self.rollbacks and step > self._tripped_at:
            self.rollbacks = 0  # past the step that diverged: the rollbacks helped
        if not math.isfinite(loss):
            return f"loss is {'NaN' if math.isnan(loss) else 'infinite'} at step {step}"
        if len(self._first) < 10:
            self._first.append(loss)
            self._floor = 0.1 * (sum(self._first) / len(self._first))
        best = self._best
        if self.factor > 0 and best is not None and step > 10 and loss > self.factor * max(best, self._floor):
            return f"loss {loss:.4g} at step {step} is over {self.factor:g}x the best smoothed loss {best:.4g}"
        self._ema = loss if self._ema is None else 0.9 * self._ema + 0.1 * loss
        self._best = self._ema if best is None else min(best, self._ema)
        return None

    @property
    def exhausted(self) -> bool:
        """Whether rolling back again is pointless: `MAX_ROLLBACKS` in a row have not helped."""
        return self.rollbacks >= MAX_ROLLBACKS

    def rolled_back(self, tripped_at: int) -> None:
        self.rollbacks += 1
        self._tripped_at = max(self._tripped_at, tripped_at)

    def restart(self) -> None:
        """After the run's state jumped (a rollback, a resume): the smoothed loss starts again."""
        self._ema = self._best = None

    def state_dict(self) -> dict:
        return {"ema": self._ema, "best": self._best, "first": list(self._first), "floor": self._floor,
                "rollbacks": self.rollbacks, "tripped_at": self._tripped_at}

    def load_state_dict(self, state: dict) -> None:
        self._ema, self._best = state["ema"], state["best"]
        self._first, self._floor = list(state["first"]), state["floor"]
        self.rollbacks, self._tripped_at = state["rollbacks"], state["tripped_at"]
