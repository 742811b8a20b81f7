"""`find-lr` through the bridge: the sweep over the user's next steps, its sub-run log, the restore, the suggestions
(held to what fastai and Lightning themselves gave, spec/lr_find_curves.json), Lightning, and DDP (every rank ends
the sweep at the same step)."""
import json
import math
import os
import subprocess
import sys
import threading
import time

import pytest
import torch

import lrtop
from conftest import Client, read_log, tiny_bert, train_step
from lrtop import findlr

CURVES = os.path.join(os.path.dirname(__file__), "..", "..", "spec", "lr_find_curves.json")


def _close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b))


@pytest.mark.skipif(not os.path.exists(CURVES), reason="spec/lr_find_curves.json comes with the Swift find-lr")
def test_suggestions_are_the_ones_fastai_and_lightning_gave():
    curves = json.load(open(CURVES))["curves"]
    assert len(curves) >= 10
    for c in curves:
        losses = [math.nan if x is None else x for x in c["losses"]]
        got = findlr.suggestions(c["lrs"], losses, c["num_it"])
        fa = c["fastai"]
        want = {"valley": fa["valley"], "steep": fa["steep"], "min/10": fa["minimum"], "slide": fa["slide"],
                "lightning": c["lightning"]}
        for key, value in want.items():
            assert _close(got[key], value), f"{c['name']}: {key} {got[key]} (fastai/Lightning: {value})"
        # The curve's own rules give the same LRs, the same length and the same reason to stop.
        curve = findlr.Curve(findlr.Settings(c["start"], c["end"], c["num_it"]))
        for lr, loss in zip(c["lrs"], c["raw_losses"]):
            assert curve.next_lr == pytest.approx(lr, rel=1e-12)
            curve.append(lr, math.nan if loss is None else loss)
        assert curve.stop == c["stop"] and curve.count == len(c["lrs"]), c["name"]


def test_the_curve_sweeps_exponentially_smooths_like_fastai_and_stops_at_4x_the_minimum():
    s = findlr.Settings(1e-4, 1.0, 8)
    assert [s.lr(i) for i in (0, 4, 8)] == pytest.approx([1e-4, 1e-2, 1.0])
    curve = findlr.Curve(s)
    for loss in (1.0, 1.0, 0.5):
        assert curve.append(curve.next_lr, loss)
    # Debiased: the first smoothed value is the first loss itself.
    assert curve.losses[0] == pytest.approx(1.0)
    while curve.append(curve.next_lr, 1000.0):
        pass
    assert curve.stop == "diverged" and curve.next_lr is None
    assert "stopped: loss > 4x min" in curve.summary
    nan = findlr.Curve(s)
    nan.append(1e-4, float("nan"))
    assert nan.stop == "non_finite" and "too few points for a suggestion" in nan.summary
    full = findlr.Curve(findlr.Settings(1e-4, 1.0, 6))
    while full.append(full.next_lr, 1.0):
        pass
    assert full.stop == "completed" and full.count == 6 and full.summary.startswith("6 steps, all steps taken")


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(32, 1))


def regression_step(model, opt, g):
    return train_step(model, opt, torch.randn(32, 8, generator=g))


def test_find_lr_sweeps_the_next_steps_logs_a_subrun_and_puts_everything_back(tmp_path):
    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.9)
    run = lrtop.attach(opt, sched, model=model, name="f", log_dir=str(tmp_path), batch_size=32, announce=False)
    client = Client(run.socket_path)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        loss = regression_step(model, opt, g)
        sched.step()
        run.step(loss=loss)
    client.command(1, "find-lr steps=60")
    client.command(2, "lr 5e-4")  # same boundary, after find-lr: waits for the sweep's end
    loss = regression_step(model, opt, g)
    sched.step()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    optim_state = {k: v.clone() for k, v in opt.state_dict()["state"][0].items()}
    sched_state, lr_before, rng = sched.state_dict(), opt.param_groups[0]["lr"], torch.get_rng_state()
    run.step(loss=loss)  # step 6: find-lr begins here
    assert run.finding_lr and run.step_count == 6
    assert client.wait_for(lambda m: m["type"] == "ack" and m["id"] == 1)["ok"]
    used, iterations = [], 0
    while run.finding_lr and iterations < 100:
        loss = regression_step(model, opt, g)
        used.append(opt.param_groups[0]["lr"])  # the LR the sweep set before this optimizer step
        sched.step()
        run.step(loss=loss)
        iterations += 1
        if iterations == 5:
            run.eval(val_loss=9.0)  # measures the sweep's weights: the sub-run's, not the run's
    # The sweep trained at start * (end/start)^(i/steps) and ended before its 60 steps (the loss exploded).
    result = run.last_find_lr
    assert result.stop == "diverged" and 10 < iterations < 60 and iterations == len(result.lrs)
    assert used[0] == pytest.approx(1e-7) and used[1] == pytest.approx(1e-7 * (1e8) ** (1 / 60))
    assert used == pytest.approx(result.lrs)
    # Everything is back as it was at step 6: weights, optimizer state, schedule, LR, RNG, step count.
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(v, optim_state[k]) for k, v in opt.state_dict()["state"][0].items())
    assert sched.state_dict() == sched_state and torch.equal(torch.get_rng_state(), rng)
    assert run.step_count == 6
    # The command that waited applies at the sweep's last boundary.
    assert opt.param_groups[0]["lr"] == 5e-4 and lr_before == pytest.approx(1e-3 * 0.9 ** 2)
    r1 = client.wait_for(lambda m: m["type"] == "result" and m["id"] == 1)
    assert r1["ok"] and "subruns/find-lr-6: " in r1["message"] and "valley" in r1["message"]
    assert client.wait_for(lambda m: m["type"] == "result" and m["id"] == 2)["ok"]
    loss = regression_step(model, opt, g)
    sched.step()
    run.step(loss=loss)
    client.close()
    run.close()

    recs = read_log(run.log_path)
    steps = [r["step"] for r in recs if r["type"] == "step"]
    assert steps == list(range(1, 8)), "the sweep's steps are not the run's"
    event = [e for e in recs if e["type"] == "event" and e["text"] == "find-lr steps=60"][0]
    assert event["kind"] == "command" and event["step"] == 6
    assert event["message"].startswith(f"subruns/find-lr-6: {iterations} steps, stopped: loss > 4x min; valley ")
    assert event["lrs_before"] == event["lrs_after"] == [lr_before]
    sub = read_log(tmp_path / "f" / "subruns" / "find-lr-6" / "log.jsonl")
    header, end = sub[0], sub[-1]
    assert header["subrun"] == {"kind": "find-lr", "label": "find-lr steps=60", "from_step": 6,
                                "parent": "../../run.jsonl"}
    assert header["total_steps"] == 60 and header["config"]["find_lr_steps"] == "60"
    assert header["config"]["find_lr_start"] == "1e-07" and header["config"]["find_lr_end"] == "10.0"
    points = [r for r in sub if r["type"] == "step"]
    assert [p["step"] for p in points] == list(range(1, iterations + 1))
    assert [p["lrs"][0] for p in points] == result.lrs and [p["loss"] for p in points] == result.raw_losses
    assert [(r["step"], r["loss"]) for r in sub if r["type"] == "eval"] == [(5, 9.0)]
    assert not [r for r in recs if r["type"] == "eval"] and run.best_eval_loss is None
    assert end["type"] == "end" and end["reason"] == "stopped" and end["message"] == result.summary
    assert result.suggestions["valley"] is not None and f"valley {result.suggestions['valley']:.3g}" in result.summary


def test_find_lr_is_refused_without_a_model_and_sweeps_a_paused_run_which_stays_paused(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, name="nomodel", log_dir=str(tmp_path), announce=False)
    run.command("find-lr")
    run.step(loss=1.0)
    assert not run.finding_lr
    run.close()
    err = [e for e in read_log(run.log_path) if e["type"] == "event"][0]
    assert err["kind"] == "error" and "pass model= to lrtop.attach" in err["message"]

    # As the TUI's `f` does: pause, then find-lr. The loop is let through for the sweep, then held again.
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    run = lrtop.attach(opt, model=model, name="paused", log_dir=str(tmp_path), announce=False)
    g = torch.Generator().manual_seed(2)
    run.step(loss=regression_step(model, opt, g))
    run.command("pause")
    run.command("find-lr steps=20")
    run.step(loss=regression_step(model, opt, g))  # step 2: paused, then the sweep begins, so this returns
    assert run.paused and run.finding_lr
    held = threading.Event()

    def loop():
        while run.finding_lr:
            run.step(loss=regression_step(model, opt, g))
        held.set()  # the sweep's last run.step() returned: only once resumed

    t = threading.Thread(target=loop)
    t.start()
    deadline = time.time() + 30
    while run.last_find_lr is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert run.last_find_lr is not None and run.paused and not held.is_set(), "held at the sweep's last boundary"
    assert run.state == "paused" and run.step_count == 2
    run.command("lr 1e-3")  # the pick, then resume, as the TUI sends them
    run.command("resume")
    t.join(10)
    assert held.is_set() and not run.paused and opt.param_groups[0]["lr"] == 1e-3
    run.close()
    texts = [e["text"] for e in read_log(run.log_path) if e["type"] == "event" and e["kind"] == "command"]
    assert texts == ["pause", "find-lr steps=20", "lr 1e-3", "resume"]


def step_until_answered(run, client, ident, timeout=15.0):
    """Steps the run (boundaries) until the command `ident` has its result, reading what the socket sends."""
    deadline = time.time() + timeout
    while not any(m["type"] == "result" and m["id"] == ident for m in client.seen):
        assert time.time() < deadline, client.seen
        run.step(loss=1.0)
        try:
            while True:
                client.read(0.05)
        except TimeoutError:
            pass


def test_fork_adopt_and_drop_parse_but_are_refused_on_a_bridged_run(tmp_path):
    opt = torch.optim.SGD(make_model().parameters(), lr=0.1)
    run = lrtop.attach(opt, name="fork", log_dir=str(tmp_path), announce=False)
    client = Client(run.socket_path)
    run.step(loss=1.0)
    texts = ["fork lr=1e-3,1e-4 steps=10", "fork 'sched cosine:T_max=20' | 'lr *0.5' steps=5", "adopt 1", "drop"]
    for i, text in enumerate(texts):
        client.command(i, text)
    client.command(9, "fork lr=1e-3")  # does not parse: refused at once, as any typo
    # Boundaries until the last command is answered: on a loaded machine the socket's thread may read the lines
    # only after the first one.
    step_until_answered(run, client, len(texts) - 1)
    acks = {m["id"]: m for m in client.seen if m["type"] == "ack"}
    results = {m["id"]: m for m in client.seen if m["type"] == "result"}
    for i, text in enumerate(texts):
        verb = text.split()[0]
        assert acks[i]["ok"] and not results[i]["ok"]
        assert results[i]["error"] == (f"{verb} is not available on a bridged PyTorch run: use lrtop's own "
                                       "trainer, or restart with the LR you want")
    assert not acks[9]["ok"] and "'fork' needs steps=N" in acks[9]["error"] and 9 not in results
    assert opt.param_groups[0]["lr"] == 0.1 and run.step_count >= 2
    client.close()
    run.close()
    errors = sorted((e["text"], e["kind"]) for e in read_log(run.log_path) if e["type"] == "event")
    assert errors == sorted((t, "error") for t in texts + ["fork lr=1e-3"])


def test_lightning_find_lr_sweeps_its_batches_and_restores(tmp_path):
    pl = pytest.importorskip("pytorch_lightning")
    from lrtop.lightning import LrtopCallback

    class Regressor(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))

        def training_step(self, batch, i):
            x, y = batch
            return ((self.net(x) - y) ** 2).mean()

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)
            return {"optimizer": opt, "lr_scheduler": {
                "scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5), "interval": "step"}}

    torch.manual_seed(0)
    x = torch.randn(4096, 8)
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)
    cb = LrtopCallback(name="plf", log_dir=str(tmp_path), announce=False)
    seen = {}

    class Steer(pl.Callback):  # before lrtop's callback: what it queues applies at this boundary
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 4 and "weights" not in seen:
                cb.run.command("find-lr steps=80")
                seen["weights"] = {k: v.clone() for k, v in pl_module.state_dict().items()}
                seen["lr"] = trainer.optimizers[0].param_groups[0]["lr"]

    class Check(pl.Callback):  # after it: sees the boundary's outcome
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            run = cb.run
            if run.last_find_lr is not None and "after" not in seen:
                seen["after"] = {k: v.clone() for k, v in pl_module.state_dict().items()}
                seen["lr_after"] = trainer.optimizers[0].param_groups[0]["lr"]
                seen["global_step"] = trainer.global_step
                run.command("stop")

    trainer = pl.Trainer(max_steps=200, callbacks=[Steer(), cb, Check()], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                         num_sanity_val_steps=0)
    trainer.fit(Regressor(), dl)
    result = cb.run.last_find_lr
    assert result is not None and result.stop in ("diverged", "non_finite") and len(result.lrs) < 80
    assert all(torch.equal(v, seen["weights"][k]) for k, v in seen["after"].items())
    assert seen["lr_after"] == seen["lr"]
    assert seen["global_step"] == 4 + len(result.lrs), "Lightning's own counter goes on through the sweep"
    recs = read_log(tmp_path / "plf" / "run.jsonl")
    ev = [e for e in recs if e["type"] == "event" and e["text"] == "find-lr steps=80"][0]
    assert ev["step"] == 4 and ev["message"].startswith("subruns/find-lr-4: ")
    assert [r["step"] for r in recs if r["type"] == "step"][-1] == 5 and recs[-1]["reason"] == "stopped"
    sub = read_log(tmp_path / "plf" / "subruns" / "find-lr-4" / "log.jsonl")
    assert sub[0]["framework"] == "lightning" and len([r for r in sub if r["type"] == "step"]) == len(result.lrs)


def test_hf_trainer_find_lr_sweeps_its_batches_and_restores(tmp_path):
    pytest.importorskip("transformers")
    from transformers import Trainer, TrainerCallback, TrainingArguments
    from lrtop.hf import LrtopCallback

    model, Tokens = tiny_bert(n=2048)
    cb = LrtopCallback(name="hff", log_dir=str(tmp_path), announce=False)
    seen = {}

    class Steer(TrainerCallback):  # before lrtop's callback
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3 and "weights" not in seen:
                cb.run.command("find-lr steps=60")
                seen["weights"] = {k: v.clone() for k, v in model.state_dict().items()}
                seen["lrs"] = cb.run.lrs

    class Check(TrainerCallback):  # after it
        def on_step_end(self, args, state, control, **kw):
            if cb.run.last_find_lr is not None and "after" not in seen:
                seen["after"] = {k: v.clone() for k, v in model.state_dict().items()}
                seen["lrs_after"] = cb.run.lrs
                seen["global_step"] = state.global_step
                cb.run.command("stop")

    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, max_steps=200,
                             learning_rate=1e-3, report_to=[], save_strategy="no", logging_strategy="no",
                             use_cpu=True, disable_tqdm=True, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[Steer, cb, Check])
    trainer.train()
    result = cb.run.last_find_lr
    # HF clips gradients (max_grad_norm=1), so AdamW rarely diverges on this model: the sweep may take every step.
    assert result is not None and (result.stop == "completed") == (len(result.lrs) == 60)
    assert all(torch.equal(v, seen["weights"][k]) for k, v in seen["after"].items())
    assert seen["lrs_after"] == seen["lrs"] and seen["global_step"] == 3 + len(result.lrs)
    recs = read_log(tmp_path / "hff" / "run.jsonl")
    ev = [e for e in recs if e["type"] == "event" and e["text"] == "find-lr steps=60"][0]
    assert ev["step"] == 3 and ev["message"].startswith("subruns/find-lr-3: ") and recs[-1]["reason"] == "stopped"


def test_ddp_every_rank_ends_the_sweep_at_the_same_step(tmp_path):
    worker = os.path.join(os.path.dirname(__file__), "ddp_worker.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, worker, str(tmp_path), "find-lr"], env=env, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    traces = [json.load(open(tmp_path / f"rank{r}.json")) for r in (0, 1)]
    sweeps = [t["sweep"] for t in traces]
    # Each rank saw its own losses; rank 0's curve decided, and both ended after the same number of steps,
    # having trained with the same LRs, and both put back the same weights.
    assert sweeps[0]["lrs"] == sweeps[1]["lrs"] and 5 < len(sweeps[0]["lrs"]) < 100
    assert sweeps[0]["losses"] != sweeps[1]["losses"]
    for t in traces:
        assert t["sweep"]["weights_after"] == t["sweep"]["weights_before"]
        assert t["sweep"]["step_after"] == 3 and t["final_step"] == 8
    recs = read_log(tmp_path / "ddp" / "run.jsonl")
    ev = [e for e in recs if e["type"] == "event" and e["text"] == "find-lr"][0]
    assert ev["step"] == 3 and ev["message"].startswith(f"subruns/find-lr-3: {len(sweeps[0]['lrs'])} steps")
    sub = read_log(tmp_path / "ddp" / "subruns" / "find-lr-3" / "log.jsonl")
    assert [r["loss"] for r in sub if r["type"] == "step"] == sweeps[0]["losses"], "rank 0's losses are the curve"


def test_pace_parses_but_is_refused_on_a_bridged_run_with_the_reason(tmp_path):
    """`pace` (the `<` and `>` keys) belongs to lrtop's own trainer: a PyTorch run answers why it does not apply,
    and a pace that does not parse is refused at once, as the Swift trainer refuses it."""
    opt = torch.optim.SGD(make_model().parameters(), lr=0.1)
    run = lrtop.attach(opt, name="pace", log_dir=str(tmp_path), announce=False)
    client = Client(run.socket_path)
    run.step(loss=1.0)
    client.command(1, "pace /2")
    client.command(2, "pace fast")
    step_until_answered(run, client, 1)
    acks = {m["id"]: m for m in client.seen if m["type"] == "ack"}
    result = next(m for m in client.seen if m["type"] == "result" and m["id"] == 1)
    assert acks[1]["ok"] and not result["ok"]
    assert result["error"].startswith("pace is for a run lrtop trains itself")
    assert not acks[2]["ok"] and "invalid pace 'fast'" in acks[2]["error"]
    client.close()
    run.close()
