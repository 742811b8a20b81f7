#!/usr/bin/env python3
"""lrtop's trainer held against PyTorch, step for step, from the same weights and the same batches.

For each configuration, lrtop trains first and writes what PyTorch needs:
  lrtop export-weights --initial ...    the initial weights, as the twin's state_dict (safetensors)
  lrtop train --dump-batch-order FILE   the exact sample order of every epoch (JSON Lines)
  lrtop train --trace-params FILE       each step's loss and every parameter's L2 norm
Then the PyTorch twin (bench/twins.py) loads those weights, trains on those batches with the same optimizer and
scheduler, and the two are compared step by step: the loss (relative difference) and every parameter's norm.

  parity.py steps   [--model mlp] [--optimizers sgd,adamw,lamb] [--steps 200] [--tolerance 1e-4]
  parity.py compare [--model mlp] [--epochs 15] [--seeds 0] [--only AdamW]   the four `lrtop compare` runs

Exit status 1 when a target is missed (steps: a loss beyond --tolerance; compare: accuracies beyond --accuracy-gap
points). LAMB needs timm's Lamb (pip install --no-deps timm==1.0.31; its torchvision import is bypassed).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twins  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = 128


def lrtop_binary():
    """The release binary `swift build -c release` made (LRTOP_BIN overrides)."""
    if os.environ.get("LRTOP_BIN"):
        return os.environ["LRTOP_BIN"]
    out = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    path = os.path.join(out, "lrtop")
    if not os.path.exists(path):
        raise SystemExit(f"parity: {path} does not exist: run 'swift build -c release' first")
    return path


# name -> (lrtop options, PyTorch optimizer factory)
OPTIMIZERS = {
    "sgd": (["--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9", "--weight-decay", "1e-4"],
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4)),
    "adamw": (["--optimizer", "adamw", "--lr", "1e-3", "--weight-decay", "1e-2"],
              lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=1e-2)),
    "lamb": (["--optimizer", "lamb:trust_clip=true", "--lr", "1e-3", "--weight-decay", "1e-2"],
             lambda p: twins.timm_lamb()(p, lr=1e-3, weight_decay=1e-2, trust_clip=True)),
}


def compare_configs(steps_per_epoch, epochs):
    """`lrtop compare`'s four configurations (Sources/lrtop/CompareCommand.swift) and their PyTorch schedulers."""
    total, third, warm = steps_per_epoch * epochs, max(1, epochs // 3) * steps_per_epoch, steps_per_epoch
    lrs = torch.optim.lr_scheduler
    return {
        "SGD + StepLR": ("sgd", f"step:step_size={third},gamma=0.1", lambda o: lrs.StepLR(o, step_size=third, gamma=0.1)),
        "AdamW": ("adamw", "constant", lambda o: None),
        "AdamW + Cosine": ("adamw", f"cosine:T_max={total}", lambda o: lrs.CosineAnnealingLR(o, T_max=total)),
        "LAMB + Warmup + Cosine": (
            "lamb", f"linear:start_factor={1.0 / warm!r},total_iters={warm - 1} -> @{warm} cosine:T_max={max(1, total - warm)}",
            lambda o: lrs.SequentialLR(o, [lrs.LinearLR(o, start_factor=1.0 / warm, total_iters=warm - 1),
                                           lrs.CosineAnnealingLR(o, T_max=total - warm)], milestones=[warm])),
    }


def run_lrtop(binary, workdir, model, seed, optimizer, scheduler, epochs, max_steps=None, threads=2):
    """Trains with lrtop; returns (initial weights path, batch order, trace, evaluations)."""
    os.makedirs(workdir, exist_ok=True)
    common = ["--model", model, "--seed", str(seed), "--batch-size", str(BATCH), "--epochs", str(epochs),
              "--threads", str(threads)]
    if max_steps:
        common += ["--max-steps", str(max_steps)]
    init = os.path.join(workdir, "init.safetensors")
    order_path = os.path.join(workdir, "order.jsonl")
    trace_path = os.path.join(workdir, "trace.jsonl")
    subprocess.run([binary, "export-weights", "--initial", "--model", model, "--seed", str(seed), init],
                   check=True, capture_output=True)
    subprocess.run([binary, "train", "--headless", *common, "--dump-batch-order", order_path], check=True, capture_output=True)
    subprocess.run([binary, "train", "--headless", *common, *OPTIMIZERS[optimizer][0], "--scheduler", scheduler,
                    "--guard-factor", "0", "--run-dir", os.path.join(workdir, "run"), "--trace-params", trace_path],
                   check=True, capture_output=True)
    with open(order_path) as f:
        header = json.loads(f.readline())
        order = [json.loads(line) for line in f]
    with open(trace_path) as f:
        names = json.loads(f.readline())["names"]
        trace = [json.loads(line) for line in f]
    evals = []
    with open(os.path.join(workdir, "run", "run.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r.get("type") == "eval":
                evals.append((r["step"], r["accuracy"]))
    return init, header, order, names, trace, evals


def evaluate(model, x, y, chunk=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], chunk):
            correct += (model(x[i:i + chunk]).argmax(1) == y[i:i + chunk]).sum().item()
    model.train()
    return correct / x.shape[0]


def run_torch(model_name, init, header, order, names, optimizer, make_scheduler, steps, data, eval_at_epochs=True):
    """Trains the twin; returns (losses, norms per step, evaluations at epoch ends)."""
    xtr, ytr, xte, yte = data
    model = twins.make(model_name)
    model.load_state_dict(load_file(init))
    params = dict(model.named_parameters())
    tracked = [params[n] for n in names]
    opt = OPTIMIZERS[optimizer][1](model.parameters())
    sched = make_scheduler(opt)
    spe = header["steps_per_epoch"]
    losses, norms, evals = [], [], []
    model.train()
    for step in range(steps):
        epoch, k = divmod(step, spe)
        idx = torch.tensor(order[epoch][k * BATCH:(k + 1) * BATCH])
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
        with torch.no_grad():
            norms.append([p.detach().double().norm().item() for p in tracked])
        if eval_at_epochs and (step + 1) % spe == 0:
            evals.append((step + 1, evaluate(model, xte, yte, 500 if model_name == "convnet" else 1000)))
    return losses, norms, evals


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def steps_mode(a, binary, data):
    failed = False
    report = {}
    spe = data[0].shape[0] // BATCH
    for opt in a.optimizers.split(","):
        with tempfile.TemporaryDirectory(prefix="lrtop-parity-") as tmp:
            t0 = time.time()
            init, header, order, names, trace, _ = run_lrtop(binary, tmp, a.model, a.seed, opt, "constant",
                                                             epochs=math.ceil(a.steps / spe), max_steps=a.steps,
                                                             threads=a.threads)
            t1 = time.time()
            losses, norms, _ = run_torch(a.model, init, header, order, names, opt, lambda o: None, a.steps, data,
                                         eval_at_epochs=False)
            t2 = time.time()
        loss_gap = [rel(t["loss"], l) for t, l in zip(trace, losses)]
        norm_gap = [max(rel(x, y) for x, y in zip(t["norms"], n)) for t, n in zip(trace, norms)]
        marks = [s for s in (1, 10, 25, 50, 100, 200, 500, 1000) if s <= a.steps]
        ok = max(loss_gap) <= a.tolerance
        failed |= not ok
        report[opt] = {"steps": a.steps, "max_loss_rel": max(loss_gap), "max_norm_rel": max(norm_gap),
                       "loss_rel_at": {s: loss_gap[s - 1] for s in marks},
                       "norm_rel_at": {s: norm_gap[s - 1] for s in marks},
                       "first_loss": [trace[0]["loss"], losses[0]], "last_loss": [trace[-1]["loss"], losses[-1]],
                       "seconds": {"lrtop": round(t1 - t0, 1), "torch": round(t2 - t1, 1)}, "pass": ok}
        print(f"{a.model} {opt:5s} {a.steps} steps: max |Δloss|/loss {max(loss_gap):.2e}, max |Δ‖θ‖|/‖θ‖ {max(norm_gap):.2e}"
              f"  [{'ok' if ok else 'FAIL'} at {a.tolerance:g}]", flush=True)
        print("    loss gap at step " + ", ".join(f"{s}: {loss_gap[s - 1]:.1e}" for s in marks), flush=True)
        print("    norm gap at step " + ", ".join(f"{s}: {norm_gap[s - 1]:.1e}" for s in marks), flush=True)
    return failed, report


def compare_mode(a, binary, data):
    failed = False
    spe = data[0].shape[0] // BATCH
    configs = compare_configs(spe, a.epochs)
    report = {}
    wanted = [k.strip().lower() for k in a.only.split(",")] if a.only else None
    for name, (opt, lrtop_schedule, torch_schedule) in configs.items():
        if wanted and name.lower() not in wanted:
            continue
        for seed in [int(s) for s in a.seeds.split(",")]:
            with tempfile.TemporaryDirectory(prefix="lrtop-parity-") as tmp:
                init, header, order, names, trace, lrtop_evals = run_lrtop(binary, tmp, a.model, seed, opt,
                                                                           lrtop_schedule, epochs=a.epochs,
                                                                           threads=a.threads)
                losses, _, torch_evals = run_torch(a.model, init, header, order, names, opt, torch_schedule,
                                                   spe * a.epochs, data)
            epoch_ends = [acc for step, acc in lrtop_evals if step % spe == 0]
            gap = 100 * (epoch_ends[-1] - torch_evals[-1][1])
            ok = abs(gap) <= a.accuracy_gap
            failed |= not ok
            loss_gap = [rel(t["loss"], l) for t, l in zip(trace, losses)]
            report[f"{name} seed {seed}"] = {
                "lrtop_acc": epoch_ends[-1], "torch_acc": torch_evals[-1][1], "gap_points": gap,
                "lrtop_acc_per_epoch": epoch_ends, "torch_acc_per_epoch": [acc for _, acc in torch_evals],
                "max_loss_rel_first_200": max(loss_gap[:200]), "pass": ok}
            print(f"{name:24s} seed {seed}: lrtop {100 * epoch_ends[-1]:.2f}%  torch {100 * torch_evals[-1][1]:.2f}%  "
                  f"gap {gap:+.2f} points  (first 200 losses within {max(loss_gap[:200]):.1e})"
                  f"  [{'ok' if ok else 'FAIL'} at {a.accuracy_gap:g}]", flush=True)
    return failed, report


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["steps", "compare"])
    p.add_argument("--model", default="mlp", choices=["mlp", "convnet"])
    p.add_argument("--optimizers", default="sgd,adamw,lamb")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--tolerance", type=float, default=1e-4, help="steps: largest relative loss difference allowed")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seeds", default="0")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", help="compare: only these configurations, by name (comma separated), e.g. 'AdamW'")
    p.add_argument("--accuracy-gap", type=float, default=0.2, help="compare: largest accuracy gap allowed, in points")
    p.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", "2")),
                   help="threads for both (1 on a loaded machine: thread barriers stall when cores are oversubscribed)")
    p.add_argument("--json", help="also write the figures to this file")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    binary = lrtop_binary()
    data = twins.fashion_mnist()
    failed, report = (steps_mode if a.mode == "steps" else compare_mode)(a, binary, data)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"torch": torch.__version__, "mode": a.mode, "model": a.model, "results": report}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
