"""A Lightning run steered live from lrtop: the only lrtop line is the callback.

    python python/examples/lightning_run.py           # prints: lrtop: steer this run with: lrtop attach runs/NAME
    lrtop attach                                      # in another terminal

A small MLP learns a synthetic 4-class problem with SGD and a step-interval StepLR, on the CPU; `--step-delay`
slows it down to watch.
"""
import time

import torch
import torch.nn.functional as F

try:  # the same package lrtop.lightning uses: a Trainer only accepts its own Callback class
    import lightning.pytorch as pl
except ImportError:
    import pytorch_lightning as pl

from example_common import mlp, parser, teacher_problem
from lrtop.lightning import LrtopCallback


class Classifier(pl.LightningModule):
    def __init__(self, lr: float):
        super().__init__()
        self.lr = lr
        self.net = mlp()

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        # A metric of the module's own: lrtop reads it at Lightning's logging cadence (log_every_n_steps).
        self.log("train/acc", (logits.argmax(1) == y).float().mean())
        return F.cross_entropy(logits, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1000, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class Slow(pl.Callback):
    """Sleeps after each step, so a person (or a test) can watch and steer."""

    def __init__(self, delay: float):
        self.delay = delay

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.delay:
            time.sleep(self.delay)


def main() -> None:
    args = parser(__doc__, lr=0.05, batch_size=64).parse_args()
    x_train, y_train, x_val, y_val = teacher_problem(args.seed, n_val=512)
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train),
                                        batch_size=args.batch_size, shuffle=True)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_val, y_val), batch_size=256)
    trainer = pl.Trainer(max_steps=args.steps, val_check_interval=min(args.eval_every, len(train)),
                         check_val_every_n_epoch=None, log_every_n_steps=10,
                         callbacks=[LrtopCallback(name=args.name, log_dir=args.log_dir, seed=args.seed,
                                                  batch_size=args.batch_size), Slow(args.step_delay)],
                         accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(Classifier(args.lr), train, val)


if __name__ == "__main__":
    main()
