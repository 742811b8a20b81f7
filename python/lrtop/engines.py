"""Engines that own the optimizer or the scheduler: lrtop steers what they wrap, or says why it cannot.

- accelerate (`Accelerator.prepare`): its `AcceleratedOptimizer` and `AcceleratedScheduler` wrap a torch optimizer
  and scheduler; `AcceleratedScheduler.step()` steps the wrapped scheduler (once per process per optimizer step,
  not when the optimizer step was skipped or gradients are still accumulating). lrtop attaches to what they wrap:
  its optimizer hooks see every real step, and `lr`/`sched`/`warmup`/hold route through the wrapped scheduler's
  `step()`, which accelerate calls as it always does (a `sched` replacement included: the routed step of the
  scheduler accelerate holds steps the new one).
- DeepSpeed (`deepspeed.initialize`): its engine steps its own optimizer (a ZeRO wrapper, not a torch optimizer:
  no step hooks) and its own scheduler inside `engine.step()`. Refused at attach with the reason, detected by type
  (the module the class comes from) without importing DeepSpeed.
"""
from __future__ import annotations

from typing import Any, Optional


def _from(obj: Any, package: str) -> bool:
    return type(obj).__module__.split(".")[0] == package


def unwrap(optimizer: Any, scheduler: Any) -> tuple[Any, Any, Optional[str]]:
    """The torch optimizer and scheduler lrtop steers, and the engine's name (None: plain torch). Raises TypeError,
    saying why and what to do, for an engine lrtop cannot steer."""
    for obj, what in ((optimizer, "optimizer"), (scheduler, "scheduler")):
        if obj is not None and _from(obj, "deepspeed"):
            raise TypeError(f"lrtop.attach: the {what} is DeepSpeed's ({type(obj).__name__}): DeepSpeed's engine "
                            "steps its own optimizer and scheduler inside engine.step(), where lrtop has no hook; "
                            "lrtop steers torch optimizers (plain, DDP, FSDP2, accelerate), not DeepSpeed engines")
    engine = None
    if _from(optimizer, "accelerate") and hasattr(optimizer, "optimizer"):
        optimizer, engine = optimizer.optimizer, "accelerate"
    if scheduler is not None and _from(scheduler, "accelerate") and hasattr(scheduler, "scheduler"):
        scheduler, engine = scheduler.scheduler, "accelerate"
    return optimizer, scheduler, engine
