"""Metrics (docs/runlog.md "Metrics"): `run.step(**metrics)`, `run.log(...)`, tensors read off the loop, and what
Lightning's `self.log` and HF's `on_log` hand over, written where the schema puts them."""
import math
import os

import pytest
import torch

import lrtop
from conftest import read_log, tiny_bert
from test_frameworks import _toy_data

os.environ["HF_HUB_OFFLINE"] = "1"


def test_step_metrics_and_run_log_are_written_where_the_schema_puts_them(tmp_path):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name="m", log_dir=str(tmp_path), announce=False)
    run.step(loss=1.0, acc=torch.tensor(0.25), ppl=float("inf"), note="not a number", n=torch.tensor([1.0, 2.0]))
    run.step(loss=0.5)
    run.log({"loss": torch.tensor(0.75), "val/f1": 0.5, "flag": "x"})
    run.log({"tokens": 10}, step=7)
    run.log({"only": "text"})  # nothing numeric: no record
    run.eval(val_loss=0.4, val_acc=0.9, val_f1=torch.tensor(0.8), grad_norm=2)
    run.close()
    recs = read_log(run.log_path)
    steps = [r for r in recs if r["type"] == "step"]
    assert steps[0]["acc"] == 0.25 and steps[0]["ppl"] == "Infinity" and steps[0]["n"] == 1.5
    assert "note" not in steps[0] and "acc" not in steps[1]
    metrics = [r for r in recs if r["type"] == "metrics"]
    assert [(m["step"], m["metrics"]) for m in metrics] == [(2, {"loss": 0.75, "val/f1": 0.5}), (7, {"tokens": 10.0})]
    assert list(metrics[0]) == ["type", "step", "wall_time", "metrics"]
    ev = next(r for r in recs if r["type"] == "eval")
    assert ev["loss"] == 0.4 and ev["val_f1"] == pytest.approx(0.8) and ev["grad_norm"] == 2.0


def test_a_metric_named_like_a_records_own_key_goes_in_its_metrics_object(tmp_path):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name="c", log_dir=str(tmp_path), announce=False)
    run.step(loss=1.0, wall_time=5.0, lrs=3.0, acc=0.5)
    run.eval(val_loss=0.3, accuracy=0.7)
    run.close()
    recs = read_log(run.log_path)
    step = next(r for r in recs if r["type"] == "step")
    assert step["lrs"] == [0.1] and step["wall_time"] != 5.0 and step["acc"] == 0.5
    assert step["metrics"] == {"wall_time": 5.0, "lrs": 3.0} and list(step)[-1] == "metrics"
    ev = next(r for r in recs if r["type"] == "eval")
    assert ev["metrics"] == {"accuracy": 0.7} and ev["accuracy"] == "NaN"


def test_a_device_tensor_metric_is_kept_and_read_when_the_record_is_encoded():
    from lrtop.metrics import metric_value, resolve
    meta = torch.tensor(1.0, device="meta")  # a tensor on a device that is not the CPU: never read on the loop
    assert metric_value(meta) is not None and isinstance(metric_value(meta), torch.Tensor)
    assert resolve(torch.tensor(2.5)) == 2.5 and resolve(torch.tensor(float("nan"))) == "NaN"
    assert metric_value(True) == 1.0 and metric_value("x") is None and metric_value(torch.tensor([])) == "NaN"


def test_lightning_self_logged_metrics_arrive_at_its_logging_cadence(tmp_path):
    pl = pytest.importorskip("pytorch_lightning")
    from lrtop.lightning import LrtopCallback

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(8, 2)

        def training_step(self, batch, i):
            x, y = batch
            logits = self.net(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            self.log("train/acc", (logits.argmax(1) == y).float().mean(), prog_bar=True)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, i):
            x, y = batch
            logits = self.net(x)
            self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
            self.log("val_f1", (logits.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x, y = _toy_data()
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    cb = LrtopCallback(name="plm", log_dir=str(tmp_path), announce=False)
    trainer = pl.Trainer(max_epochs=2, callbacks=[cb], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                         num_sanity_val_steps=0, limit_val_batches=2, log_every_n_steps=3)
    trainer.fit(Tiny(), dl, dl)
    recs = read_log(tmp_path / "plm" / "run.jsonl")
    metrics = [r for r in recs if r["type"] == "metrics"]
    assert [m["step"] for m in metrics] == [3, 6, 9, 12, 15], "every log_every_n_steps=3 optimizer steps"
    assert set(metrics[0]["metrics"]) == {"train/acc", "train_loss_step"}
    assert all(0 <= m["metrics"]["train/acc"] <= 1 for m in metrics)
    evals = [r for r in recs if r["type"] == "eval"]
    assert len(evals) == 2 and all(0 <= e["val_f1"] <= 1 and not math.isnan(e["loss"]) for e in evals)


def test_hf_on_log_hands_over_every_number_it_logs(tmp_path):
    pytest.importorskip("transformers")
    from transformers import Trainer, TrainingArguments
    from lrtop.hf import LrtopCallback

    model, DS = tiny_bert()
    cb = LrtopCallback(name="hfm", log_dir=str(tmp_path), announce=False)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, max_steps=6,
                             learning_rate=1e-3, report_to=[], save_strategy="no", logging_steps=2,
                             use_cpu=True, disable_tqdm=True, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=DS(), callbacks=[cb])
    trainer.train()
    recs = read_log(tmp_path / "hfm" / "run.jsonl")
    metrics = [r for r in recs if r["type"] == "metrics"]
    logged = [m for m in metrics if "grad_norm" in m["metrics"]]
    assert [m["step"] for m in logged] == [2, 4, 6], "at HF's logging_steps, numbered by the step just taken"
    assert {"loss", "grad_norm", "learning_rate", "epoch"} <= set(logged[0]["metrics"])
    assert all(isinstance(v, float) for v in logged[0]["metrics"].values())
    assert any("train_runtime" in m["metrics"] for m in metrics), "the end-of-training summary too"
