"""`python -m lrtop relay SOCKET`, the stdio relay `lrtop attach HOST:RUN` runs on a host whose sshd refuses to
forward a Unix socket: bytes both ways between its stdio and a run's socket, nothing else imported, and it ends with
either side. And the Slurm job a run records in its header (`lrtop attach slurm:JOBID` finds it by that)."""
import json
import os
import select
import subprocess
import sys
import time

import torch

import lrtop
from conftest import read_log
from lrtop.slurm import slurm_job

PYTHON_DIR = os.path.join(os.path.dirname(__file__), "..")


def relay(path, *extra):
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    return subprocess.Popen([sys.executable, *extra, "-m", "lrtop", "relay", path], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def read_line(stream, timeout=20.0):
    """One line from a pipe, waiting at most `timeout` seconds (select, then one byte at a time)."""
    deadline = time.time() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.time()
        assert left > 0 and select.select([stream], [], [], left)[0], "no line from the relay"
        chunk = os.read(stream.fileno(), 1)
        if not chunk:
            break
        line += chunk
    return line


def test_the_relay_carries_the_protocol_both_ways_and_ends_with_the_viewer(tmp_path):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name="relayed", log_dir=str(tmp_path), announce=False)
    p = relay(run.socket_path)
    try:
        # The run greets the relay's connection like any viewer; a command sent through it applies at the boundary.
        hello = json.loads(read_line(p.stdout))
        assert hello["type"] == "hello" and hello["log"] == run.log_path
        p.stdin.write(b'{"type":"command","id":1,"text":"lr 0.01"}\n')
        p.stdin.flush()
        deadline = time.time() + 20
        while opt.param_groups[0]["lr"] != 0.01 and time.time() < deadline:
            run.step(loss=1.0)
            time.sleep(0.02)
        assert opt.param_groups[0]["lr"] == 0.01
        # The viewer leaves (stdin closes): the relay ends, and the run goes on with one viewer less.
        p.stdin.close()
        assert p.wait(timeout=20) == 0
        deadline = time.time() + 5
        while run._server.has_clients and time.time() < deadline:
            run.step(loss=1.0)
            time.sleep(0.05)
        assert not run._server.has_clients
    finally:
        if p.poll() is None:
            p.kill()
        run.close()
    events = [r for r in read_log(run.log_path) if r["type"] == "event"]
    assert [e["text"] for e in events if e["kind"] == "command"] == ["lr 0.01"]


def test_the_relay_ends_when_the_run_goes_away(tmp_path):
    model = torch.nn.Linear(2, 1)
    run = lrtop.attach(torch.optim.SGD(model.parameters(), lr=0.1), model=model, name="gone", log_dir=str(tmp_path),
                       announce=False)
    p = relay(run.socket_path)
    try:
        assert json.loads(read_line(p.stdout))["type"] == "hello"
        run.close()
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()


def test_the_relay_imports_no_torch_and_says_in_one_line_what_is_wrong(tmp_path):
    p = relay(str(tmp_path / "nope.sock"), "-X", "importtime")
    _, err = p.communicate(timeout=30)
    text = err.decode()
    assert p.returncode == 1
    lines = [line for line in text.splitlines() if not line.startswith("import time:")]
    assert lines == [f"lrtop relay: {tmp_path / 'nope.sock'}: no such socket (the run has ended, or this is not its socket)"]
    imported = [line.split("|")[-1].strip() for line in text.splitlines() if line.startswith("import time:")]
    assert "lrtop.relay" in imported
    assert not any(name == "torch" or name.startswith("torch.") for name in imported)
    # A file that is not a socket, and no argument at all.
    (tmp_path / "plain").write_text("x")
    p = relay(str(tmp_path / "plain"))
    _, err = p.communicate(timeout=30)
    assert p.returncode == 1 and err.decode().startswith(f"lrtop relay: {tmp_path / 'plain'}: ")
    p = subprocess.run([sys.executable, "-m", "lrtop", "relay"], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=PYTHON_DIR), timeout=30)
    assert p.returncode == 2 and p.stderr.startswith("usage: python3 -m lrtop relay SOCKET")


def test_a_run_under_slurm_records_its_job_rank_and_node(tmp_path, monkeypatch):
    assert slurm_job({}) is None
    assert slurm_job({"SLURM_JOB_ID": "77", "SLURM_PROCID": "3", "SLURMD_NODENAME": "gpu7"}) == \
        {"job_id": "77", "proc_id": 3, "node": "gpu7"}
    assert slurm_job({"SLURM_JOBID": "78", "SLURM_PROCID": "x"})["proc_id"] == 0
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("SLURMD_NODENAME", "node9")
    model = torch.nn.Linear(2, 1)
    run = lrtop.attach(torch.optim.SGD(model.parameters(), lr=0.1), model=model, name="job", log_dir=str(tmp_path),
                       announce=False)
    run.close()
    header = read_log(run.log_path)[0]
    assert header["slurm"] == {"job_id": "4242", "proc_id": 0, "node": "node9"}
