"""Issue #21, the bridge's side: every figure the bridge sends (its answers, its status, its log) and every figure
the framework logs itself (HF's `learning_rate`, Lightning's `LearningRateMonitor`) is the one that trains."""
import json
import math
import time
import warnings

import pytest
import torch

import lrtop
from conftest import Client, read_log, tiny_bert, tiny_lightning_module, train_step


def two_group_run(tmp_path, name="fig", **options):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    opt = torch.optim.SGD([{"params": model[0].parameters(), "name": "body"},
                           {"params": model[2].parameters(), "name": "head", "lr": 0.02}], lr=0.01)
    run = lrtop.attach(opt, model=model, name=name, log_dir=str(tmp_path), announce=False, **options)
    return model, opt, run


def taken_by_the_service_thread(run, timeout=10.0):
    """Waits until the socket's service thread has read the command just sent, so that it applies at the next
    boundary even on a machine too busy to give the loop the server's lock in time (then it would apply later, and
    a test that counts steps would see it land elsewhere or after its loop)."""
    deadline = time.monotonic() + timeout
    while not run._server._requests:
        assert time.monotonic() < deadline, "the run's service thread did not read the command"
        time.sleep(0.002)


def answer(client, ident):
    """The result of command `ident`, read already or still to come: results need not arrive in the order the
    commands were sent (a find-lr sweep answers when it ends, after commands refused meanwhile)."""
    for m in client.seen:
        if m["type"] == "result" and m["id"] == ident:
            return m
    return client.wait_for(lambda m: m["type"] == "result" and m["id"] == ident)


def test_answers_carry_the_command_the_lrs_and_the_result_as_the_event_does(tmp_path):
    """Protocol D: a `result` holds the command's record, every group's LR before and after and the outcome as
    data, the same as the `command` event in the log; `sched` says the schedule it built (item 3). No warning is
    added to the run (item 11; pytest puts the filters back)."""
    warnings.simplefilter("error")
    model, opt, run = two_group_run(tmp_path, total_steps=100)
    client = Client(run.socket_path)
    for _ in range(40):
        run.step(loss=train_step(model, opt))
    client.command(1, "lr 1e-3")
    client.command(2, "ckpt")
    run.step(loss=train_step(model, opt))  # step 41
    r1, r2 = answer(client, 1), answer(client, 2)
    assert r1["ok"] and r1["step"] == 41 and r1["command"] == {"verb": "lr", "change": "set", "value": 1e-3}
    assert r1["lrs_before"] == [0.01, 0.02] and r1["lrs_after"] == [1e-3, 1e-3] and "result" not in r1
    assert r2["ok"] and r2["command"] == {"verb": "ckpt"} and r2["lrs_before"] == r2["lrs_after"] == [1e-3, 1e-3]
    client.command(3, "sched cosine")
    run.step(loss=train_step(model, opt))  # step 42: 58 steps remain
    r3 = answer(client, 3)
    assert r3["result"] == {"scheduler": "cosine:T_max=58,eta_min=0"} and "T_max=58" in r3["message"]
    for _ in range(5):
        run.step(loss=train_step(model, opt))
    status = client.wait_for(lambda m: m["type"] == "status" and m["step"] == 47)
    assert status["scheduler"] == "cosine:T_max=58,eta_min=0", "the status says what was built, not the rest now"
    assert run.scheduler.T_max == 58
    client.command(4, "rollback")
    run.step(loss=train_step(model, opt))  # step 48
    r4 = answer(client, 4)
    # To the checkpoint `sched` (a risky command) took first, at step 42, before the switch.
    assert r4["result"] == {"rolled_back_to": 42} and r4["step"] == 42 and r4["lrs_after"] == [1e-3, 1e-3]
    client.close()
    run.close()
    events = {e["text"]: e for e in read_log(run.log_path) if e["type"] == "event" and e["kind"] == "command"}
    for ident, text, reply in ((1, "lr 1e-3", r1), (3, "sched cosine", r3), (4, "rollback", r4)):
        e = events[text]
        assert (e["command"], e["lrs_before"], e["lrs_after"], e.get("result")) == \
            (reply["command"], reply["lrs_before"], reply["lrs_after"], reply.get("result")), text
    assert read_log(run.log_path)[0]["schema"] == 2


def test_the_status_says_why_the_run_is_paused(tmp_path):
    """Protocol B `reason` (item 12): a viewer's pause, and the guard's reason, which its event also carries as data."""
    model, opt, run = two_group_run(tmp_path)
    client = Client(run.socket_path)
    run.step(loss=train_step(model, opt))
    assert client.wait_for(lambda m: m["type"] == "status")["reason"] is None
    client.command(1, "pause")
    import threading
    t = threading.Thread(target=lambda: run.step(loss=train_step(model, opt)))
    t.start()
    assert client.wait_for(lambda m: m["type"] == "status" and m["state"] == "paused")["reason"] == "paused by a viewer"
    client.command(2, "resume")
    t.join(10)
    assert client.wait_for(lambda m: m["type"] == "status" and m["state"] == "running")["reason"] is None
    for _ in range(20):
        run.step(loss=0.5)
    t = threading.Thread(target=lambda: run.step(loss=float("nan")))
    t.start()
    paused = client.wait_for(lambda m: m["type"] == "status" and m["state"] == "paused")
    assert paused["reason"].startswith("loss is NaN at step 23")
    client.command(3, "resume")
    t.join(10)
    client.close()
    run.close()
    guard = [e for e in read_log(run.log_path) if e["type"] == "event" and e["kind"] == "guard"][0]
    assert guard["result"] == {"paused": True}


def test_a_find_lr_sweep_shows_its_progress_in_the_status(tmp_path):
    """Protocol B `find_lr` (item 9), and its answer's subruns and suggestions (D)."""
    model, opt, run = two_group_run(tmp_path)
    client = Client(run.socket_path)
    run.step(loss=train_step(model, opt))
    client.command(1, "find-lr steps=30")
    run.step(loss=train_step(model, opt))
    assert run.finding_lr
    for _ in range(10):
        run.step(loss=train_step(model, opt))
    status = client.wait_for(lambda m: m["type"] == "status" and m.get("find_lr", {}).get("step", 0) >= 10)
    assert status["find_lr"] == {"step": 10, "steps": 30, "subrun": "subruns/find-lr-2"} and status["step"] == 2
    while run.finding_lr:
        run.step(loss=train_step(model, opt))
    r1 = answer(client, 1)
    assert r1["result"]["subruns"] == ["subruns/find-lr-2"]
    assert [s["name"] for s in r1["result"]["suggestions"]][0] == "valley"
    assert all(s["lr"] > 0 for s in r1["result"]["suggestions"])
    assert "find_lr" not in client.wait_for(lambda m: m["type"] == "status")
    client.close()
    run.close()
    event = [e for e in read_log(run.log_path) if e["type"] == "event" and e["text"] == "find-lr steps=30"][0]
    assert event["result"] == r1["result"]


@pytest.mark.parametrize("first", [0, 1])
def test_the_scripts_epoch_numbering_is_learnt_and_declared(tmp_path, first):
    """Protocol C (item 5): `run.step(epoch=e)` in the script's numbering; records count from 0 and the log and
    the status say which numbering the script uses."""
    model, opt, run = two_group_run(tmp_path, steps_per_epoch=3)
    client = Client(run.socket_path)
    for epoch in range(first, first + 2):
        for _ in range(3):
            run.step(loss=train_step(model, opt), epoch=epoch)
    assert client.wait_for(lambda m: m["type"] == "status" and m["step"] == 6)["epoch_base"] == first
    client.close()
    run.close()
    recs = read_log(run.log_path)
    assert "epoch_base" not in recs[0], "not known when the run started"
    assert [r["epoch"] for r in recs if r["type"] == "step"] == [0, 0, 0, 1, 1, 1]
    info = [e for e in recs if e["type"] == "event" and e["text"] == "epochs"]
    assert len(info) == 1 and info[0]["kind"] == "info" and info[0]["result"] == {"epoch_base": first}
    assert info[0]["message"] == f"the script numbers epochs from {first}"


def test_an_epoch_base_given_at_attach_is_in_the_header(tmp_path):
    model, opt, run = two_group_run(tmp_path, epoch_base=1)
    run.step(loss=train_step(model, opt), epoch=1)
    run.close()
    recs = read_log(run.log_path)
    assert recs[0]["epoch_base"] == 1 and [r["epoch"] for r in recs if r["type"] == "step"] == [0]
    assert not [e for e in recs if e["type"] == "event"]


def test_attach_without_an_optimizer_says_what_it_needs():
    """Item 13: `lrtop.attach(None)` names what is missing, not an AttributeError."""
    with pytest.raises(TypeError, match=r"needs the run's torch.optim.Optimizer as its first argument \(got None\)"):
        lrtop.attach(None)


@pytest.mark.parametrize("make", [
    lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=40),
    lambda opt: torch.optim.lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=5),
    lambda opt: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=8),
], ids=["onecycle", "cyclic", "warm_restarts"])
def test_an_lr_override_holds_under_schedulers_that_recompute_the_lr(tmp_path, make):
    """Item 7: under a scheduler that computes the LR from its own anchors, `lr X` trains at X and the schedule
    goes on from it, its shape kept (the same ratio to the plan at every later step), and the answer says so."""
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    plan_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05, momentum=0.9)
    sched, plan = make(opt), make(plan_opt)
    run = lrtop.attach(opt, sched, model=model, name="abs", log_dir=str(tmp_path), announce=False)
    client = Client(run.socket_path)
    planned = []
    for step in range(1, 21):
        planned.append(plan_opt.param_groups[0]["lr"])
        plan_opt.step()
        plan.step()
        if step == 12:
            client.command(1, "lr 0.003")
        train_step(model, opt)
        sched.step()
        run.step(loss=0.5)
    r1 = answer(client, 1)
    assert r1["ok"] and "rescaled to go on from it" in r1["message"], r1.get("error")
    client.close()
    run.close()
    used = [s["lrs"][0] for s in read_log(run.log_path) if s["type"] == "step"]
    assert used[:12] == pytest.approx(planned[:12])
    assert used[12] == pytest.approx(0.003), "the step after the boundary trains at the new LR"
    ratio = 0.003 / planned[12]
    assert used[13:] == pytest.approx([p * ratio for p in planned[13:]]), "and the schedule goes on from it"


def _warnings_of(train):
    """The warnings a training function raises, as (category, message) pairs."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train()
    return {(w.category.__name__, str(w.message)) for w in caught}, result


def _hf_run(tmp_path, name, callbacks, max_steps=12):
    from transformers import Trainer, TrainingArguments
    model, DS = tiny_bert()
    args = TrainingArguments(output_dir=str(tmp_path / f"out-{name}"), per_device_train_batch_size=8,
                             max_steps=max_steps, learning_rate=1e-3, report_to=[], save_strategy="steps",
                             save_steps=max_steps, logging_steps=1, use_cpu=True, disable_tqdm=True, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=DS(), callbacks=callbacks)
    trainer.train()
    with open(tmp_path / f"out-{name}" / f"checkpoint-{max_steps}" / "trainer_state.json") as f:
        return json.load(f)["log_history"]


def test_hf_logs_the_lr_that_trains_and_lrtop_adds_no_warning(tmp_path):
    """Item 2: HF's own `learning_rate` (trainer_state.json, hence TensorBoard and W&B) after `sched`, `lr` and a
    rollback is the LR the optimizer trains with; item 11: the callback adds no warning to the run; item 5: the
    epoch length with --max_steps is the Trainer's."""
    pytest.importorskip("transformers")
    from transformers import TrainerCallback
    from lrtop.hf import LrtopCallback

    baseline, _ = _warnings_of(lambda: _hf_run(tmp_path, "plain", []))
    cb = LrtopCallback(name="hf", log_dir=str(tmp_path), announce=False)

    class Steer(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            commands = {2: "ckpt", 3: "sched cosine:T_max=20", 6: "lr 3e-4", 8: "rollback", 10: "lr *0.5"}
            if state.global_step in commands:
                cb.run.command(commands[state.global_step])

    added, history = _warnings_of(lambda: _hf_run(tmp_path, "lrtop", [Steer, cb]))
    assert added <= baseline, f"warnings lrtop added: {added - baseline}"
    recs = read_log(tmp_path / "hf" / "run.jsonl")
    assert recs[0]["steps_per_epoch"] == 8 and recs[0]["epoch_base"] == 0, "64 rows in batches of 8"
    trained = [s["lrs"][0] for s in recs if s["type"] == "step"]
    logged = [h["learning_rate"] for h in history if "learning_rate" in h]
    # HF logs, at each step, `get_last_lr()` read between the optimizer's and the scheduler's step: the LR that step
    # trained with (the k-th record is HF's k-th step; the rollback goes to the checkpoint `sched` took at step 3).
    assert len(trained) == len(logged) == 12
    assert logged == pytest.approx(trained)
    assert trained[6] == pytest.approx(3e-4) and trained[10] == pytest.approx(trained[9] / 2, rel=0.2)
    assert [s["step"] for s in recs if s["type"] == "step"] == [1, 2, 3, 4, 5, 6, 7, 8, 4, 5, 6, 7]


def test_hf_logs_the_lr_that_trains_during_an_lrtop_warmup(tmp_path):
    """Item 2 for `warmup N`: lrtop scales the groups' LR inside each optimizer step of the ramp, so HF's
    `learning_rate` (read from `get_last_lr()` after the step) said the unscaled LR; it says the ramp's LR."""
    pytest.importorskip("transformers")
    from transformers import TrainerCallback
    from lrtop.hf import LrtopCallback
    cb = LrtopCallback(name="hfw", log_dir=str(tmp_path), announce=False)

    class Steer(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 2:
                cb.run.command("warmup 4")

    history = _hf_run(tmp_path, "warm", [Steer, cb], max_steps=8)
    trained = [s["lrs"][0] for s in read_log(tmp_path / "hfw" / "run.jsonl") if s["type"] == "step"]
    logged = [h["learning_rate"] for h in history if "learning_rate" in h]
    assert len(trained) == len(logged) == 8
    assert logged == pytest.approx(trained)
    # The ramp's steps (3-6) train at 1/4 .. 4/4 of HF's linear decay (1e-3 over 8 steps: 7.5e-4 at step 3).
    assert trained[2:6] == pytest.approx([7.5e-4 / 4, 6.25e-4 * 2 / 4, 5e-4 * 3 / 4, 3.75e-4])


def test_lightning_logs_the_lr_that_trains_and_lrtop_adds_no_warning(tmp_path):
    """Item 2 for Lightning's LearningRateMonitor, item 11 for the callback, item 8: samples/s from the batch."""
    pl = pytest.importorskip("pytorch_lightning")
    import csv
    from lrtop.lightning import LrtopCallback

    Tiny = tiny_lightning_module(pl, lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1,
                                                                                    total_steps=16))

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g)
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x.sum(1) > 0).long()), batch_size=8)

    def fit(name, callbacks):
        torch.manual_seed(0)
        logger = pl.loggers.CSVLogger(str(tmp_path / f"logs-{name}"), name="", version="")
        trainer = pl.Trainer(max_steps=14, callbacks=[pl.callbacks.LearningRateMonitor("step"), *callbacks],
                             logger=logger, log_every_n_steps=1, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
        trainer.fit(Tiny(), dl)
        with open(tmp_path / f"logs-{name}" / "metrics.csv") as f:
            return [float(r["lr-SGD"]) for r in csv.DictReader(f) if r.get("lr-SGD")]

    baseline, _ = _warnings_of(lambda: fit("plain", []))
    cb = LrtopCallback(name="pl", log_dir=str(tmp_path), announce=False)

    class Steer(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            commands = {2: "ckpt", 3: "lr 0.05", 5: "sched cosine:T_max=20", 8: "rollback"}
            if trainer.global_step in commands:
                cb.run.command(commands[trainer.global_step])

    added, logged = _warnings_of(lambda: fit("lrtop", [Steer(), cb]))
    assert added <= baseline, f"warnings lrtop added: {added - baseline}"
    steps = [s for s in read_log(tmp_path / "pl" / "run.jsonl") if s["type"] == "step"]
    # LearningRateMonitor logs at each batch's start the LR that batch trains with.
    assert logged == pytest.approx([s["lrs"][0] for s in steps])
    assert steps[3]["lrs"][0] == pytest.approx(0.05)
    assert all(s["samples_per_sec"] > 0 for s in steps), "the batch's size, for samples/s"


def test_sched_under_an_epoch_stepped_scheduler_is_stepped_at_every_step_and_says_so(tmp_path):
    """Item 4: pytorch/examples step their scheduler once an epoch. `sched cosine` (lengths in optimizer steps)
    is then stepped by lrtop at every optimizer step, the script's `scheduler.step()` no longer moves it, and
    the answer says so; the LRs that train follow the cosine step by step."""
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    run = lrtop.attach(opt, sched, model=model, name="ep", log_dir=str(tmp_path), total_steps=30,
                       steps_per_epoch=5, announce=False)
    client = Client(run.socket_path)
    for epoch in range(6):
        for _ in range(5):
            train_step(model, opt)
            run.step(loss=0.5, epoch=epoch)
            if run.step_count == 12:
                client.command(1, "sched cosine")
        sched.step()  # once an epoch, as pytorch/examples do
    r1 = answer(client, 1)
    assert "stepped its scheduler 2 times in 13 optimizer steps" in r1["message"], r1["message"]
    assert "lrtop steps this schedule at every optimizer step" in r1["message"]
    client.close()
    run.close()
    used = [s["lrs"][0] for s in read_log(run.log_path) if s["type"] == "step"]
    assert used[:13] == pytest.approx([0.1] * 5 + [0.05] * 5 + [0.025] * 3)
    ref_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.025)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=17)
    planned = []
    for _ in range(17):
        planned.append(ref_opt.param_groups[0]["lr"])
        ref_opt.step()
        ref.step()
    assert used[13:] == pytest.approx(planned), "a cosine over the 17 steps left, one step per optimizer step"


def test_a_loop_without_torch_optim_is_logged_and_steered_through_run_lr(tmp_path):
    """Item 13: a loop that updates its weights with a float LR of its own (pytorch/examples' word_language_model:
    `p.data.add_(p.grad, alpha=-lr)`, `lr /= 4.0`) reports it with `step(lr=)` and reads `run.lr`; `lr X` and
    `sched` reach it; commands that need an optimizer are refused with the reason."""
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    lr = 0.5
    warnings.simplefilter("error")  # lrtop adds no warning to the run (pytest puts the filters back)
    run = lrtop.attach(lr=lr, model=model, name="manual", log_dir=str(tmp_path), total_steps=12, announce=False)
    client = Client(run.socket_path)
    for step in range(1, 13):
        x = torch.randn(16, 8)
        loss = ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        if step == 3:
            lr /= 4.0  # the script's own annealing
        run.step(loss=loss, lr=lr)
        lr = run.lr
        if step == 4:
            client.command(1, "lr 0.01")
            client.command(2, "warmup 3")
            client.command(3, "find-lr")
        if step == 7:
            client.command(4, "sched linear:start_factor=1,end_factor=0.5,total_iters=4")
    r1, r2, r3, r4 = (answer(client, i) for i in (1, 2, 3, 4))
    assert r1["ok"] and r4["ok"]
    assert not r2["ok"] and "warmup needs a torch.optim optimizer" in r2["error"]
    assert not r3["ok"] and "find-lr needs a torch.optim optimizer" in r3["error"]
    client.close()
    run.close()
    used = [s["lrs"][0] for s in read_log(run.log_path) if s["type"] == "step"]
    # What a viewer sends after step N applies at the boundary after step N+1: the step after it trains with it.
    assert used[:6] == pytest.approx([0.5, 0.5, 0.125, 0.125, 0.125, 0.01])
    assert used[6:9] == pytest.approx([0.01] * 3) and used[9:] == pytest.approx(
        [0.01 * (1 - 0.5 * k / 4) for k in range(1, 4)]), "lrtop steps the schedule it built; the loop reads it"


def test_step_lr_is_refused_with_an_optimizer(tmp_path):
    model, opt, run = two_group_run(tmp_path)
    with pytest.raises(TypeError, match="step\\(lr=\\) is for a loop without torch.optim"):
        run.step(loss=0.5, lr=0.1)
    run.close()


def test_the_status_counts_steps_into_the_epoch_as_the_loader_does_after_find_lr_and_rollback(tmp_path):
    """Item 5: after a find-lr sweep (its batches are drawn from the loader) or a rollback (the loader is not
    rewound), lrtop's step count no longer says where the loop is in its epoch; the status's `epoch_step` does."""
    model, opt, run = two_group_run(tmp_path, steps_per_epoch=10)
    client = Client(run.socket_path)
    seen = []
    for epoch in range(3):
        for _ in range(10):
            run.step(loss=train_step(model, opt), epoch=epoch)
            seen.append((run.step_count, run._status()["epoch_step"]))
            for ident, at, text in ((1, 2, "ckpt"), (2, 4, "find-lr steps=6"), (3, 13, "rollback")):
                if len(seen) == at:
                    client.command(ident, text)
                    taken_by_the_service_thread(run)
    for ident in (1, 2, 3):
        assert answer(client, ident)["ok"]
    client.close()
    run.close()
    assert [k for _, k in seen] == list(range(1, 11)) * 3
    assert seen[-1][0] < 30, "lrtop's step count went back and skipped the sweep's steps"
