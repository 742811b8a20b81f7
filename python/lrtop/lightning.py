"""Lightning integration: `trainer = Trainer(callbacks=[lrtop.lightning.LrtopCallback()])`.

Hook points, as Lightning defines them: `on_train_batch_end` runs after the optimizer step and Lightning's own
step-interval scheduler step, so commands apply at the optimizer-step boundary (and a pause blocks there). Param
groups come from `trainer.optimizers[0]`; `sched SPEC` puts the new PyTorch scheduler into
`trainer.strategy.lr_scheduler_configs`; `stop` sets `trainer.should_stop`, agreed across ranks with
`trainer.strategy.reduce_boolean_decision` as `EarlyStopping` does; `eval` runs Lightning's validation loop.
"""
from __future__ import annotations

import math
from typing import Any, Optional

try:  # the unified package first, then the standalone one; a Trainer only accepts its own Callback class
    import lightning.pytorch as pl
    from lightning.pytorch.utilities.types import LRSchedulerConfig
except ImportError:  # pragma: no cover - depends on what is installed
    import pytorch_lightning as pl
    from pytorch_lightning.utilities.types import LRSchedulerConfig

import torch

from .run import Run


class _LightningRun(Run):
    def __init__(self, trainer, *args, **kwargs):
        self._trainer = trainer
        super().__init__(*args, **kwargs)

    def _on_scheduler_replaced(self, scheduler) -> None:
        configs = self._trainer.strategy.lr_scheduler_configs
        if configs:
            configs[0].scheduler = scheduler
            configs[0].interval = "step"
            configs[0].frequency = 1
        else:
            configs.append(LRSchedulerConfig(scheduler, interval="step",
                                             reduce_on_plateau=isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau),
                                             monitor="val_loss"))


def _loss_of(outputs: Any) -> float:
    if isinstance(outputs, dict):
        outputs = outputs.get("loss")
    if isinstance(outputs, torch.Tensor):
        return float(outputs.detach().float().mean().item())
    try:
        return float(outputs)
    except (TypeError, ValueError):
        return math.nan


def _samples_in(batch: Any) -> Optional[int]:
    """The batch's size, for samples/s: the first dimension of its first tensor (a tensor, a tuple or list, a dict),
    read from the shape (no device sync); None when the batch holds no tensor (the step then logs no rate)."""
    for _ in range(4):  # nested at most a few levels: ((x, y), meta), {"input": (ids, mask)}
        if isinstance(batch, torch.Tensor):
            return int(batch.shape[0]) if batch.dim() > 0 else None
        if isinstance(batch, (list, tuple)) and batch:
            batch = next((b for b in batch if isinstance(b, (torch.Tensor, list, tuple, dict))), None)
        elif isinstance(batch, dict) and batch:
            batch = next((b for b in batch.values() if isinstance(b, (torch.Tensor, list, tuple, dict))), None)
        else:
            return None
    return None


class LrtopCallback(pl.Callback):
    """Logs the run in lrtop's format and lets `lrtop attach` steer it. Options as for `lrtop.attach`."""

    def __init__(self, name: Optional[str] = None, log_dir: str = "runs", val_loss_key: str = "val_loss",
                 val_acc_key: str = "val_acc", **options):
        self.name, self.log_dir, self.options = name, log_dir, options
        self.val_loss_key, self.val_acc_key = val_loss_key, val_acc_key
        self.run: Optional[Run] = None

    def on_train_start(self, trainer, pl_module) -> None:
        configs = trainer.strategy.lr_scheduler_configs
        scheduler = configs[0].scheduler if configs else None
        per_epoch = trainer.num_training_batches
        accumulate = max(1, trainer.accumulate_grad_batches)
        total = trainer.estimated_stepping_batches
        opts = {"total_steps": int(total) if math.isfinite(total) else None,
                "steps_per_epoch": int(per_epoch // accumulate) if math.isfinite(per_epoch) else None}
        opts.update(self.options)
        self.run = _LightningRun(trainer, trainer.optimizers[0], scheduler, model=pl_module, name=self.name,
                                 log_dir=self.log_dir, framework="lightning", scheduler_stepped_externally=True,
                                 epoch_base=0,
                                 eval_fn=lambda: self._validate(trainer), **opts)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        run = self.run
        if run is None or trainer.fit_loop._should_accumulate():
            return
        n = _samples_in(batch)  # this micro-batch; the step took `accumulate_grad_batches` of them on every rank
        samples = n * max(1, trainer.accumulate_grad_batches) * max(1, trainer.world_size) if n else None
        run.step(loss=_loss_of(outputs), epoch=trainer.current_epoch, samples=samples)
        if run.should_stop:
            trainer.should_stop = trainer.strategy.reduce_boolean_decision(True, all=False)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.run is None or trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        self.run.eval(val_loss=m.get(self.val_loss_key), val_acc=m.get(self.val_acc_key))

    def on_train_end(self, trainer, pl_module) -> None:
        if self.run is not None:
            self.run.close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self.run is not None:
            # Lightning's SIGTERMException (a SystemExit) and Ctrl-C end the run as interrupted, not failed.
            stopped = isinstance(exception, (KeyboardInterrupt, SystemExit)) or self.run._signal is not None
            self.run.close("interrupted" if stopped else "failed", f"{type(exception).__name__}: {exception}"[:500])

    @staticmethod
    def _validate(trainer) -> None:
        """Runs Lightning's validation loop now, as its epoch loop does for `val_check_interval`."""
        loop = trainer.fit_loop.epoch_loop
        if not trainer.val_dataloaders and not getattr(trainer.fit_loop, "_data_source", None):
            raise RuntimeError("no validation data: pass val_dataloaders to trainer.fit")
        trainer.validating = True
        first = trainer._logger_connector._first_loop_iter
        try:
            loop.val_loop.run()
        finally:
            trainer.training = True
            trainer._logger_connector._first_loop_iter = first
