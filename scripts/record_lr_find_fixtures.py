#!/usr/bin/env python3
"""Records LR range-test curves and the suggestions fastai and PyTorch Lightning make for them into
spec/lr_find_curves.json, which the Swift tests (Tests/LRLogTests/LRSuggestionFixtureTests.swift) and the Python
package's tests read. Tests never need fastai: only this script does.

Each curve is swept as fastai's LRFinder sweeps (lr_i = start * (end/start)**(i/num_it), the LRs from fastai's own
SchedExp), its raw losses smoothed by fastai's own AvgSmoothLoss (beta 0.98, debiased) and cut where fastai's
stop_div would stop (smoothed loss > 4x its minimum) or at a non-finite loss. The suggestions are what
`Learner.lr_find(suggest_funcs=...)` returns for that recorder (fastai's slicing [num_it//10:-5] and NaN cut
included), one function at a time (null where fastai raises: a curve too short for it), and what Lightning's
`_LRFinder.suggestion()` returns for the same curve.

Run it with a Python that has fastai and pytorch_lightning:
    python3 -m venv /root/.cache/lrtop/fastai-venv
    echo /root/.cache/lrtop/venv/lib/python3.11/site-packages > \
        /root/.cache/lrtop/fastai-venv/lib/python3.11/site-packages/zz_lrtop_venv.pth   # reuse torch + lightning
    /root/.cache/lrtop/fastai-venv/bin/pip install fastai matplotlib pandas scipy scikit-learn requests plum-dispatch
    /root/.cache/lrtop/fastai-venv/bin/python scripts/record_lr_find_fixtures.py
"""
import contextlib
import json
import math
import pathlib
import types
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import fastai  # noqa: E402
from fastai.callback.schedule import SchedExp, minimum, slide, steep, valley  # noqa: E402
from fastai.learner import AvgSmoothLoss, Learner  # noqa: E402
import pytorch_lightning  # noqa: E402
from pytorch_lightning.tuner.lr_finder import _LRFinder  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "spec" / "lr_find_curves.json"


def sweep(raw_loss, start=1e-7, end=10.0, num_it=100, stop_div=True):
    """Runs fastai's recording rules over raw_loss(lr, i); returns lrs, raw, smoothed losses and why it stopped."""
    sched = SchedExp(start, end)
    smoother = AvgSmoothLoss()
    smoother.reset()
    lrs, raws, smoothed = [], [], []
    best = math.inf
    stop = "completed"
    for i in range(num_it):
        lr = float(sched(i / num_it))
        loss = float(raw_loss(lr, i))
        smoother.accumulate(types.SimpleNamespace(loss=torch.tensor(loss)))
        s = float(smoother.value)
        lrs.append(lr)
        raws.append(loss)
        smoothed.append(s)
        if not math.isfinite(loss) or not math.isfinite(s):
            stop = "non_finite"
            break
        best = min(best, s)
        if stop_div and s > 4 * best:
            stop = "diverged"
            break
    return lrs, raws, smoothed, stop


class _Recorded:
    """Just enough of a Learner for fastai's own `Learner.lr_find` to post-process a recorded curve."""

    def __init__(self, lrs, losses):
        self.dls = types.SimpleNamespace(train=range(1000))
        self.recorder = types.SimpleNamespace(lrs=list(lrs), losses=[torch.tensor(v) for v in losses])

    def no_logging(self):
        return contextlib.nullcontext()

    def fit(self, n_epoch, cbs=None):
        pass  # the recorder already holds the curve


def fastai_suggestions(lrs, losses, num_it):
    out = {}
    for name, func in [("valley", valley), ("steep", steep), ("minimum", minimum), ("slide", slide)]:
        try:
            (value,) = Learner.lr_find(_Recorded(lrs, losses), num_it=num_it, show_plot=False, suggest_funcs=(func,))
            out[name] = float(value)
        except (IndexError, RuntimeError, ValueError):
            out[name] = None
    return out


def lightning_suggestion(lrs, losses, start, end, num_it):
    finder = _LRFinder("exponential", start, end, num_it)
    finder.results = {"lr": list(lrs), "loss": list(losses)}
    with contextlib.redirect_stderr(None):
        return finder.suggestion()


def curves():
    rng = np.random.default_rng(14)

    def bowl(floor=0.35, top=2.3, best=3e-3, width=1.2, blow=3.0):
        """A classic range-test shape: flat at `top`, down to `floor` near `best`, then up steeply."""
        def f(lr, i):
            x = math.log10(lr) - math.log10(best)
            descent = floor + (top - floor) / (1 + math.exp(2.5 * (x + 2 * width)))
            return descent + (blow * 10 ** (1.5 * x) if x > 0 else 0.0)
        return f

    def noisy(f, sigma, seed):
        r = np.random.default_rng(seed)
        return lambda lr, i: f(lr, i) * float(1 + sigma * r.standard_normal())

    yield "smooth bowl", bowl(), {}
    yield "gentle rise at the end (whole sweep)", bowl(blow=0.002), {}
    yield "bowl, early stopped by 4x rule", bowl(blow=40.0), {}
    yield "noisy bowl (5%)", noisy(bowl(), 0.05, 1), {}
    yield "very noisy bowl (20%)", noisy(bowl(), 0.20, 2), {}
    yield "noisy, early stopped", noisy(bowl(best=1e-2, blow=60.0), 0.08, 3), {}
    yield "nearly flat", noisy(lambda lr, i: 1.0, 1e-3, 4), {}
    yield "monotone decreasing (narrow range)", lambda lr, i: 2.0 / (1 + 1e4 * lr), {"start": 1e-6, "end": 1e-3}
    yield "diverges to NaN", lambda lr, i: bowl()(lr, i) if lr < 1e-3 else float("nan"), {}
    yield "two valleys", lambda lr, i: (1.5 - 0.4 * math.exp(-(math.log10(lr) + 5) ** 2)
                                        - 0.9 * math.exp(-(math.log10(lr) + 2.5) ** 2 / 0.5)
                                        + (5 * lr if lr > 0.1 else 0)), {}
    yield "short: stops after 12 steps", lambda lr, i: 1.0 if i < 11 else 100.0, {}
    yield "short: 20 steps planned", noisy(bowl(best=1e-2), 0.03, 5), {"num_it": 20, "start": 1e-5, "end": 1.0}
    yield "200 steps, 1e-5 to 1", noisy(bowl(best=2e-2, blow=8.0), 0.04, 6), {"num_it": 200, "start": 1e-5, "end": 1.0}
    yield "50 steps", noisy(bowl(best=1e-3), 0.02, 7), {"num_it": 50}
    yield "rising from the start", lambda lr, i: 0.5 + 0.01 * i, {}
    # A real curve: Fashion-MNIST MLP losses as lrtop's find-lr recorded them (raw), replayed through the rules.
    real = pathlib.Path(__file__).resolve().parent / "lr_find_fashion_mnist_raw.json"
    if real.exists():
        data = json.loads(real.read_text())
        raw = data["raw_losses"]
        yield "Fashion-MNIST MLP (recorded by lrtop)", (lambda lr, i: raw[i] if i < len(raw) else 1e9), {}
    _ = rng


def main():
    records = []
    for name, f, kw in curves():
        start, end, num_it = kw.get("start", 1e-7), kw.get("end", 10.0), kw.get("num_it", 100)
        lrs, raws, smoothed, stop = sweep(f, start, end, num_it)
        # The suggestions see the losses as float32 (tensor()), so record exactly those values.
        losses32 = [float(np.float32(v)) for v in smoothed]
        records.append({
            "name": name,
            "start": start, "end": end, "num_it": num_it,
            "stop": stop,
            "lrs": lrs,
            "raw_losses": [v if math.isfinite(v) else None for v in raws],
            "losses": [v if math.isfinite(v) else None for v in losses32],
            "fastai": fastai_suggestions(lrs, losses32, num_it),
            "lightning": lightning_suggestion(lrs, losses32, start, end, num_it),
        })
    doc = {
        "_comment": [
            "LR range-test curves and the suggestions of fastai and PyTorch Lightning for them, recorded by",
            "scripts/record_lr_find_fixtures.py (do not edit by hand). lrs: fastai's SchedExp LRs; raw_losses: each step's",
            "loss; losses: fastai's AvgSmoothLoss (beta 0.98, debiased) of them as float32, cut by stop_div (> 4x min) or a",
            "non-finite loss (null = NaN); fastai: Learner.lr_find's result per suggestion function (null where fastai",
            "raises); lightning: _LRFinder.suggestion() (skip 10 first, 1 last)."
        ],
        "version": 1,
        "fastai_version": fastai.__version__,
        "lightning_version": pytorch_lightning.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "curves": records,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(records)} curves -> {OUT}")
    for r in records:
        print(f"  {r['name']:<40} {len(r['lrs']):>3} pts {r['stop']:<10} fastai {r['fastai']} lightning {r['lightning']}")


if __name__ == "__main__":
    main()
