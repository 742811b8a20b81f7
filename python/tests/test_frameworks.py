"""Lightning and HF Trainer runs with the callbacks: the log, a command applied at a step boundary, stop."""
import os

import pytest
import torch

from conftest import read_log, tiny_bert, tiny_lightning_module

os.environ["HF_HUB_OFFLINE"] = "1"


def _toy_data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g)
    y = (x.sum(1) > 0).long()
    return x, y


def test_lightning_callback_logs_applies_commands_and_stops(tmp_path):
    pl = pytest.importorskip("pytorch_lightning")
    from lrtop.lightning import LrtopCallback

    Tiny = tiny_lightning_module(pl, lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.5))

    x, y = _toy_data()
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    cb = LrtopCallback(name="pl", log_dir=str(tmp_path), announce=False)

    class Steer(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step = trainer.global_step
            if step == 3:
                cb.run.command("lr 0.01")
            if step == 5:
                cb.run.command("sched cosine:T_max=50")
            if step == 7:
                cb.run.command("eval")
            if step == 10:
                cb.run.command("stop")

    trainer = pl.Trainer(max_epochs=5, callbacks=[Steer(), cb], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                         num_sanity_val_steps=0, limit_val_batches=2)
    trainer.fit(Tiny(), dl, dl)
    recs = read_log(tmp_path / "pl" / "run.jsonl")
    assert recs[0]["framework"] == "lightning" and recs[0]["total_steps"] == 40
    steps = [r for r in recs if r["type"] == "step"]
    assert steps[2]["lrs"] == [0.1] and steps[3]["lrs"] == [0.01], "lr 0.01 queued at step 3 trains from step 4"
    assert all(isinstance(s["loss"], float) for s in steps)
    ev = {e["text"]: e for e in recs if e["type"] == "event"}
    assert ev["lr 0.01"]["step"] == 3 and ev["lr 0.01"]["lrs_after"] == [0.01]
    assert ev["sched cosine:T_max=50"]["kind"] == "command"
    assert trainer.strategy.lr_scheduler_configs[0].scheduler is cb.run.scheduler
    assert steps[6]["lrs"][0] < 0.01, "Lightning steps the new cosine schedule"
    assert any(r["type"] == "eval" and r["step"] == 7 for r in recs), "eval ran Lightning's validation loop"
    assert trainer.global_step == 10 and recs[-1]["type"] == "end" and recs[-1]["reason"] == "stopped"


def test_hf_trainer_callback_logs_applies_commands_and_stops(tmp_path):
    transformers = pytest.importorskip("transformers")
    from transformers import Trainer, TrainingArguments
    from lrtop.hf import LrtopCallback

    model, DS = tiny_bert()

    cb = LrtopCallback(name="hf", log_dir=str(tmp_path), announce=False)

    from transformers import TrainerCallback

    class Steer(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3:
                cb.run.command("lr 1e-4")
            if state.global_step == 5:
                cb.run.command("eval")
            if state.global_step == 8:
                cb.run.command("stop")

    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, num_train_epochs=3,
                             learning_rate=1e-3, report_to=[], save_strategy="no", logging_strategy="no",
                             use_cpu=True, disable_tqdm=True, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=DS(), eval_dataset=DS(), callbacks=[Steer, cb])
    trainer.add_callback(cb) if cb not in trainer.callback_handler.callbacks else None
    trainer.train()
    recs = read_log(tmp_path / "hf" / "run.jsonl")
    assert recs[0]["framework"] == "hf" and recs[0]["total_steps"] == 24
    steps = [r for r in recs if r["type"] == "step"]
    assert all(isinstance(s["loss"], float) for s in steps), "loss read from the model's outputs"
    ev = {e["text"]: e for e in recs if e["type"] == "event"}
    assert ev["lr 1e-4"]["step"] == 3 and ev["lr 1e-4"]["lrs_after"] == [1e-4] * len(recs[0]["groups"])
    # HF's default linear decay is a LambdaLR: the override persists and the decay continues from it.
    assert steps[3]["lrs"][0] == pytest.approx(1e-4) and steps[4]["lrs"][0] < 1e-4
    assert any(r["type"] == "eval" for r in recs), "eval set control.should_evaluate"
    assert trainer.state.global_step == 8 and recs[-1]["reason"] == "stopped"
