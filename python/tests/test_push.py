"""Records pushed over the socket (docs/bridge.md "Records, pushed"): a subscriber gets every log line from the line it
asks for, numbered as in the file and byte for byte the file's JSON, then each new one as it is made; what the
server no longer holds is announced as a gap to read from the file."""
import json

import torch

import lrtop
from conftest import Client, read_log


def make_run(tmp_path, name="p"):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return lrtop.attach(opt, model=model, name=name, log_dir=str(tmp_path), announce=False)


def greeted(run):
    c = Client(run.socket_path)
    run.step(loss=1.0)
    hello = c.read()
    assert hello["type"] == "hello" and hello["records"] is True, "the greeting says this run pushes records"
    return c


def file_lines(run):
    with open(run.log_path, "rb") as f:
        return f.read().splitlines()


def pushed_until_end(c):
    """Every record and gap message until the end record, in arrival order."""
    got = []
    while True:
        m = c.wait_for(lambda m: m["type"] in ("record", "gap"))
        got.append(m)
        if m["type"] == "record" and m["record"]["type"] == "end":
            return got


def test_a_subscriber_joins_mid_run_and_gets_every_line_once_in_order_as_in_the_file(tmp_path):
    run = make_run(tmp_path)
    c = greeted(run)
    for i in range(30):
        run.step(loss=1.0 / (i + 1), acc=torch.tensor(0.5 + i / 100))
    run.flush()
    joined_at = len(file_lines(run))  # what a viewer read from the file before subscribing
    for i in range(20):  # made after the file was read, before the subscription: the server still holds them
        run.step(loss=0.1)
    run.log({"tokens": 4096, "grad/attn": torch.tensor([1.0, 3.0])})
    c.send({"type": "subscribe", "from_line": joined_at})
    run.command("ckpt")
    for _ in range(5):
        run.step(loss=0.1)
    run.command("rollback")  # the steps after it repeat: distinct lines, still in order
    for _ in range(5):
        run.step(loss=0.1)
    run.close()
    got = pushed_until_end(c)
    assert all(m["type"] == "record" for m in got)
    lines = file_lines(run)
    assert [m["line"] for m in got] == list(range(joined_at, len(lines))), "each line once, in order, to the end"
    for m in got:
        assert m["record"] == json.loads(lines[m["line"]]), "the pushed record is the file's line"
    steps = [m["record"]["step"] for m in got if m["record"]["type"] == "step"]
    assert steps != sorted(steps), "the rollback's repeated steps are there, in line order"
    metrics = [m["record"] for m in got if m["record"]["type"] == "metrics"]
    assert metrics and metrics[0]["metrics"] == {"tokens": 4096.0, "grad/attn": 2.0}


def test_a_subscriber_behind_what_the_server_holds_gets_a_gap_then_the_rest(tmp_path):
    run = make_run(tmp_path)
    run._writer.RING_LINES = 8  # the server keeps only 8 written lines in memory
    c = greeted(run)
    for _ in range(40):
        run.step(loss=0.5)
    run.flush()
    c.send({"type": "subscribe", "from_line": 1})
    run.step(loss=0.5)
    run.close()
    got = pushed_until_end(c)
    assert got[0]["type"] == "gap" and got[0]["from_line"] == 1
    resume = got[0]["to_line"]
    assert 1 < resume <= len(file_lines(run)) - 8
    assert [m["line"] for m in got[1:]] == list(range(resume, len(file_lines(run))))


def test_a_bad_subscription_is_refused_and_the_connection_stays(tmp_path):
    run = make_run(tmp_path)
    c = greeted(run)
    for bad in (-1, "3", True, None, 10 ** 9):
        c.send({"type": "subscribe", "from_line": bad})
        assert "'from_line' must be a line number from 0 to" in c.wait_for(lambda m: m["type"] == "error")["error"]
    c.send({"type": "subscribe", "from_line": 0})
    run.step(loss=0.5)
    first = c.wait_for(lambda m: m["type"] == "record")
    assert first["line"] == 0 and first["record"]["type"] == "header"
    run.close()


def test_a_viewer_that_does_not_subscribe_gets_no_records(tmp_path):
    run = make_run(tmp_path)
    c = greeted(run)
    for _ in range(20):
        run.step(loss=0.5)
    run.close()
    seen = []
    try:
        while True:
            seen.append(c.read(timeout=2)["type"])
    except (EOFError, TimeoutError, OSError):
        pass
    assert "record" not in seen and "status" in seen
    assert read_log(run.log_path)[-1]["type"] == "end"
