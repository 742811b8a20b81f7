#!/usr/bin/env python3
"""PyTorch twin of lrtop's `convnet` (width 16, 1x28x28, batch 128, AdamW lr 1e-3 wd 1e-2): ms per training step.

Same method as ../shared/reference/torch_convnet_bench.py (random batch, 5 warm-up steps, then STEPS timed steps),
with the twin of bench/twins.py (the model parity.py holds against lrtop) and the best of --repeats.
  THREADS=2 python bench/torch_convnet_bench.py [STEPS] [--repeats 3]
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twins  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("steps", type=int, nargs="?", default=30)
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--batch", type=int, default=128)
a = p.parse_args()
torch.set_num_threads(int(os.environ.get("THREADS", "2")))
torch.manual_seed(0)
model = twins.ConvNet()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
x = torch.rand(a.batch, 1, 28, 28)
y = torch.randint(0, 10, (a.batch,))


def step():
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()


for _ in range(5):
    step()
best = float("inf")
for _ in range(max(1, a.repeats)):
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    best = min(best, (time.perf_counter() - t) / a.steps)
print(json.dumps({"impl": f"torch {torch.__version__}", "model": "convnet16", "batch": a.batch,
                  "threads": torch.get_num_threads(), "ms_per_step": 1000 * best,
                  "samples_per_s": a.batch / best}))
