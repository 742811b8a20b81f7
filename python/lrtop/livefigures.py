"""The figures a status carries beyond the run's state (docs/bridge.md, status fields of protocol E): what `lrtop runs`
shows per row without reading the log. Nothing here runs on the training loop's path:

- `LogFigures` follows the log's records as the log writer encodes them (the socket's service thread, with every
  device value already arrived: no sync): the smoothed loss and its trend, the last validation figures, steps/s and
  samples/s over the last step records' wall times.
- `StepClock` follows the loop's step count and the time of its last step, sampled by the service thread each round
  (about ten times a second): the median step time, on every rank, without a line of code in `run.step()`.

Both hold a fixed amount of memory, whatever the run's length.
"""
from __future__ import annotations

import collections
import math
import threading
from typing import Any, Optional

# The dashboard's default smoothing (RunModel.smoothingWeights[1]): TensorBoard's debiased EMA with this weight.
SMOOTHING = 0.6
TREND_POINTS = 24
# Step records the rates are measured over (and steps the median step time covers).
WINDOW = 64


def _finite(x: Any) -> Optional[float]:
    """A record's number as a float, or None (NaN, infinity, the schema's strings for them, not a number)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        try:
            x = float(x)  # a Deferred that has arrived (devicevalues.py)
        except (TypeError, ValueError):
            return None
    x = float(x)
    return x if math.isfinite(x) else None


class LogFigures:
    """Fed every record the run log encodes (`observe`, the writer's encoding thread); read by the status (`figures`).

    `loss`: the debiased EMA (weight 0.6) of the step records' losses, non-finite losses skipped, as the dashboard's
    default smoothing draws it. `loss_trend`: that smoothed loss sampled every `stride` step records, the stride
    doubling (and every other point dropped) whenever `2 * TREND_POINTS` points are held: so the points span the
    whole run at about one per 1/24..1/48 of its steps; the status thins them to at most 23 (every k-th from the
    first) and adds the current value, oldest first. It goes on across a rollback (the log's records do)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ema = 0.0
        self._count = 0
        self._records = 0
        self._stride = 1
        self._points: list[float] = []
        self._walls: collections.deque = collections.deque(maxlen=WINDOW + 1)
        self._rates: collections.deque = collections.deque(maxlen=WINDOW + 1)
        self.val_loss: Optional[float] = None
        self.val_acc: Optional[float] = None

    def observe(self, item: object) -> None:
        """A record as the writer queued it: a step tuple (runlog.RunLogWriter.step) or a record dict."""
        if type(item) is tuple:
            _, _, _, loss, _, samples_per_sec, wall_time, _ = item
            with self._lock:
                self._step(_finite(loss), _finite(samples_per_sec), _finite(wall_time))
        elif type(item) is dict and item.get("type") == "eval":
            loss, acc = _finite(item.get("loss")), _finite(item.get("accuracy"))
            with self._lock:
                self.val_loss, self.val_acc = loss, acc

    def _step(self, loss: Optional[float], rate: Optional[float], wall: Optional[float]) -> None:
        if loss is not None:
            self._ema = self._ema * SMOOTHING + (1 - SMOOTHING) * loss
            self._count += 1
        smoothed = self._smoothed()
        if smoothed is not None:
            if self._records % self._stride == 0:
                self._points.append(smoothed)
                if len(self._points) >= 2 * TREND_POINTS:
                    del self._points[1::2]
                    self._stride *= 2
            self._records += 1
        if wall is not None:
            self._walls.append(wall)
            self._rates.append(rate)

    def _smoothed(self) -> Optional[float]:
        if self._count == 0:
            return None
        value = self._ema / (1 - SMOOTHING ** self._count)
        return value if math.isfinite(value) else None

    def figures(self) -> dict:
        """`loss`, `loss_trend`, `val_loss`, `val_acc`, `steps_per_s`, `samples_per_s` (None when unknown)."""
        with self._lock:
            smoothed = self._smoothed()
            points = list(self._points)
            walls = list(self._walls)
            rates = list(self._rates)
            val_loss, val_acc = self.val_loss, self.val_acc
        trend: Optional[list[float]] = None
        if smoothed is not None:
            k = max(1, math.ceil(len(points) / (TREND_POINTS - 1)))
            trend = points[::k]  # from the run's first step record on
            if not trend or trend[-1] != smoothed:
                trend.append(smoothed)
            trend = trend[-TREND_POINTS:]
        steps_per_s = samples_per_s = None
        span = walls[-1] - walls[0] if len(walls) >= 2 else 0.0
        if span > 0:
            steps_per_s = (len(walls) - 1) / span
            # Samples per second over the same steps: each step's rate weighted by its duration (its samples).
            known = [(r, b - a) for r, a, b in zip(rates[1:], walls, walls[1:]) if r is not None]
            time_known = sum(dt for _, dt in known)
            if known and time_known > 0:
                samples_per_s = sum(r * dt for r, dt in known) / time_known
        return {"loss": smoothed, "loss_trend": trend, "val_loss": val_loss, "val_acc": val_acc,
                "steps_per_s": steps_per_s, "samples_per_s": samples_per_s}


class StepClock:
    """The loop's step times, seen from the service thread: each round it notes the step count and the time of the
    last step (`sample`); between two notes that differ, `steps` steps took `seconds`. The median step time weighs
    each such span by its steps, over the last `WINDOW` steps. The first step's span is not one (it holds the
    script's setup since attach), so there is none before the second step; a rollback (the count going back) starts
    over from there."""

    def __init__(self) -> None:
        self._step: Optional[int] = None
        self._at = 0.0
        self._spans: collections.deque = collections.deque(maxlen=WINDOW)

    def sample(self, step: int, at: float) -> None:
        last = self._step
        if last is None or step < last:
            self._step, self._at = step, at
            return
        if step > last and at > self._at:
            if last > 0:
                self._spans.append((step - last, at - self._at))
            self._step, self._at = step, at

    def median(self) -> Optional[float]:
        """Median seconds per step over the last `WINDOW` steps (None before two steps)."""
        taken: list[tuple[float, int]] = []
        left = WINDOW
        for steps, seconds in reversed(list(self._spans)):
            n = min(steps, left)
            taken.append((seconds / steps, n))
            left -= n
            if left <= 0:
                break
        if not taken:
            return None
        taken.sort()
        half = sum(n for _, n in taken) / 2
        seen = 0
        for per_step, n in taken:
            seen += n
            if seen >= half:
                return per_step
        return taken[-1][0]
