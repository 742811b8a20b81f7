"""`S` in `lrtop runs`: a stuck run's Python stacks, answered by the service thread while the main thread is stuck
(in its data loading, in a DDP collective), from every rank's own socket; the stuck run's `step_age` grows."""
import os
import socket
import subprocess
import sys
import time

import torch

import lrtop
from lrtop import registry, stacks
from conftest import Client

WORKER = os.path.join(os.path.dirname(__file__), "stall_worker.py")


def start(tmp_path, *mode):
    release = str(tmp_path / "release")
    proc = subprocess.Popen([sys.executable, WORKER, str(tmp_path / "runs"), mode[0], release, *mode[1:]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    line = proc.stdout.readline()
    assert line.startswith("ready "), proc.stderr.read()[-3000:]
    return proc, release


def finish(proc, release):
    open(release, "w").close()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "done" in out


def ask_stacks(client, ident):
    client.send({"type": "stacks", "id": ident})
    return client.wait_for(lambda m: m.get("type") == "stacks" and m.get("id") == ident, timeout=10)


def stacks_until(client, ident, pred, timeout=15.0):
    """Asks for the stacks until `pred(main thread's frames)` (a thread caught between its sleeps, checking its file,
    shows another innermost frame for microseconds); returns the last answer."""
    deadline = time.time() + timeout
    while True:
        answer = ask_stacks(client, ident)
        if pred(main_thread(answer)["frames"]) or time.time() > deadline:
            return answer
        time.sleep(0.1)


def main_thread(answer):
    [main] = [t for t in answer["threads"] if t["main"]]
    assert main["name"] == "MainThread"
    return main


def test_a_loop_stuck_in_its_data_loading_shows_the_sleeping_frame_and_its_step_age_grows(tmp_path):
    proc, release = start(tmp_path, "loader")
    try:
        [entry] = registry.entries()
        c = Client(entry["socket"])
        hello = c.read()
        assert hello["type"] == "hello" and hello["rank"] == 0 and hello["host"] == registry.short_host()
        first = c.wait_for(lambda m: m.get("type") == "status" and m["step"] == 5)
        answer = stacks_until(c, 7, lambda frames: frames[-1]["function"] == "__getitem__")
        assert answer["rank"] == 0
        frames = main_thread(answer)["frames"]
        innermost = frames[-1]
        assert innermost["function"] == "__getitem__" and innermost["file"] == WORKER
        assert innermost["code"] == "time.sleep(0.05)  # the frame the stacks must show"
        # Outermost first: the script's module frame, then its loop, then torch's DataLoader, then the dataset.
        assert frames[0]["function"] == "<module>" and frames[0]["file"] == WORKER
        assert [f["function"] for f in frames].index("loader") < [f["function"] for f in frames].index("__getitem__")
        assert all(set(f) == {"file", "line", "function", "code"} for f in frames)
        # The service thread answering is not among the threads shown.
        assert all(t["name"] != "lrtop-socket" for t in answer["threads"])
        time.sleep(1.0)
        later = c.fresh_status()
        assert later["step"] == 5 and later["step_age"] > first["step_age"] + 0.8
        assert later["step_time"] is not None and later["step_time"] < 1.0
        assert later["step_age"] > 5 * later["step_time"]  # what the table flags as stalled
        c.close()
    finally:
        if proc.poll() is None:
            finish(proc, release)


def test_every_ddp_rank_registers_and_answers_stacks_while_rank_0_is_stuck(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc, release = start(tmp_path, "ddp", str(port))
    try:
        found = registry.entries()
        assert sorted(e["rank"] for e in found) == [0, 1]
        assert {e["world_size"] for e in found} == {2} and len({e["log"] for e in found}) == 1
        assert len({e["socket"] for e in found}) == 2 and len({e["pid"] for e in found}) == 2
        by_rank = {e["rank"]: e for e in found}

        one = Client(by_rank[1]["socket"])
        hello = one.read()
        assert hello["rank"] == 1 and hello["world_size"] == 2 and "records" not in hello
        status = one.wait_for(lambda m: m.get("type") == "status")
        # Its own figures: the step it took last (the job's `ranks` are rank 0's to say).
        assert status["rank"] == 1 and status["step"] == 5 and "ranks" not in status
        assert status["step_time"] is not None and status["step_age"] >= 0
        # Rank 1 goes on into step 6 (after its 50 ms pause and its forward) and waits in its gradient all-reduce
        # for rank 0: its service thread answers.
        answer = stacks_until(one, "r1", lambda frames: "backward" in [f["function"] for f in frames])
        assert answer["rank"] == 1
        functions = [f["function"] for f in main_thread(answer)["frames"]]
        assert "ddp_rank" in functions and "backward" in functions, functions
        one.command(3, "lr 0.5")
        ack = one.wait_for(lambda m: m.get("type") == "ack")
        assert ack["id"] == 3 and ack["ok"] is False
        assert ack["error"].startswith("rank 1 takes no commands: send them to the job (rank 0's socket")

        zero = Client(by_rank[0]["socket"])
        assert zero.read()["rank"] == 0
        answer = stacks_until(zero, 1, lambda frames: frames[-1]["function"] == "wait_for_release")
        innermost = main_thread(answer)["frames"][-1]
        assert innermost["function"] == "wait_for_release" and innermost["code"] == "time.sleep(0.05)"
        one.close()
        zero.close()
    finally:
        if proc.poll() is None:
            finish(proc, release)
    assert registry.entries() == []


def test_the_answer_stays_under_a_protocol_line_whatever_the_threads(tmp_path, monkeypatch):
    """Deep recursion on many threads: the answer keeps the innermost frames and says what it left out."""
    import threading
    started, release = threading.Barrier(41), threading.Event()

    def deep(n):
        if n:
            return deep(n - 1)
        started.wait()
        release.wait(30)

    threads = [threading.Thread(target=deep, args=(300,), name=f"deep-{i}") for i in range(40)]
    for t in threads:
        t.start()
    started.wait()
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, log_dir=str(tmp_path), announce=False)
    try:
        c = Client(run.socket_path)
        c.sock.sendall(b'{"type":"stacks","id":1}\n')
        deadline = time.time() + 10
        while b'"type":"stacks"' not in c.buf and time.time() < deadline:
            c.buf += c.sock.recv(1 << 20)
        line = next(raw for raw in c.buf.split(b"\n") if b'"type":"stacks"' in raw)
        assert len(line) < 65536
        import json
        answer = json.loads(line)
        deep_threads = [t for t in answer["threads"] if t["name"].startswith("deep-")]
        assert deep_threads, answer.get("threads_omitted")
        for t in deep_threads:
            assert len(t["frames"]) <= stacks.MAX_FRAMES and t["omitted"] > 0
            assert t["frames"][-1]["function"] == "wait"  # innermost kept: where it waits
        shown = len(answer["threads"]) + answer.get("threads_omitted", 0)
        assert shown >= 41
        c.close()
    finally:
        release.set()
        run.close()
        for t in threads:
            t.join()
