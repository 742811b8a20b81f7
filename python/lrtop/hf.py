"""HF Transformers integration: `Trainer(..., callbacks=[lrtop.hf.LrtopCallback()])`.

Hook points, as Transformers defines them: `on_step_end` runs after `optimizer.step()` and `lr_scheduler.step()`
(its kwargs carry `optimizer` and `lr_scheduler`), so commands apply at the optimizer-step boundary. HF has no pause
flag, so a pause blocks inside the callback. `stop` sets `control.should_training_stop`, `ckpt` also sets
`control.should_save` (HF writes its own checkpoint as well), `eval` sets `control.should_evaluate`. The scheduler the
Trainer holds keeps being the one it steps: after `sched SPEC` its `step()` drives the new schedule.
The per-step loss is read from the model's output (`outputs.loss`) during training forwards.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from transformers import TrainerCallback

from .run import Run


class _HFRun(Run):
    control = None

    def _on_manual_checkpoint(self) -> None:
        if self.control is not None:
            self.control.should_save = True


def _updates_per_epoch(args, loader) -> Optional[int]:
    """Optimizer steps an epoch, as the Trainer counts them (`set_initial_training_values`: the batches over
    `gradient_accumulation_steps`, rounded up, at least 1), whatever `max_steps` says: with `--max_steps`,
    `num_train_epochs` is not the run's epochs."""
    try:
        n = len(loader) if loader is not None else 0
    except TypeError:  # an iterable dataset has no length
        return None
    accumulate = max(1, args.gradient_accumulation_steps)
    return max(1, -(-n // accumulate)) if n else None


class LrtopCallback(TrainerCallback):
    """Logs the run in lrtop's format and lets `lrtop attach` steer it. Options as for `lrtop.attach`."""

    def __init__(self, name: Optional[str] = None, log_dir: str = "runs", **options):
        self.name, self.log_dir, self.options = name, log_dir, options
        self.run: Optional[_HFRun] = None
        self._losses: list = []
        self._hook = None

    def on_train_begin(self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs):
        if optimizer is None:
            return
        # Accelerate wraps the optimizer; the torch optimizer inside holds the param groups and the step hooks.
        torch_opt = getattr(optimizer, "optimizer", optimizer)
        if lr_scheduler is not None and not isinstance(lr_scheduler, (torch.optim.lr_scheduler.LRScheduler,
                                                  torch.optim.lr_scheduler.ReduceLROnPlateau)):
            lr_scheduler = getattr(lr_scheduler, "scheduler", lr_scheduler)  # accelerate's AcceleratedScheduler
        per_epoch = _updates_per_epoch(args, kwargs.get("train_dataloader"))
        if per_epoch is None and state.max_steps and args.num_train_epochs and args.max_steps <= 0:
            per_epoch = max(1, math.ceil(state.max_steps / args.num_train_epochs))
        opts = {"total_steps": state.max_steps or None, "steps_per_epoch": per_epoch,
                "batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps
                * max(1, args.world_size), "seed": args.seed}
        opts.update(self.options)
        self.run = _HFRun(torch_opt, lr_scheduler, model=model, name=self.name, log_dir=self.log_dir, framework="hf",
                          scheduler_stepped_externally=True, eval_fn=self._request_eval, epoch_base=0, **opts)
        self.run.control = control
        if model is not None:
            self._hook = model.register_forward_hook(self._capture_loss)

    def _capture_loss(self, module, inputs, output):
        if module.training:
            loss = getattr(output, "loss", None)
            if loss is None and isinstance(output, dict):
                loss = output.get("loss")
            if isinstance(loss, torch.Tensor):
                self._losses.append(loss.detach())

    def _request_eval(self):
        if self.run is not None and self.run.control is not None:
            self.run.control.should_evaluate = True

    def on_step_end(self, args, state, control, **kwargs):
        run = self.run
        if run is None:
            return control
        run.control = control
        loss = torch.stack(self._losses).float().mean() if self._losses else math.nan
        self._losses.clear()
        run.step(loss=loss, epoch=int(state.epoch or 0))
        if run.should_stop:
            control.should_training_stop = True
        return control

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self.run is not None and metrics:
            self.run.eval(val_loss=metrics.get("eval_loss"),
                          val_acc=metrics.get("eval_accuracy", metrics.get("eval_acc")))

    def on_train_end(self, args, state, control, **kwargs):
        if self._hook is not None:
            self._hook.remove()
        if self.run is not None:
            self.run.close()
