#!/usr/bin/env python3
"""Records the metric import fixtures in Tests/LRLogTests/Fixtures/metrics: a TensorBoard event file with a dozen scalar
tags written by PyTorch's own SummaryWriter, and a PyTorch Lightning CSVLogger metrics.csv of a module that
`self.log`s several metrics (plus LearningRateMonitor's LR), each from a real (tiny, seeded) training run. The
manifest.json beside them says what each holds (every tag or column with its count, first and last values), which
the Swift tests (Tests/LRLogTests/MetricImportTests.swift, the tmux tests in Tests/LRTopCLITests) check the import
against. Tests never need tensorboard: only this script does.

Run it with a Python that has torch and pytorch_lightning (the lrtop venv) and tensorboard, e.g.:
    ~/.cache/lrtop/venv/bin/python -m pip install --target /tmp/tbpkgs tensorboard
    LRTOP_EXTRA_SITE=/tmp/tbpkgs ~/.cache/lrtop/venv/bin/python scripts/record_metric_fixtures.py
"""
import csv
import json
import math
import os
import pathlib
import shutil
import sys
import warnings

warnings.filterwarnings("ignore")
if os.environ.get("LRTOP_EXTRA_SITE"):
    sys.path.append(os.environ["LRTOP_EXTRA_SITE"])  # after the venv's own packages: its torch and numpy win

import torch  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
from pytorch_lightning.callbacks import LearningRateMonitor  # noqa: E402
from pytorch_lightning.loggers import CSVLogger  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "LRLogTests" / "Fixtures" / "metrics"


def data(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))


def tensorboard_run(folder):
    """200 steps of a tiny classifier, 12 scalar tags (9 every step, 3 every 50 steps), a histogram and a text
    summary (which a scalar reader must skip); new_style tensors for half the tags, simple_value for the rest."""
    x, y = data()
    net = model()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=200)
    writer = SummaryWriter(log_dir=str(folder))
    logged = {}

    def log(tag, value, step, new_style):
        value = float(value)
        writer.add_scalar(tag, value, step, new_style=new_style)
        logged.setdefault(tag, []).append((step, value))

    for step in range(200):
        i = (step * 32) % 512
        xb, yb = x[i:i + 32], y[i:i + 32]
        logits = net(xb)
        loss = torch.nn.functional.cross_entropy(logits, yb)
        opt.zero_grad()
        loss.backward()
        grads = [p.grad.norm() for p in net.parameters()]
        total = torch.norm(torch.stack(grads))
        opt.step()
        log("train/loss", loss.item(), step, False)
        log("train/acc", (logits.argmax(1) == yb).float().mean().item(), step, True)
        log("train/lr", sched.get_last_lr()[0], step, False)
        log("train/grad_norm", total.item(), step, True)
        log("grad/layer0", grads[0].item(), step, False)
        log("grad/layer2", grads[2].item(), step, True)
        log("train/ppl", math.exp(loss.item()), step, False)
        log("train/margin", (logits[:, 1] - logits[:, 0]).abs().mean().item(), step, True)
        log("epoch", step // 16, step, False)
        sched.step()
        if step % 50 == 49:
            with torch.no_grad():
                vl = net(x)
                log("val/loss", torch.nn.functional.cross_entropy(vl, y).item(), step, True)
                log("val/acc", (vl.argmax(1) == y).float().mean().item(), step, False)
                log("val/err", (vl.argmax(1) != y).float().mean().item(), step, True)
            writer.add_histogram("weights/layer0", net[0].weight, step)
            writer.add_text("notes", f"step {step}", step)
    writer.close()
    files = list(folder.glob("events.out.tfevents.*"))
    assert len(files) == 1, files
    name = "tensorboard_dozen/" + files[0].name
    return name, {
        "writer": f"torch {torch.__version__} SummaryWriter (new_style=True for half the tags)",
        "tags": {t: len(v) for t, v in logged.items()},
        "first": {t: v[0] for t, v in logged.items()},
        "last": {t: v[-1] for t, v in logged.items()},
        "skipped": "a histogram and a text summary every 50 steps",
        "value_precision": "float32",
    }


class Module(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = model()

    def training_step(self, batch, _):
        xb, yb = batch
        logits = self.net(xb)
        loss = torch.nn.functional.cross_entropy(logits, yb)
        self.log("train_loss", loss)
        self.log("train_acc", (logits.argmax(1) == yb).float().mean(), on_step=True, on_epoch=True)
        self.log("train/margin", (logits[:, 1] - logits[:, 0]).abs().mean())
        return loss

    def validation_step(self, batch, _):
        xb, yb = batch
        logits = self.net(xb)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, yb))
        self.log("val_acc", (logits.argmax(1) == yb).float().mean())
        self.log("val/err", (logits.argmax(1) != yb).float().mean())

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=1e-2)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(opt, 10, 0.5),
                                                     "interval": "step"}}


def lightning_run(folder):
    """3 epochs of 16 steps, logged every step, validated every epoch, with LearningRateMonitor."""
    x, y = data()
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:128], y[:128]), batch_size=64)
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(max_epochs=3, logger=CSVLogger(str(folder), name="run"), log_every_n_steps=1,
                         callbacks=[LearningRateMonitor(logging_interval="step")], enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1)
    trainer.fit(Module(), train, val)
    path = folder / "run" / "version_0" / "metrics.csv"
    rows = list(csv.DictReader(open(path)))
    header = list(rows[0].keys())
    columns = {}
    for r in rows:
        for c in header:
            if c != "step" and r[c] != "":
                columns.setdefault(c, []).append((int(r["step"]), float(r[c])))
    for extra in folder.glob("run/version_0/hparams.yaml"):
        extra.unlink()
    return "lightning_many/run/version_0/metrics.csv", {
        "writer": f"pytorch_lightning {pl.__version__} CSVLogger + LearningRateMonitor",
        "header": ",".join(header),
        "rows": len(rows),
        "columns": {c: len(v) for c, v in columns.items()},
        "first": {c: v[0] for c, v in columns.items()},
        "last": {c: v[-1] for c, v in columns.items()},
    }


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    manifest = {}
    name, entry = tensorboard_run(OUT / "tensorboard_dozen")
    manifest[name] = entry
    name, entry = lightning_run(OUT / "lightning_many")
    manifest[name] = entry
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: v.get("tags", v.get("columns")) for k, v in manifest.items()}, indent=1))


if __name__ == "__main__":
    main()
