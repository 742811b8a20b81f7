"""Zero host-device syncs per step (issue #23): the tensors given to `run.step()` are never read by a blocking
conversion; their values still reach the log, every step, in order, and the divergence guard."""
import math
import time

import pytest
import torch

import lrtop
from conftest import Client, read_log

# What waits for a device: a conversion to a Python value, a blocking copy to the host.
BLOCKING = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.__float__,
            torch.Tensor.__int__, torch.Tensor.__bool__, torch.Tensor.__index__, torch.Tensor.__repr__,
            torch.Tensor.__format__}


class Counted(torch.Tensor):
    """A tensor that counts every blocking conversion of itself and of what is derived from it. The result of an
    async host copy, `to("cpu", non_blocking=True)`, is a plain tensor: reading it later is what the copy is for."""
    conversions: list = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in BLOCKING:
            cls.conversions.append(func.__name__)
        elif func is torch.Tensor.to:
            non_blocking = kwargs.get("non_blocking", False) or any(a is True for a in args[1:])
            if not non_blocking:
                cls.conversions.append("to (blocking)")
            else:
                with torch._C.DisableTorchFunctionSubclass():
                    return func(*args, **kwargs).as_subclass(torch.Tensor)  # to the CPU from the CPU: itself
        return super().__torch_function__(func, types, args, kwargs)


def counted(x):
    return torch.as_tensor(x, dtype=torch.float32).as_subclass(Counted)


def train(tmp_path, name, losses, monkeypatch, deferred=True, viewer=False, guard="pause", during=None):
    """A real loop whose loss, grad norm and metric go to `run.step()` as `Counted` tensors (`losses[i]`, when given,
    replaces step i+1's loss)."""
    monkeypatch.setenv("LRTOP_DEFERRED_VALUES", "1" if deferred else "0")
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    run = lrtop.attach(opt, model=model, name=name, log_dir=str(tmp_path), announce=False, guard=guard)
    client = Client(run.socket_path) if viewer else None
    Counted.conversions = []
    expected = {}
    x, y = torch.randn(16, 8), torch.randn(16, 1)
    for i in range(len(losses)):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1e9)
        opt.step()
        given = loss.detach() if losses[i] is None else torch.tensor(losses[i])
        expected[run.step_count + 1] = float(given)
        run.step(loss=given.as_subclass(Counted), grad_norm=norm.as_subclass(Counted), acc=counted(0.5))
        if during is not None:
            during(run, i + 1)
    conversions = list(Counted.conversions)
    run.close()
    if client is not None:
        client.close()
    return run, conversions, expected


@pytest.mark.parametrize("viewer", [False, True], ids=["no viewer", "a viewer"])
def test_steady_state_makes_no_blocking_conversion(tmp_path, monkeypatch, viewer):
    run, conversions, expected = train(tmp_path, "z", [None] * 40, monkeypatch, viewer=viewer)
    assert conversions == []
    steps = [r for r in read_log(run.log_path) if r["type"] == "step"]
    # Every step's values arrived, in step order, as the tensors held them.
    assert [r["step"] for r in steps] == list(range(1, 41))
    for r in steps:
        assert r["loss"] == pytest.approx(expected[r["step"]], rel=1e-6)
        assert r["acc"] == 0.5 and r["grad_norm"] > 0


def test_the_deferred_path_logs_what_the_direct_path_logs(tmp_path, monkeypatch):
    direct, _, _ = train(tmp_path, "direct", [None] * 12, monkeypatch, deferred=False)
    deferred, _, _ = train(tmp_path, "deferred", [None] * 12, monkeypatch, deferred=True)

    def values(run):
        return [(r["step"], r["loss"], r["grad_norm"], r["acc"]) for r in read_log(run.log_path) if r["type"] == "step"]
    assert values(direct) == values(deferred)
    assert read_log(deferred.log_path)[-1]["final_loss"] == read_log(direct.log_path)[-1]["final_loss"]


def test_the_guard_judges_deferred_losses_and_rolls_back_to_before_the_divergence(tmp_path, monkeypatch):
    """A NaN loss at step 12, seen when its window arrives; the checkpoint taken at step 13 (after it, before it was
    seen) is passed over: the rollback returns to step 10's."""
    def during(run, i):
        if run.step_count in (10, 13) and not run.finding_lr:
            run.save_checkpoint()
        time.sleep(0.02)  # 8 steps take 0.16 s: a window closes every 8 steps

    losses = [None] * 24
    losses[11] = math.nan
    run, conversions, _ = train(tmp_path, "g", losses, monkeypatch, guard="rollback", during=during)
    assert conversions == []
    guards = [r for r in read_log(run.log_path) if r["type"] == "event" and r["kind"] == "guard"]
    assert len(guards) == 1
    assert "loss is NaN at step 12" in guards[0]["message"]
    assert "rolled back to step 10" in guards[0]["message"]
    assert guards[0]["step"] == 10
    # Seen within one window of the divergence (MIN_STEPS steps; 0.1 s): the steps run until then are logged.
    steps = [r["step"] for r in read_log(run.log_path) if r["type"] == "step"]
    seen = steps.index(11, 11)  # the first step after the rollback
    assert 13 < steps[seen - 1] <= 12 + 8


def test_the_guard_has_the_state_at_attach_to_roll_back_to(tmp_path, monkeypatch):
    losses = [None] * 16
    losses[2] = math.inf
    run, _, _ = train(tmp_path, "s", losses, monkeypatch, guard="rollback", during=lambda run, i: time.sleep(0.02))
    guards = [r for r in read_log(run.log_path) if r["type"] == "event" and r["kind"] == "guard"]
    assert "loss is infinite at step 3" in guards[0]["message"] and "rolled back to step 0" in guards[0]["message"]


def test_the_loss_scale_is_logged_without_get_scale(tmp_path, monkeypatch):
    """GradScaler's scale is read from its tensor (a copy, as `update()` changes it in place), not `get_scale()`."""
    monkeypatch.setenv("LRTOP_DEFERRED_VALUES", "1")
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    run = lrtop.attach(opt, model=model, scaler=scaler, name="amp", log_dir=str(tmp_path), announce=False)
    monkeypatch.setattr(type(scaler), "get_scale", lambda self: pytest.fail("get_scale() syncs"))
    expected = []
    for _ in range(10):
        loss = model(torch.randn(4, 4)).pow(2).mean()
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        expected.append(float(scaler._scale))
        run.step(loss=loss)
    run.close()
    logged = [r["loss_scale"] for r in read_log(run.log_path) if r["type"] == "step"]
    assert logged == expected and expected[-1] > expected[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: sync debug mode only exists on CUDA "
                    "(the CPU proxy tests above cover the same path)")
def test_no_sync_on_cuda_in_500_steps(tmp_path, monkeypatch):
    monkeypatch.delenv("LRTOP_DEFERRED_VALUES", raising=False)
    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 1)).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, capturable=True)
    scaler = torch.amp.GradScaler("cuda")
    run = lrtop.attach(opt, model=model, scaler=scaler, name="cuda", log_dir=str(tmp_path), announce=False)
    client = Client(run.socket_path)
    x, y = torch.randn(64, 256, device=dev), torch.randn(64, 1, device=dev)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.mse_loss(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        run.step(loss=loss, grad_norm=norm, tokens=loss.detach() * 0 + 64)

    for _ in range(20):  # warm-up: the allocator, the pinned buffers, the first windows
        step()
    torch.cuda.synchronize()
    # GradScaler's own `found_inf` check is its sync, not lrtop's: measured here as the steps without run.step().
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(500):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = torch.nn.functional.mse_loss(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            run.step(loss=loss, grad_norm=loss.detach())
    finally:
        torch.cuda.set_sync_debug_mode(0)
    run.close()
    client.close()
    steps = [r for r in read_log(run.log_path) if r["type"] == "step"]
    assert len(steps) == 520 and all(math.isfinite(r["loss"]) for r in steps)


def test_a_tensor_lr_is_written_in_place_and_a_compiled_step_does_not_recompile(tmp_path):
    """`lr=torch.tensor(...)` with a compiled `optimizer.step`: `lr` commands change the tensor's value (fill_),
    never the object, so dynamo does not compile the step again (counted by dynamo's own frame counter)."""
    import torch._dynamo
    from torch._dynamo.testing import CompileCounter
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    lr = torch.tensor(0.01)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    counter = CompileCounter()
    compiled_step = torch.compile(opt.step, backend=counter)
    run = lrtop.attach(opt, model=model, name="tlr", log_dir=str(tmp_path), announce=False)
    x, y = torch.randn(16, 8), torch.randn(16, 1)
    used = []
    for i in range(12):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        compiled_step()
        assert opt.param_groups[0]["lr"] is lr  # the step ran with the same tensor, never a float
        used.append(float(lr))
        if i == 3:
            compiled_before = counter.frame_count  # SGD's first steps compile twice (no momentum buffer, then one)
            run.command("lr 0.002")
        if i == 6:
            run.command("lr *0.5")
        run.step(loss=loss)
    run.close()
    assert used[3] == pytest.approx(0.01) and used[4] == pytest.approx(0.002) and used[7] == pytest.approx(0.001)
    assert counter.frame_count == compiled_before, "a new LR recompiled the step"


def test_a_window_of_diverged_losses_trips_the_guard_once(tmp_path, monkeypatch):
    """Eight NaN losses arrive together (a window or two): one trip, one stop, not eight."""
    losses = [None] * 10 + [math.nan] * 8 + [None] * 4
    run, _, _ = train(tmp_path, "once", losses, monkeypatch, guard="stop", during=lambda run, i: time.sleep(0.02))
    guards = [r for r in read_log(run.log_path) if r["type"] == "event" and r["kind"] == "guard"]
    assert len(guards) == 1 and "loss is NaN at step 11" in guards[0]["message"]
