"""A plain PyTorch loop steered over the socket as `lrtop attach` does: commands apply at the next step boundary,
each is an event with every group's LR before and after, and the log reads as an lrtop run log."""
import math
import os
import stat
import threading
import time

import pytest
import torch

import lrtop
from conftest import Client, read_log, train_step, wait_for_files


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))




def test_log_header_steps_and_end_follow_the_schema(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    with lrtop.attach(opt, sched, model=model, name="r1", log_dir=str(tmp_path), total_steps=12,
                      steps_per_epoch=6, batch_size=32, announce=False) as run:
        sock = run.socket_path
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode) == 0o700
        for _ in range(12):
            loss = train_step(model, opt)
            sched.step()
            run.step(loss=loss, accuracy_proxy=0.5)
        run.eval(val_loss=0.25, val_acc=0.75)
    assert not os.path.exists(sock), "the socket file is removed at close"
    recs = read_log(tmp_path / "r1" / "run.jsonl")
    h = recs[0]
    assert h["type"] == "header" and h["schema"] == 2 and h["groups"] == ["default"]
    assert h["socket"] == sock and h["source"] == "pytorch" and h["framework"] == "plain" and h["world_size"] == 1
    assert h["total_steps"] == 12 and h["steps_per_epoch"] == 6
    assert all(isinstance(v, str) for v in h["config"].values())
    steps = [r for r in recs if r["type"] == "step"]
    assert [s["step"] for s in steps] == list(range(1, 13))
    assert [s["epoch"] for s in steps] == [0] * 6 + [1] * 6
    # The LR each step used: StepLR halves after 5 steps.
    assert [s["lrs"][0] for s in steps[:6]] == [0.01] * 5 + [0.005]
    assert all(s["samples_per_sec"] > 0 for s in steps)
    assert recs[-2]["type"] == "eval" and recs[-2]["loss"] == 0.25 and recs[-2]["accuracy"] == 0.75
    end = recs[-1]
    assert end["type"] == "end" and end["reason"] == "completed" and end["step"] == 12
    assert end["best_eval_loss"] == 0.25


def test_lr_override_applies_at_the_next_step_and_is_an_event(tmp_path):
    model = make_model()
    opt = torch.optim.AdamW([{"params": model[0].parameters(), "name": "body"},
                             {"params": model[2].parameters(), "name": "head", "lr": 1e-2}], lr=1e-3)
    run = lrtop.attach(opt, model=model, name="r2", log_dir=str(tmp_path), announce=False)
    client = Client(run.socket_path)
    for _ in range(3):
        run.step(loss=train_step(model, opt))
    hello = client.read()
    assert hello["type"] == "hello" and hello["protocol"] == 1 and hello["run"] == "r2"
    assert hello["log"] == run.log_path and hello["world_size"] == 1
    status = client.read()
    assert status["type"] == "status" and status["groups"] == ["body", "head"] and status["state"] == "running"
    client.command(1, "lr 1e-4")
    client.command(2, "lr head *0.5")
    client.command(3, "lr 1e-3 head")     # a typo: refused, nothing changes
    client.command(4, "lr nohead 1")      # parses, cannot apply
    run.step(loss=train_step(model, opt))  # step 4: the boundary after it applies the commands
    acks = {m["id"]: m for m in (client.wait_for(lambda m: m["type"] == "ack" and m["id"] == i) for i in (1, 2, 3, 4))}
    assert acks[1]["ok"] and acks[2]["ok"] and acks[4]["ok"]
    assert not acks[3]["ok"] and "invalid LR 'head'" in acks[3]["error"]
    r1 = client.wait_for(lambda m: m["type"] == "result" and m["id"] == 1)
    # The LRs are fields of the answer (protocol D); `message` holds only a note, and `lr` has none.
    assert r1["ok"] and r1["step"] == 4 and r1["lrs_after"] == [1e-4, 1e-4] and "message" not in r1
    r4 = client.wait_for(lambda m: m["type"] == "result" and m["id"] == 4)
    assert not r4["ok"] and "no param group 'nohead'" in r4["error"]
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 5e-5]
    run.step(loss=train_step(model, opt))
    client.close()
    run.close()
    recs = read_log(run.log_path)
    steps = [r for r in recs if r["type"] == "step"]
    assert steps[3]["lrs"] == [1e-3, 1e-2] and steps[4]["lrs"] == [1e-4, 5e-5]
    events = [r for r in recs if r["type"] == "event"]
    cmd = [e for e in events if e["text"] == "lr 1e-4"][0]
    assert cmd["kind"] == "command" and cmd["step"] == 4
    assert cmd["lrs_before"] == [1e-3, 1e-2] and cmd["lrs_after"] == [1e-4, 1e-4]
    typo = [e for e in events if e["text"] == "lr 1e-3 head"][0]
    assert typo["kind"] == "error" and typo["lrs_before"] == typo["lrs_after"]
    nogroup = [e for e in events if e["text"] == "lr nohead 1"][0]
    assert nogroup["kind"] == "error" and "groups are body, head" in nogroup["message"]


def test_hold_release_sched_warmup_and_reset(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    run = lrtop.attach(opt, sched, model=model, name="r3", log_dir=str(tmp_path), total_steps=100, announce=False)

    def step():
        train_step(model, opt)
        sched.step()
        run.step(loss=1.0)

    step()  # lr 0.05
    run.command("lr hold")
    step()  # boundary applies hold after the scheduler's step: 0.025 held
    held = opt.param_groups[0]["lr"]
    step(); step()
    assert opt.param_groups[0]["lr"] == held
    run.command("lr release")
    step()
    # Back to the schedule as planned: 0.1 * 0.5**5 after five scheduler steps.
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 5)
    run.command("sched cosine:T_max=10")
    step()
    assert run.scheduler_spec == "cosine:T_max=10"
    lr0 = opt.param_groups[0]["lr"]
    step()  # the user's sched.step() now drives the new cosine schedule
    assert opt.param_groups[0]["lr"] == pytest.approx(lr0 * (1 + math.cos(math.pi / 10)) / 2)
    run.command("warmup 4")
    step()
    used = []
    for _ in range(4):
        step()
        used.append(read_last_step_lr(run))
    run.command("lr reset")
    step()
    assert opt.param_groups[0]["lr"] == 0.1
    run.close()
    recs = read_log(run.log_path)
    kinds = [(e["text"], e["kind"]) for e in recs if e["type"] == "event"]
    assert ("sched cosine:T_max=10", "command") in kinds and ("lr reset", "command") in kinds
    assert any(k == "checkpoint" for _, k in kinds), "risky commands checkpoint first"
    assert used[0] < used[1] < used[2]


def read_last_step_lr(run):
    run.flush()
    return [r for r in read_log(run.log_path) if r["type"] == "step"][-1]["lrs"][0]


def test_bad_sched_spec_changes_nothing(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name="r4", log_dir=str(tmp_path), announce=False)
    client = Client(run.socket_path)
    run.step(loss=1.0)
    client.command("a", "sched cosine")  # no total_steps: T_max has no default
    client.command("b", "sched cosin:T_max=3")
    run.step(loss=1.0)
    ra = client.wait_for(lambda m: m["type"] == "result" and m["id"] == "a")
    rb = client.wait_for(lambda m: m["type"] == "result" and m["id"] == "b")
    assert not ra["ok"] and "give T_max=N" in ra["error"]
    assert not rb["ok"] and "unknown scheduler 'cosin'" in rb["error"]
    assert run.scheduler is None and opt.param_groups[0]["lr"] == 0.1
    run.close()


def test_pause_blocks_at_the_boundary_until_resume_and_step_takes_one(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name="r5", log_dir=str(tmp_path), announce=False)
    client = Client(run.socket_path)
    run.step(loss=1.0)
    client.command(1, "pause")
    done = []

    def loop():
        for _ in range(3):
            train_step(model, opt)
            run.step(loss=1.0)
            done.append(run.step_count)

    t = threading.Thread(target=loop)
    t.start()
    client.wait_for(lambda m: m["type"] == "status" and m["state"] == "paused")
    time.sleep(0.5)
    assert done == [] and run.step_count == 2, "the loop is held at the boundary after step 2"
    client.command(2, "step")
    client.wait_for(lambda m: m["type"] == "result" and m["id"] == 2)
    time.sleep(0.5)
    assert done == [2] and run.step_count == 3
    client.command(3, "resume")
    t.join(10)
    assert not t.is_alive() and done == [2, 3, 4]
    run.close()


def test_ckpt_and_rollback_restore_weights_optimizer_and_step(tmp_path):
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    run = lrtop.attach(opt, model=model, name="r6", log_dir=str(tmp_path), announce=False)
    for _ in range(3):
        run.step(loss=train_step(model, opt))
    run.command("ckpt")
    run.step(loss=train_step(model, opt))  # step 4; boundary takes the checkpoint
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    files = wait_for_files(tmp_path / "r6" / "checkpoints", ["step-0000004.pt", "step-0000004.pt.sha256"])
    ck = torch.load(tmp_path / "r6" / "checkpoints" / files[0], weights_only=True)
    assert set(ck) >= {"model", "optimizer", "rng", "lrtop"} and ck["lrtop"]["step"] == 4
    for _ in range(3):
        run.step(loss=train_step(model, opt))
    run.command("lr 5e-4")
    run.step(loss=train_step(model, opt))
    run.command("rollback")
    run.step(loss=train_step(model, opt))
    assert run.step_count == 4
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k])
    assert opt.param_groups[0]["lr"] == 1e-3
    run.close()
    recs = read_log(run.log_path)
    rb = [e for e in recs if e["type"] == "event" and e["text"] == "rollback"][0]
    assert rb["kind"] == "command" and "to step 4" in rb["message"]
    assert rb["lrs_before"] == [5e-4] and rb["lrs_after"] == [1e-3]


def test_resume_with_a_new_lr_overrides_the_schedulers_saved_state(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)
    run = lrtop.attach(opt, sched, model=model, name="r7", log_dir=str(tmp_path), announce=False)
    for _ in range(5):
        train_step(model, opt); sched.step(); run.step(loss=1.0)
    path = run.save_checkpoint("manual")
    run.close()
    model2 = make_model()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1)
    sched2 = torch.optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=20)
    run2 = lrtop.attach(opt2, sched2, model=model2, name="r7b", log_dir=str(tmp_path), announce=False)
    run2.load_checkpoint(path, lr=0.01)
    assert opt2.param_groups[0]["lr"] == 0.01 and run2.step_count == 5
    train_step(model2, opt2); sched2.step(); run2.step(loss=1.0)
    # The cosine continues from 0.01, not from the 0.1 curve the saved state remembers.
    assert opt2.param_groups[0]["lr"] < 0.01
    assert sched2.base_lrs[0] == pytest.approx(0.01 / (0.5 * (1 + math.cos(math.pi * 5 / 20))))
    run2.close()


def test_stop_sets_should_stop_and_the_end_reason(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name="r8", log_dir=str(tmp_path), announce=False)
    run.step(loss=1.0)
    run.command("stop")
    run.step(loss=1.0)
    assert run.should_stop
    run.close()
    assert read_log(run.log_path)[-1]["reason"] == "stopped"


@pytest.mark.parametrize("action", ["pause", "rollback", "stop"])
def test_divergence_guard(tmp_path, action):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name=f"g-{action}", log_dir=str(tmp_path), guard=action, announce=False)
    for _ in range(3):
        run.step(loss=1.0)
    run.save_checkpoint("manual")
    if action == "pause":
        client = Client(run.socket_path)
        t = threading.Thread(target=lambda: run.step(loss=float("nan")))
        t.start()
        client.wait_for(lambda m: m["type"] == "status" and m["state"] == "paused")
        assert t.is_alive()
        client.command(1, "resume")
        t.join(10)
        assert not t.is_alive()
    else:
        run.step(loss=float("nan"))
    if action == "rollback":
        assert run.step_count == 3 and opt.param_groups[0]["lr"] == 0.05
    if action == "stop":
        assert run.should_stop
    run.close()
    recs = read_log(run.log_path)
    g = [e for e in recs if e["type"] == "event" and e["kind"] == "guard"][0]
    assert "loss is NaN at step 4" in g["message"]
    nan_step = [r for r in recs if r["type"] == "step" and r["step"] == 4][0]
    assert nan_step["loss"] == "NaN"
    if action == "stop":
        assert recs[-1]["reason"] == "diverged"


def test_spike_trips_the_guard(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name="spike", log_dir=str(tmp_path), guard="stop", announce=False)
    for _ in range(20):
        run.step(loss=1.0)
    assert not run.should_stop
    run.step(loss=50.0)
    assert run.should_stop
    run.close()


def test_amp_loss_scale_and_skipped_steps(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    run = lrtop.attach(opt, model=model, scaler=scaler, name="amp", log_dir=str(tmp_path), announce=False)
    client = Client(run.socket_path)
    for i in range(4):
        x = torch.randn(4, 8)
        loss = model(x).mean() * (float("inf") if i == 2 else 1.0)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        run.step(loss=loss)
    st = client.wait_for(lambda m: m["type"] == "status" and m["step"] == 4)  # the periodic status
    assert st["loss_scale"] == 512.0 and st["skipped_steps"] == 1
    assert run.skipped_steps == 1
    run.close()
    steps = [r for r in read_log(run.log_path) if r["type"] == "step"]
    assert steps[0]["loss_scale"] == 1024.0 and steps[2]["skipped_steps"] == 1 and steps[2]["loss_scale"] == 512.0


def test_eval_command_calls_the_users_function(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []
    run = lrtop.attach(opt, model=model, name="ev", log_dir=str(tmp_path), announce=False,
                       eval_fn=lambda: calls.append(1) or {"val_loss": 0.5, "val_acc": 0.9})
    run.command("eval")
    run.step(loss=1.0)
    run.close()
    assert calls == [1]
    ev = [r for r in read_log(run.log_path) if r["type"] == "eval"]
    assert ev == [{"type": "eval", "step": 1, "epoch": 0, "loss": 0.5, "accuracy": 0.9, "wall_time": ev[0]["wall_time"]}]


def test_failure_inside_the_context_manager_ends_the_log_as_failed(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ZeroDivisionError):
        with lrtop.attach(opt, model=model, name="f", log_dir=str(tmp_path), announce=False) as run:
            run.step(loss=1.0)
            1 / 0
    end = read_log(tmp_path / "f" / "run.jsonl")[-1]
    assert end["reason"] == "failed" and "ZeroDivisionError" in end["message"]


def test_the_log_is_flushed_within_a_second_even_inside_a_long_step(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name="flush", log_dir=str(tmp_path), announce=False)
    for _ in range(3):
        run.step(loss=1.0)  # buffered: the last flush was the header's, under a second ago
    time.sleep(1.6)         # "inside a long step": no run.step() call
    steps = [r for r in read_log(run.log_path) if r["type"] == "step"]
    assert [s["step"] for s in steps] == [1, 2, 3]
    run.close()


def test_command_and_error_events_carry_the_parsed_command(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name="typed", log_dir=str(tmp_path), announce=False, total_steps=50)
    texts = ["LR *0.5", "lr hold", "sched cosine:T_max=20", "warmup 3", "ckpt", "lr nohead 1", "lr 1e-3 head",
             "fork lr=1e-3,1e-4 steps=10", "PAUSE", "resume"]
    for text in texts:
        run.command(text)
    for _ in range(4):
        run.step(loss=train_step(model, opt))
    run.close()
    events = {e["text"]: e for e in read_log(run.log_path) if e["type"] == "event" and e["text"] in texts}
    for text in texts:
        e = events[text]
        if text == "lr 1e-3 head":  # does not parse: its text is all there is
            assert e["kind"] == "error" and "command" not in e
        else:
            assert e["command"] == lrtop.parse_command(text).to_record(), text
            assert e["kind"] == ("error" if text in ("lr nohead 1", "fork lr=1e-3,1e-4 steps=10") else "command")
    assert events["PAUSE"]["command"] == {"verb": "pause"}
    assert events["LR *0.5"]["command"] == {"verb": "lr", "change": "scale", "value": 0.5}
