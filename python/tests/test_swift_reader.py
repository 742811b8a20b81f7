"""The built Swift `lrtop` reads a log this package wrote, unchanged: `replay --summary` and `export`."""
import os
import subprocess
import sys

import pytest
import torch

import lrtop

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def lrtop_binary():
    for candidate in (os.environ.get("LRTOP_BIN"), os.path.join(ROOT, ".build", "release", "lrtop"),
                      os.path.join(ROOT, ".build", "debug", "lrtop")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no built lrtop binary (swift build -c release, or set LRTOP_BIN)")


def test_replay_summary_and_export_read_a_python_log(tmp_path):
    binary = lrtop_binary()
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD([{"params": [model.weight], "name": "w"}, {"params": [model.bias], "name": "b"}], lr=0.1)
    with lrtop.attach(opt, model=model, name="py", log_dir=str(tmp_path), total_steps=30, steps_per_epoch=10,
                      batch_size=8, guard="off", announce=False) as run:
        for i in range(30):
            x = torch.randn(8, 4)
            loss = model(x).pow(2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            if i == 10:
                run.command("lr *0.5")
            if i == 12:
                run.command("lr nope")
            run.step(loss=loss if i != 20 else torch.tensor(float("nan")))
        run.eval(val_loss=0.5, val_acc=0.8)
    log = str(tmp_path / "py" / "run.jsonl")
    out = subprocess.run([binary, "replay", "--summary", log], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "30" in out.stdout and "completed" in out.stdout and "+1 rejected" in out.stdout
    assert "skipped" not in out.stderr and "truncated" not in out.stderr
    assert "step 21: loss is NaN" in out.stderr, "the \"NaN\" string reads back as a NaN loss"
    csv = tmp_path / "run.csv"
    out = subprocess.run([binary, "export", log, "--to", "csv", str(csv)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("step,epoch,lr/w,lr/b,loss") and len(lines) == 31
    assert lines[12].split(",")[2] == "0.05", "the step after 'lr *0.5' trained at half the LR"


def test_the_swift_reader_takes_a_find_lr_subrun_this_package_wrote(tmp_path):
    binary = lrtop_binary()
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    with lrtop.attach(opt, model=model, name="fl", log_dir=str(tmp_path), announce=False) as run:
        run.command("find-lr steps=40")
        for _ in range(80):
            x = torch.randn(8, 4)
            loss = (model(x) - 3 * x.sum(1, keepdim=True)).pow(2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
            run.step(loss=loss)
    folder = run.last_find_lr.folder
    sub = str(tmp_path / "fl" / folder / "log.jsonl")
    out = subprocess.run([binary, "replay", "--summary", sub], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "skipped" not in out.stderr and "truncated" not in out.stderr and "error" not in out.stderr
    row = out.stdout.splitlines()[1]  # "log.jsonl  lrtop run log  35  196.5  ...  stopped"
    ended = "completed" if run.last_find_lr.stop == "completed" else "stopped"
    assert f"  {len(run.last_find_lr.lrs)}  " in row and row.rstrip().endswith(ended), out.stdout
    out = subprocess.run([binary, "replay", "--summary", str(tmp_path / "fl" / "run.jsonl")], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "completed" in out.stdout, out.stderr
