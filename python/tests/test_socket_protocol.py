"""The control socket refuses what is not protocol v1 and never lets a client hurt the run."""
import json
import os
import socket
import stat
import time

import torch

import lrtop
from conftest import Client, read_log


def make_run(tmp_path, name="s"):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return lrtop.attach(opt, model=model, name=name, log_dir=str(tmp_path), announce=False), opt


def connect(run):
    c = Client(run.socket_path)
    run.step(loss=1.0)
    assert c.read()["type"] == "hello"
    assert c.read()["type"] == "status"
    return c


def test_malformed_lines_are_refused_logged_and_the_connection_stays(tmp_path):
    run, opt = make_run(tmp_path)
    c = connect(run)
    bad = [b"not json\n", b"[1,2,3]\n", b'{"type":"launch","text":"x"}\n', b'{"type":"command","id":1}\n',
           b'{"type":"command","id":2,"text":42}\n', b'{"type":"command","id":[1],"text":"pause"}\n',
           b'{"type":"command","id":3,"text":"' + b"x" * 5000 + b'"}\n', b'{"type":"command","text":NaN}\n',
           b"\xff\xfe\n", b'"__import__(\'os\').system(\'id\')"\n',
           b'\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8c\x01a\x94.\n']  # a pickle: just bytes to us
    for line in bad:
        c.send_raw(line)
    run.step(loss=1.0)
    errors = [c.wait_for(lambda m: m["type"] == "error") for _ in bad]
    assert all(e["error"] for e in errors)
    assert "not JSON" in errors[0]["error"] and "not a JSON object" in errors[1]["error"]
    assert "unknown message type" in errors[2]["error"] and "'text' is missing" in errors[3]["error"]
    # Still connected: a good command goes through.
    c.command(9, "lr 0.05")
    run.step(loss=1.0)
    assert c.wait_for(lambda m: m["type"] == "result" and m["id"] == 9)["ok"]
    assert opt.param_groups[0]["lr"] == 0.05
    run.close()
    events = [r for r in read_log(run.log_path) if r["type"] == "event" and r["kind"] == "error"]
    assert len(events) == len(bad) and all("refused a socket message" in e["message"] for e in events)


def test_an_oversized_line_closes_only_that_connection(tmp_path):
    run, opt = make_run(tmp_path)
    c1, c2 = connect(run), Client(run.socket_path)
    run.step(loss=1.0)
    c1.send_raw(b'{"type":"command","id":1,"text":"' + b"a" * 70000)  # no newline, over 65,536 bytes
    run.step(loss=1.0)
    err = c1.wait_for(lambda m: m["type"] == "error")
    assert "65536-byte limit" in err["error"]
    c1.sock.settimeout(5)
    assert c1.sock.recv(100) == b"", "the server closed that connection"
    c2.command(2, "lr 0.01")
    run.step(loss=1.0)
    assert c2.wait_for(lambda m: m["type"] == "result" and m["id"] == 2)["ok"]
    assert len(run._server.clients) == 1
    run.close()


def test_a_client_that_vanishes_mid_message_leaves_the_run_untouched(tmp_path):
    run, opt = make_run(tmp_path)
    c = connect(run)
    c.send_raw(b'{"type":"command","id":1,"text":"lr 1')  # half a line, then gone
    c.close()
    for _ in range(3):
        run.step(loss=1.0)
    assert opt.param_groups[0]["lr"] == 0.1 and run._server.clients == []
    run.close()
    assert not [r for r in read_log(run.log_path) if r["type"] == "event"]


def test_a_client_that_never_reads_is_dropped_without_blocking(tmp_path):
    run, opt = make_run(tmp_path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(run.socket_path)
    run.step(loss=1.0)
    assert len(run._server.clients) == 1
    t0 = time.perf_counter()
    for _ in range(200):
        run._server.broadcast(run._status() | {"pad": "x" * 8000})  # ~1.6 MB to a reader that never reads
    assert time.perf_counter() - t0 < 5
    run.step(loss=1.0)
    assert run._server.clients == []
    s.close()
    run.close()


def test_hello_status_and_permissions(tmp_path):
    run, opt = make_run(tmp_path, "perm")
    d = os.path.dirname(run.socket_path)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(run.socket_path).st_mode) == 0o600
    assert os.path.basename(run.socket_path).startswith(f"{os.getpid()}-")
    assert len(run.socket_path.encode()) < 108
    c = connect(run)
    c.send({"type": "hello", "client": "lrtop", "protocol": 1})
    c.send({"type": "command", "id": "x", "text": "pause"})
    c.send({"type": "command", "id": "y", "text": "resume"})
    run.step(loss=1.0)  # pause applies, then resume (same boundary) lets the loop go on
    msgs = [c.read() for _ in range(6)]
    states = [m["state"] for m in msgs if m["type"] == "status"]
    assert "paused" in states
    status = [m for m in msgs if m["type"] == "status"][-1]
    assert set(status) >= {"state", "step", "epoch", "total_steps", "lr", "groups", "hold", "override", "scheduler",
                           "loss_scale", "skipped_steps", "checkpoints"}
    assert status["loss_scale"] is None and status["groups"] == ["default"]
    run.close()
    assert not os.path.exists(run.socket_path)


def test_a_viewer_is_greeted_and_kept_informed_while_a_step_takes_long(tmp_path):
    run, opt = make_run(tmp_path, "slow")
    run.step(loss=1.0)
    c = Client(run.socket_path)  # the loop is "inside a long step": no run.step() from here on
    t0 = time.time()
    assert c.read(timeout=3)["type"] == "hello"
    assert c.read(timeout=3)["type"] == "status"
    statuses = [c.wait_for(lambda m: m["type"] == "status", timeout=3) for _ in range(2)]
    assert time.time() - t0 < 2.5 and all(s["step"] == 1 for s in statuses)
    c.command(1, "lr 0.5")  # read and applied only at the next step boundary
    time.sleep(0.3)
    assert opt.param_groups[0]["lr"] == 0.1
    run.step(loss=1.0)
    assert c.wait_for(lambda m: m["type"] == "result" and m["id"] == 1)["ok"]
    run.close()
