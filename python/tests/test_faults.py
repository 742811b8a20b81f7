"""Faults a bridged run meets: LRs that overflow, an evaluation that raises, a guard with no one to ask, a full
disk, signals (issue 20, items 8, 9, 13, 16, 18). lrtop is never the reason the run dies, stalls or lies."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import torch

import lrtop
from conftest import Client, read_log, train_step

WORKER = os.path.join(os.path.dirname(__file__), "signal_worker.py")


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))


def events(run):
    return [r for r in read_log(run.log_path) if r["type"] == "event"]


# ----------------------------------------------------------------------------------------------- item 8: LR range


def test_an_lr_beyond_float32_is_refused_where_it_applies(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    run = lrtop.attach(opt, model=model, name="lr", log_dir=str(tmp_path), announce=False, guard="off")
    c = Client(run.socket_path)
    run.step(loss=1.0)
    c.command(1, "lr 1e39")    # refused by the parser: a float32 cannot hold it
    c.command(2, "lr *1e38")   # parses; 10 * 1e38 is beyond float32: refused where it applies
    c.command(3, "sched exp:gamma=1e300")
    run.step(loss=train_step(model, opt))
    assert not c.wait_for(lambda m: m["type"] == "ack" and m["id"] == 1)["ok"]
    r2 = c.wait_for(lambda m: m["type"] == "result" and m["id"] == 2)
    assert not r2["ok"] and "beyond what the parameters' dtype holds" in r2["error"]
    run.step(loss=train_step(model, opt))  # and the next optimizer.step() does not raise
    r3 = c.wait_for(lambda m: m["type"] == "result" and m["id"] == 3)
    assert not r3["ok"] and "invalid value '1e300' for gamma" in r3["error"]
    assert opt.param_groups[0]["lr"] == 10.0
    run.close()
    assert not [e for e in events(run) if e["kind"] == "checkpoint"], "no checkpoint for a command that cannot apply"


def test_an_lr_beyond_float16_is_refused_for_float16_parameters(tmp_path):
    p = torch.nn.Parameter(torch.zeros(4, dtype=torch.float16))
    opt = torch.optim.SGD([p], lr=0.1)
    run = lrtop.attach(opt, name="half", log_dir=str(tmp_path), announce=False)
    run.command("lr 1e5")
    run.step(loss=1.0)
    assert opt.param_groups[0]["lr"] == 0.1
    run.close()
    assert "6.55e+04" in [e for e in events(run) if e["text"] == "lr 1e5"][0]["message"]


@pytest.mark.parametrize("source", ["sched", "user"])
def test_a_schedule_that_grows_past_float32_trips_the_guard_instead_of_raising(tmp_path, source):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=1e30) if source == "user" else None
    run = lrtop.attach(opt, sched, model=model, name=source, log_dir=str(tmp_path), announce=False, guard="stop",
                       total_steps=100)
    if source == "sched":
        run.command("sched exp:gamma=1e30")  # within float32, but 1e-3 * 1e30 * 1e30 is not
    for _ in range(6):
        train_step(model, opt)  # would raise "value cannot be converted to type float without overflow"
        if sched is not None:
            sched.step()
        run.step(loss=1.0)
        if run.should_stop:
            break
    assert run.should_stop
    run.close()
    guard = [e for e in events(run) if e["kind"] == "guard"][0]
    assert "beyond what its parameters' dtype holds" in guard["message"] and "stopped" in guard["message"]
    assert read_log(run.log_path)[-1]["reason"] == "diverged"


# --------------------------------------------------------------------------------------------- item 9: eval_fn


def test_an_eval_fn_that_raises_is_answered_and_logged_and_the_run_goes_on(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def evaluate():
        raise ValueError("validation set not found\nsecond line")

    run = lrtop.attach(opt, model=model, name="ev", log_dir=str(tmp_path), announce=False, eval_fn=evaluate)
    c = Client(run.socket_path)
    run.step(loss=1.0)
    c.command(1, "eval")
    run.step(loss=1.0)
    r = c.wait_for(lambda m: m["type"] == "result" and m["id"] == 1)
    assert not r["ok"] and r["error"] == "eval failed: ValueError: validation set not found; the run goes on"
    run.step(loss=1.0)
    run.close()
    assert [e["kind"] for e in events(run) if e["text"] == "eval"] == ["error"]
    assert read_log(run.log_path)[-1]["reason"] == "completed"


# ------------------------------------------------------------------------------------------------ item 13: guard


def test_the_guards_pause_says_why_on_stderr(tmp_path, capfd):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name="gp", log_dir=str(tmp_path), announce=False)
    t = threading.Thread(target=lambda: run.step(loss=float("nan")))
    t.start()
    deadline = time.time() + 10
    while "paused at step 1" not in capfd.readouterr().err:
        assert time.time() < deadline, "no line on stderr"
        time.sleep(0.05)
    run.command("resume")
    t.join(10)
    run.close()


def rolling_back(tmp_path, name):
    """A run whose guard rolls back, 3 healthy steps in, with a checkpoint to roll back to."""
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name=name, log_dir=str(tmp_path), announce=False, guard="rollback")
    for _ in range(3):
        run.step(loss=1.0)
    run.save_checkpoint()
    return run


def test_rollbacks_that_do_not_help_escalate_to_stop_without_a_viewer(tmp_path, capfd):
    run = rolling_back(tmp_path, "gr")
    steps = 0
    while not run.should_stop and steps < 50:  # the divergence persists at the same step, LR halved or not
        run.step(loss=float("nan"))
        steps += 1
    assert run.should_stop and steps == 4, "three rollbacks, then the fourth trip stops the run"
    run.close()
    guards = [e["message"] for e in events(run) if e["kind"] == "guard"]
    assert [("rolled back" in g) for g in guards] == [True, True, True, False]
    assert "3 rollbacks in a row, each halving the LR, did not help; stopped (no viewer attached)" in guards[-1]
    assert read_log(run.log_path)[-1]["reason"] == "diverged"
    assert "did not help: stopped" in capfd.readouterr().err


def test_rollbacks_that_do_not_help_escalate_to_pause_with_a_viewer(tmp_path):
    run = rolling_back(tmp_path, "gv")
    c = Client(run.socket_path)
    for _ in range(3):
        run.step(loss=float("nan"))
    t = threading.Thread(target=lambda: run.step(loss=float("nan")))
    t.start()
    c.wait_for(lambda m: m["type"] == "status" and m["state"] == "paused")
    c.command(1, "stop")
    t.join(10)
    run.close()
    assert "did not help; paused" in [e for e in events(run) if e["kind"] == "guard"][-1]["message"]


def test_rollbacks_count_again_once_the_run_gets_past_the_divergence(tmp_path):
    run = rolling_back(tmp_path, "gc")
    for _ in range(6):  # each trip is followed by healthy steps past where it diverged
        tripped = run.step_count + 1
        run.step(loss=float("nan"))
        while run.step_count <= tripped:
            run.step(loss=1.0)
    assert not run.should_stop and run._guard.rollbacks == 0
    run.close()


# -------------------------------------------------------------------------------------------- item 16: full disk


@pytest.fixture
def small_disk():
    """A 2 MiB tmpfs: a disk that fills up for real (mounting needs root; CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("full-disk test: needs root to mount a small tmpfs (CI runs as root)")
    d = tempfile.mkdtemp(prefix="lrtop-disk-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", d], capture_output=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"full-disk test: cannot mount a tmpfs here ({r.stderr.decode().strip()})")
    yield d
    subprocess.run(["umount", "-l", d])
    os.rmdir(d)


def test_a_full_disk_holds_records_until_they_can_be_written(small_disk, capfd):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name="full", log_dir=small_disk, announce=False)
    c = Client(run.socket_path)
    for _ in range(10):
        run.step(loss=train_step(model, opt))
    run.flush()
    filler = os.path.join(small_disk, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)  # the disk fills up (another job's output, say)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    os.close(fd)
    for _ in range(300):
        run.step(loss=train_step(model, opt))
    run.flush()
    c.command(1, "ckpt")
    run.step(loss=train_step(model, opt))
    r = c.wait_for(lambda m: m["type"] == "result" and m["id"] == 1)
    assert not r["ok"] and "No space left on device" in r["error"] and "kept in memory" in r["error"]
    assert [n for n in os.listdir(os.path.join(small_disk, "full", "checkpoints")) if n.endswith(".tmp")] == []
    err = capfd.readouterr().err
    assert err.count("cannot write the run log") == 1 and "No space left on device" in err
    os.unlink(filler)  # space again
    for _ in range(10):
        run.step(loss=train_step(model, opt))
    run.close()
    with open(run.log_path, "rb") as f:
        lines = f.read().split(b"\n")
    assert lines[-1] == b""
    records = [json.loads(x) for x in lines[:-1]]  # every line whole
    assert [r["step"] for r in records if r["type"] == "step"] == list(range(1, 322))
    infos = [r["message"] for r in records if r["type"] == "event" and r["kind"] == "info"]
    assert "No space left on device" in infos[0] and "no record was lost" in infos[1]
    end = records[-1]
    assert end["type"] == "end" and end["reason"] == "completed" and "could not be written for a while" in \
        end["message"]


# ---------------------------------------------------------------------------------------------- item 18: signals


def start_worker(tmp_path, mode):
    proc = subprocess.Popen([sys.executable, WORKER, str(tmp_path), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("ready "), line + proc.stderr.read()
    return proc, line.split(" ", 1)[1].strip()


def whole_log(run_dir):
    records = read_log(os.path.join(run_dir, "run.jsonl"))
    steps = [r["step"] for r in records if r["type"] == "step"]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 20
    return records


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGHUP, -signal.SIGHUP),
                                            (signal.SIGINT, -signal.SIGINT)])
def test_a_stopping_signal_ends_the_log_removes_the_socket_and_the_process_dies_as_it_would_have(
        tmp_path, signum, status):
    proc, run_dir = start_worker(tmp_path, "plain")
    sock = read_log(os.path.join(run_dir, "run.jsonl"))[0]["socket"]
    proc.send_signal(signum)
    proc.wait(20)
    assert proc.returncode == status, proc.stderr.read()[-2000:]
    end = whole_log(run_dir)[-1]
    assert end["type"] == "end" and end["reason"] == "interrupted"
    assert end["message"] in (signal.Signals(signum).name, "KeyboardInterrupt")
    assert not os.path.exists(sock)


def test_a_signal_under_with_ends_the_log_interrupted(tmp_path):
    proc, run_dir = start_worker(tmp_path, "with")
    proc.send_signal(signal.SIGINT)
    proc.wait(20)
    end = whole_log(run_dir)[-1]
    assert end["reason"] == "interrupted"


def test_an_ignored_signal_stays_ignored(tmp_path):
    proc, run_dir = start_worker(tmp_path, "ignore-hup")
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert proc.poll() is None, "the process ignores SIGHUP, as it did without lrtop"
    proc.terminate()
    proc.wait(20)
    assert whole_log(run_dir)[-1]["message"] == "SIGTERM"


def test_the_users_own_handler_still_decides(tmp_path):
    proc, run_dir = start_worker(tmp_path, "user-term")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "stopping at the user's handler" in out and "done" in out, err
    end = whole_log(run_dir)[-1]
    assert end["reason"] == "interrupted" and end["message"] == "SIGTERM"


def test_sigusr1_takes_a_checkpoint_and_the_run_goes_on(tmp_path):
    proc, run_dir = start_worker(tmp_path, "plain")
    proc.send_signal(signal.SIGUSR1)
    deadline = time.time() + 10
    while not os.path.isdir(os.path.join(run_dir, "checkpoints")) or not any(
            n.endswith(".pt.sha256") for n in os.listdir(os.path.join(run_dir, "checkpoints"))):
        assert time.time() < deadline, "no checkpoint after SIGUSR1"
        time.sleep(0.05)
    assert proc.poll() is None, "SIGUSR1 does not end the run"
    proc.terminate()
    proc.wait(20)
    records = whole_log(run_dir)
    ck = [e for e in records if e["type"] == "event" and e["kind"] == "checkpoint"]
    assert ck and ck[0]["text"] == "signal SIGUSR1" and ck[0]["message"].startswith("saved ")


def test_a_lightning_run_stopped_by_sigterm_ends_interrupted(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(f'''
import os, sys, time
sys.path.insert(0, {os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))!r})
import torch
from lrtop.lightning import LrtopCallback, pl

class M(pl.LightningModule):
    def __init__(self):
        super().__init__(); self.l = torch.nn.Linear(4, 1)
    def training_step(self, batch, i):
        time.sleep(0.01)
        if self.global_step == 20: print("ready", flush=True)
        return self.l(batch[0]).pow(2).mean()
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4096, 4)), batch_size=8)
trainer = pl.Trainer(max_epochs=1, callbacks=[LrtopCallback(name="pl", log_dir={str(tmp_path)!r}, announce=False)],
                     logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     accelerator="cpu", devices=1)
trainer.fit(M(), data)
print("fit returned", flush=True)
''')
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PL_DISABLE_FORK="1"))
    line = proc.stdout.readline()
    assert line.strip() == "ready", line + proc.stderr.read()[-3000:]
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    end = whole_log(str(tmp_path / "pl"))[-1]
    assert end["type"] == "end" and end["reason"] == "interrupted", end
