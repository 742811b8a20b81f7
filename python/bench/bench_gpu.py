"""The bridge on a GPU: throughput with and without `run.step()`, and no sync of lrtop's.

    python python/bench/bench_gpu.py [--steps 300] [--rounds 3] [--models resnet50,gpt2]

Two models on synthetic data: a ResNet-50 (batch 64, 224x224, bf16 autocast, SGD with momentum) and a GPT-2-small
sized transformer (transformers' GPT2LMHeadModel with the default config: 12 layers, 768 wide, 124M parameters;
batch 8 x 512 tokens, bf16 autocast, AdamW). Each round runs the plain loop, then the same loop with `run.step(loss=
loss, grad_norm=norm)` after every step, 300 steps each after 20 of warm-up, alternating; it prints the median
throughput of each and their ratio (the issue's goal: >= 0.995). In the hooked runs the optimizer's step (lrtop's
pre-hook) and `run.step()` run under `torch.cuda.set_sync_debug_mode("error")`: any sync of lrtop's raises there
(the model's own forward and backward are not ours and run outside it). A benchmark, not a test.
"""
import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lrtop  # noqa: E402


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


def resnet50(classes=1000):
    """ResNet-50 (He et al.: bottleneck stages of 3, 4, 6, 3 blocks), torchvision's layout, without torchvision."""
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
            cin = width * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def make_resnet(dev):
    model = resnet50().to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(64, 3, 224, 224, device=dev).to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (64,), device=dev)

    def loss_fn():
        return F.cross_entropy(model(x), y)
    return model, opt, loss_fn, 64


def make_gpt2(dev):
    from transformers import GPT2Config, GPT2LMHeadModel
    config = GPT2Config()
    model = GPT2LMHeadModel(config).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, fused=True)
    tokens = torch.randint(0, config.vocab_size, (8, 513), device=dev)

    def loss_fn():
        logits = model(input_ids=tokens[:, :-1]).logits
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), tokens[:, 1:].reshape(-1))
    return model, opt, loss_fn, 8 * 512


MODELS = {"resnet50": make_resnet, "gpt2": make_gpt2}


def timed(make, dev, steps, hooked, log_dir):
    """Samples (or tokens) per second over `steps` steps after 20 of warm-up."""
    torch.manual_seed(0)
    model, opt, loss_fn, per_step = make(dev)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10_000)
    run = lrtop.attach(opt, sched, model=model, log_dir=log_dir, announce=False) if hooked else None

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if run is None:
            opt.step()
            sched.step()
            return
        torch.cuda.set_sync_debug_mode("error")  # lrtop's part: the optimizer's pre-hook, the routed schedule,
        try:                                      # run.step()
            opt.step()
            sched.step()
            run.step(loss=loss, grad_norm=norm)
        finally:
            torch.cuda.set_sync_debug_mode(0)

    for _ in range(20):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if run is not None:
        run.close()
    del model, opt
    torch.cuda.empty_cache()
    return steps * per_step / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="resnet50,gpt2")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu.py: no CUDA device here; run it on a machine with a GPU", file=sys.stderr)
        sys.exit(2)
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    print(f"{torch.cuda.get_device_name(dev)}, torch {torch.__version__}, "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {a.steps} steps x {a.rounds} rounds")
    with tempfile.TemporaryDirectory() as d:
        for name in a.models.split(","):
            make = MODELS[name]
            plain, hooked = [], []
            for _ in range(a.rounds):
                plain.append(timed(make, dev, a.steps, False, d))
                hooked.append(timed(make, dev, a.steps, True, d))
            p, h = statistics.median(plain), statistics.median(hooked)
            unit = "images/s" if name == "resnet50" else "tokens/s"
            print(f"  {name:9s} plain {p:10.1f} {unit}, with run.step() {h:10.1f} {unit}: ratio {h / p:.4f} "
                  f"(rounds: {', '.join(f'{y / x:.4f}' for x, y in zip(plain, hooked))}); sync debug mode clean")


if __name__ == "__main__":
    main()
