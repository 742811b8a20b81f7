"""Nothing a viewer sends can end, stall or garble a run (issue 20, items 5, 6, 10, 14): one hostile line, a flood,
thousands of open files; and the fuzz: over 10,000 messages from several clients at a live loop, which never dies,
never waits 50 ms at a boundary because of them, and leaves a whole log."""
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch

import lrtop
from conftest import Client, read_log, train_step
from lrtop.run import MAX_COMMANDS_PER_BOUNDARY


def make_run(tmp_path, name, **options):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name=name, log_dir=str(tmp_path), announce=False, total_steps=100000,
                       **options)
    return run, model, opt


class Boundaries:
    """Times each step boundary (`run.step()`): its wall time, and the CPU the loop's thread spent in it."""

    LIMIT = 0.05

    def __init__(self):
        self.wall, self.cpu = [], []
        gc.collect()  # what earlier tests left for the collector is not this loop's to pay

    def step(self, run):
        t0, c0 = time.perf_counter(), time.thread_time()
        run.step(loss=1.0)
        self.wall.append(time.perf_counter() - t0)
        self.cpu.append(time.thread_time() - c0)

    def check(self):
        """No boundary waits 50 ms. On a machine whose load is beyond its cores, a wait can come from the kernel
        not running the process (or the thread holding the interpreter lock) at all, which no code in the loop
        controls: there the loop's own CPU in every boundary must stay under 50 ms, and 90% of the boundaries under
        50 ms of wall time. This test alone keeps two processes busy (the loop and the fuzzer), so on a 2-core
        machine its own load is about 2: a 56 ms wait was seen there with a load of 2.6, and the same wait with
        the package as it was before the runs table (an unchanged loop), so the threshold is the core count."""
        slowest = max(self.wall)
        if slowest < self.LIMIT:
            return
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        where = f"a boundary waited {slowest * 1000:.1f} ms (of {len(self.wall)}; load {load:.1f} on {cores} cores)"
        assert load > cores, where
        assert max(self.cpu) < self.LIMIT, f"{where}; the loop's CPU in boundary {self.cpu.index(max(self.cpu))}: {max(self.cpu) * 1000:.1f} ms"
        p90 = sorted(self.wall)[int(len(self.wall) * 0.9)]
        assert p90 < self.LIMIT, f"{where}; 90% of the boundaries under {p90 * 1000:.1f} ms"


def check_whole(path, reason):
    """Every line is JSON, the steps go 1, 2, 3 ... with no gap, and the log ends with an end record."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    assert lines[-1] == b"", "the last line is complete"
    records = [json.loads(line) for line in lines[:-1]]
    steps = [r["step"] for r in records if r["type"] == "step"]
    assert steps == list(range(1, len(steps) + 1))
    assert records[-1]["type"] == "end" and records[-1]["reason"] == reason
    return records


def test_a_3000_deep_line_is_answered_and_the_run_goes_on(tmp_path):
    run, model, opt = make_run(tmp_path, "deep")
    c = Client(run.socket_path)
    run.step(loss=1.0)
    c.wait_for(lambda m: m["type"] == "status")
    c.send_raw(b"[" * 3000 + b"]" * 3000 + b"\n")
    c.send_raw(b'{"type":"command","id":1,"text":"lr 0.05","x":' + b"{\"a\":" * 3000 + b"1" + b"}" * 3000 + b"}\n")
    time.sleep(0.3)  # the slower case of the issue: the service thread reads the lines between two steps
    run.step(loss=1.0)
    errors = [c.wait_for(lambda m: m["type"] == "error") for _ in range(2)]
    assert all("nested too deeply" in e["error"] for e in errors)
    c.command(2, "lr 0.05")
    run.step(loss=1.0)
    assert c.wait_for(lambda m: m["type"] == "result" and m["id"] == 2)["ok"]
    run.close()
    records = check_whole(run.log_path, "completed")
    assert sum(1 for r in records if r["type"] == "event" and r["kind"] == "error") == 2


def test_a_lone_surrogate_is_refused_and_no_step_record_is_lost(tmp_path):
    run, model, opt = make_run(tmp_path, "surrogate")
    c = Client(run.socket_path)
    run.step(loss=1.0)
    c.send_raw(b'{"type":"command","id":1,"text":"lr \\ud800"}\n{"type":"command","id":"\\udfff","text":"ckpt"}\n'
               b'{"type":"command","id":3,"text":"stop"}\n')
    run.command("lr \udc80")  # through the API: refused by the parser, logged with the character replaced
    n = 1
    while not run.should_stop and n < 5000:
        run.step(loss=1.0)
        n += 1
    errors = [c.wait_for(lambda m: m["type"] == "error") for _ in range(2)]
    assert "not valid Unicode" in errors[0]["error"] and "valid Unicode" in errors[1]["error"]
    run.close()
    records = check_whole(run.log_path, "stopped")
    assert [r["step"] for r in records if r["type"] == "step"][-1] == n


def test_a_process_with_thousands_of_open_files_is_served_and_the_service_thread_does_not_spin(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2200:
        pytest.skip(f"needs 2200 open files (the hard limit is {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2200), hard))
    held = [os.open("/dev/null", os.O_RDONLY) for _ in range(1100)]  # dataset shards, loader workers
    try:
        run, model, opt = make_run(tmp_path, "fds")
        assert run._server.listener.fileno() > 1024
        cpu0, wall0 = time.process_time(), time.perf_counter()
        time.sleep(1.0)
        idle = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        assert idle < 0.2, f"the service thread used {idle:.0%} of a core with no viewer"
        c = Client(run.socket_path)
        run.step(loss=1.0)
        assert c.read()["type"] == "hello"
        c.command(1, "lr 0.05")
        run.step(loss=1.0)
        assert c.wait_for(lambda m: m["type"] == "result" and m["id"] == 1)["ok"]
        assert opt.param_groups[0]["lr"] == 0.05
        c.close()
        run.close()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_flood_of_commands_is_spread_over_boundaries_and_checkpoints_coalesce(tmp_path):
    run, model, opt = make_run(tmp_path, "flood")
    c = Client(run.socket_path)
    run.step(loss=1.0)
    c.send_raw(b"".join(b'{"type":"command","id":%d,"text":"lr *1"}\n' % i for i in range(5000)))
    c.send_raw(b"".join(b'{"type":"command","id":"c%d","text":"ckpt"}\n' % i for i in range(300)))
    got = {"ack": 0, "result": 0, "refused": 0}
    done = threading.Event()

    def drain():
        while not done.is_set():
            try:
                m = c.read(timeout=0.5)
            except (TimeoutError, socket.timeout):
                continue
            except (EOFError, OSError):
                return
            if m["type"] == "ack" and not m["ok"]:
                got["refused"] += 1
            elif m["type"] in got:
                got[m["type"]] += 1

    reader = threading.Thread(target=drain)
    reader.start()
    boundaries = Boundaries()
    deadline = time.time() + 30
    while got["result"] + got["refused"] < 5300 and time.time() < deadline:  # each answered, a share at a time
        train_step(model, opt)
        boundaries.step(run)
    time.sleep(0.2)
    done.set()
    reader.join()
    run.close()
    boundaries.check()
    assert got["refused"] > 0, "beyond 1024 waiting commands, a command is refused at once"
    assert got["result"] + got["refused"] == 5300
    assert len(boundaries.wall) >= 5300 // MAX_COMMANDS_PER_BOUNDARY // 4, "spread over many boundaries"
    files = [f for f in os.listdir(tmp_path / "flood" / "checkpoints") if f.endswith(".pt")]
    assert len(files) <= 5, "checkpoints with nothing changed between them are one"
    check_whole(run.log_path, "completed")


def test_fuzz_the_socket_with_10000_messages_at_a_live_loop(tmp_path):
    """The clients run in a process of their own (socket_fuzzer.py), as viewers do, so the loop's timings are the
    loop's and not the test's threads competing with it for the interpreter."""
    run, model, opt = make_run(tmp_path, "fuzz", guard="off")
    fuzzer = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "socket_fuzzer.py"),
                               run.socket_path, "7"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    boundaries = Boundaries()
    t_end = time.time() + 40
    while fuzzer.poll() is None and time.time() < t_end:
        train_step(model, opt)
        boundaries.step(run)
    for _ in range(50):  # what still waits in the queue applies
        train_step(model, opt)
        boundaries.step(run)
    out, err = fuzzer.communicate(timeout=30)
    run.close()
    assert fuzzer.returncode == 0, err[-6000:]
    sent = json.loads(out.strip().splitlines()[-1])
    assert sent["messages"] >= 10000, sent
    boundaries.check()
    records = check_whole(run.log_path, "completed")
    kinds = {(r["kind"], r["text"]) for r in records if r["type"] == "event"}
    assert ("command", "lr *1") in kinds and ("error", "socket") in kinds
