"""The status's figures for `lrtop runs` (docs/bridge.md, protocol E): what they say matches the log the run wrote,
and the last status before the socket closes says how the run ended."""
import math
import time

import torch

from lrtop import livefigures
from conftest import Client, linear_run, read_log


def smoothed(losses, weight=0.6):
    """The dashboard's default smoothing (LRTUI Smoothing.swift DebiasedEMA), over the log's losses."""
    ema, n, out = 0.0, 0, []
    for x in losses:
        if isinstance(x, (int, float)) and math.isfinite(x):
            ema = ema * weight + (1 - weight) * x
            n += 1
        out.append(ema / (1 - weight ** n) if n else None)
    return out


def test_the_status_figures_match_the_log(tmp_path):
    model, opt, run = linear_run(tmp_path, total_steps=500, batch_size=32, guard="off")  # a NaN loss below
    c = Client(run.socket_path)
    hello = c.read()
    assert hello["rank"] == 0 and hello["host"]
    first = c.fresh_status()
    assert first["loss"] is None and first["loss_trend"] is None and first["step_time"] is None
    assert first["steps_per_s"] is None and first["eta_s"] is None and first["ended"] is None
    for i in range(150):
        x = torch.randn(32, 8)
        loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.step(loss=loss if i != 40 else torch.tensor(float("nan")), samples=32 if i % 2 else 16)
        time.sleep(0.002 if i % 3 else 0.01)
    run.eval(val_loss=0.75, val_acc=0.5)
    status = c.fresh_status()
    run.flush()
    records = read_log(run.log_path)
    steps = [r for r in records if r["type"] == "step"]
    assert status["step"] == 150 == len(steps)
    expected = smoothed([r["loss"] for r in steps])
    assert math.isclose(status["loss"], expected[-1], rel_tol=1e-9)
    trend = status["loss_trend"]
    assert 20 <= len(trend) <= livefigures.TREND_POINTS and trend[-1] == status["loss"]
    assert math.isclose(trend[0], expected[0], rel_tol=1e-9)  # oldest first: the trend spans the whole run
    assert all(any(math.isclose(t, e, rel_tol=1e-12) for e in expected if e is not None) for t in trend)
    assert status["val_loss"] == 0.75 and status["val_acc"] == 0.5
    walls = [r["wall_time"] for r in steps[-65:]]
    assert math.isclose(status["steps_per_s"], 64 / (walls[-1] - walls[0]), rel_tol=1e-9)
    # Samples over the same steps: each step's samples (its rate times its duration) over their time.
    rates = [r["samples_per_sec"] for r in steps[-65:]]
    samples = sum(rate * (b - a) for rate, a, b in zip(rates[1:], walls, walls[1:]))
    assert math.isclose(status["samples_per_s"], samples / (walls[-1] - walls[0]), rel_tol=1e-6)
    # Steps of 16 and 32 samples alternate: between 16 and 32 samples a step (the rates' clock is not the wall's).
    assert 15 * status["steps_per_s"] < status["samples_per_s"] < 33 * status["steps_per_s"]
    assert math.isclose(status["eta_s"], 350 / status["steps_per_s"], rel_tol=1e-9)
    assert 0 <= status["step_age"] < 5
    assert 0.001 < status["step_time"] < 0.5
    assert status["rank"] == 0 and status["ended"] is None
    run.close()
    last = [m for m in c.seen if m.get("type") == "status"][-1]
    try:
        while True:
            m = c.read(5)
            if m.get("type") == "status":
                last = m
    except EOFError:
        pass
    assert last["state"] == "finished" and last["ended"] == "completed"
    c.close()


def test_without_a_batch_size_or_a_total_those_figures_are_null(tmp_path):
    model, opt, run = linear_run(tmp_path)
    for _ in range(5):
        run.step(loss=1.0)
        time.sleep(0.01)
    c = Client(run.socket_path)
    status = c.fresh_status()
    assert status["samples_per_s"] is None and status["eta_s"] is None
    assert status["steps_per_s"] > 0 and status["loss"] == 1.0 and status["val_loss"] is None
    run.close()
    c.close()


def ended_after(tmp_path, end):
    model, opt, run = linear_run(tmp_path)
    c = Client(run.socket_path)
    run.step(loss=1.0)
    end(run, c)
    statuses = []
    try:
        while True:
            m = c.read(10)
            if m.get("type") == "status":
                statuses.append(m)
    except EOFError:
        pass
    c.close()
    assert statuses[-1]["state"] == "finished"
    return statuses[-1]["ended"]


def test_the_last_status_says_how_the_run_ended(tmp_path):
    def stop(run, c):
        c.command(1, "stop")  # applied (and answered) at the next step boundary
        for _ in range(500):
            if run.should_stop:
                break
            run.step(loss=1.0)
            time.sleep(0.01)
        run.close()

    assert ended_after(tmp_path / "a", stop) == "stopped by a viewer"

    def fail(run, c):
        try:
            with run:
                raise ValueError("boom")
        except ValueError:
            pass

    assert ended_after(tmp_path / "b", fail) == "error: ValueError: boom"
