"""The run registry (docs/registry.md): every bridged run serving a socket has a 0600 entry under the user's state
folder while it lives, its heartbeat refreshed, removed at its end however it ends; a reader removes what a killed
run left; a folder others could tamper with is refused with one line and the run goes on."""
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from lrtop import registry
from conftest import linear_run, train_step

SIGNAL_WORKER = os.path.join(os.path.dirname(__file__), "signal_worker.py")


def entry_files(state_home):
    folder = os.path.join(state_home, "lrtop", "runs")
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)) if os.path.isdir(folder) else []


def wait_until(pred, timeout=20.0, what="the condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def test_a_run_registers_with_its_fields_in_a_private_file_and_is_removed_at_its_end(tmp_path, state_home):
    model, opt, run = linear_run(tmp_path, name="reg")
    try:
        [path] = entry_files(state_home)
        st = os.lstat(path)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(os.path.dirname(os.path.dirname(path))).st_mode) == 0o700
        host = socket.gethostname().split(".")[0]
        assert os.path.basename(path).startswith(f"{host}-{os.getpid()}-")
        with open(path) as f:
            entry = json.load(f)
        assert entry == {"registry": 1, "host": host, "pid": os.getpid(), "socket": run.socket_path,
                         "log": run.log_path, "run_dir": run.run_dir, "name": "reg", "kind": "plain",
                         "world_size": 1, "rank": 0, "start": entry["start"], "heartbeat": entry["heartbeat"]}
        assert abs(entry["heartbeat"] - time.time()) < 30
        assert time.strptime(entry["start"], "%Y-%m-%dT%H:%M:%SZ")
        train_step(model, opt)
        run.step(loss=1.0)
        assert [e["socket"] for e in registry.entries()] == [run.socket_path]
    finally:
        run.close()
    assert entry_files(state_home) == []
    assert registry.entries() == []


def test_the_heartbeat_is_rewritten_by_the_service_thread(tmp_path, state_home, monkeypatch):
    monkeypatch.setattr(registry, "HEARTBEAT_INTERVAL", 0.2)
    _, _, run = linear_run(tmp_path)
    try:
        [path] = entry_files(state_home)
        first = json.load(open(path))["heartbeat"]
        # No step is taken meanwhile: the socket's service thread beats, not the loop.
        later = wait_until(lambda: (lambda h: h if h > first else None)(json.load(open(path))["heartbeat"]),
                           timeout=10, what="a newer heartbeat")
        assert later > first
        # Written whole every time (renamed over the entry): no temporary is left beside it.
        assert entry_files(state_home) == [path]
    finally:
        run.close()


def test_slurm_fields_are_in_the_entry_under_slurm(tmp_path, state_home, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURMD_NODENAME", "gpu7")
    _, _, run = linear_run(tmp_path)
    try:
        [path] = entry_files(state_home)
        assert json.load(open(path))["slurm"] == {"job_id": "4242", "proc_id": 0, "node": "gpu7"}
    finally:
        run.close()


def start_worker(tmp_path):
    proc = subprocess.Popen([sys.executable, SIGNAL_WORKER, str(tmp_path), "plain"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    line = proc.stdout.readline()
    assert line.startswith("ready "), proc.stderr.read()
    return proc


def test_sigterm_removes_the_entry(tmp_path, state_home):
    proc = start_worker(tmp_path)
    try:
        [entry] = registry.entries()
        assert entry["pid"] == proc.pid and entry["name"] == "sig"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM  # it dies of the signal, as without lrtop
    finally:
        proc.kill()
    assert entry_files(state_home) == []


def test_a_killed_runs_entry_is_removed_by_the_next_reader(tmp_path, state_home):
    proc = start_worker(tmp_path)
    try:
        [entry] = registry.entries()
    finally:
        proc.kill()
        proc.wait(timeout=30)
    [path] = entry_files(state_home)  # SIGKILL: nothing could remove it
    assert registry.entries() == []  # its process is gone: skipped, and removed
    assert entry_files(state_home) == []
    assert not os.path.exists(path)


def write_entry(folder, file_name, **fields):
    entry = {"registry": 1, "host": registry.short_host(), "pid": os.getpid(), "socket": "/nonexistent/x.sock",
             "heartbeat": time.time(), **fields}
    path = os.path.join(folder, file_name)
    with open(path, "w") as f:
        json.dump(entry, f)
    os.chmod(path, 0o600)
    return path


def test_a_reader_skips_what_is_not_a_live_entry(tmp_path, state_home):
    folder = os.path.join(state_home, "lrtop", "runs")
    os.makedirs(folder, mode=0o700)
    os.chmod(os.path.dirname(folder), 0o700)
    host = registry.short_host()
    live = write_entry(folder, f"{host}-{os.getpid()}-00000001.json", name="live")
    # Stale, of a live process, its socket gone: removed (a hung process whose socket was deleted).
    gone = write_entry(folder, f"{host}-{os.getpid()}-00000002.json", heartbeat=time.time() - 120)
    # Stale, another host's: skipped, not removed (its own host's readers judge it).
    other = write_entry(folder, f"elsewhere-{os.getpid()}-00000003.json", host="elsewhere",
                        heartbeat=time.time() - 120)
    # Not entries: a link to a valid one, a folder, too large, not JSON, a field of the wrong type.
    os.symlink(live, os.path.join(folder, f"{host}-1-00000004.json"))
    os.mkdir(os.path.join(folder, f"{host}-1-00000005.json"))
    with open(os.path.join(folder, f"{host}-1-00000006.json"), "w") as f:
        f.write(" " * 20000 + "{}")
    with open(os.path.join(folder, f"{host}-1-00000007.json"), "w") as f:
        f.write("{not json")
    write_entry(folder, f"{host}-{os.getpid()}-00000008.json", pid="1")
    write_entry(folder, f"{host}-{os.getpid()}-00000009.json", name="a\x1b[2Jb")
    found = registry.entries()
    assert [e.get("name") for e in found] == ["live"]
    assert os.path.exists(live) and os.path.exists(other) and not os.path.exists(gone)


@pytest.mark.parametrize("hostile", ["link", "writable", "not-a-folder"])
def test_a_registry_folder_others_could_tamper_with_is_refused_with_one_line(tmp_path, state_home, capfd, hostile):
    lrtop_dir = os.path.join(state_home, "lrtop")
    folder = os.path.join(lrtop_dir, "runs")
    os.makedirs(lrtop_dir, mode=0o700)
    elsewhere = str(tmp_path / "elsewhere")
    os.mkdir(elsewhere, 0o700)
    if hostile == "link":
        os.symlink(elsewhere, folder)
    elif hostile == "writable":
        os.mkdir(folder)
        os.chmod(folder, 0o777)
    else:
        open(folder, "w").close()
    model, opt, run = linear_run(tmp_path / "runs")
    try:
        for _ in range(3):  # the run goes on
            run.step(loss=train_step(model, opt))
        assert run.step_count == 3 and run.socket_path is not None
    finally:
        run.close()
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "registry" in line]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"lrtop: refusing the run registry folder {folder}: ")
    assert "goes on unlisted" in lines[0]
    assert os.listdir(elsewhere) == []
    if hostile == "writable":
        assert os.listdir(folder) == [] and "chmod go-w" in lines[0]


def test_a_lightning_run_registers_as_lightning_while_it_trains(tmp_path, state_home):
    pl = pytest.importorskip("pytorch_lightning")
    import torch
    from lrtop.lightning import LrtopCallback
    from conftest import tiny_lightning_module

    Tiny = tiny_lightning_module(pl, lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=100))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 8, generator=g)
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x.sum(1) > 0).long()), batch_size=8)
    seen = []

    class Look(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.extend(registry.entries())

    cb = LrtopCallback(name="pl", log_dir=str(tmp_path), announce=False)
    trainer = pl.Trainer(max_epochs=1, callbacks=[cb, Look()], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                         num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(Tiny(), dl)
    assert seen and {e["kind"] for e in seen} == {"lightning"} and {e["name"] for e in seen} == {"pl"}
    assert entry_files(state_home) == []
