#!/usr/bin/env python3
"""lrtop's convnet step against its PyTorch twin's, measured in the same run, alternating.

  python bench/convnet_speed.py [--rounds 5] [--steps 30]

Each round runs `lrtop bench --model convnet` (batch 128, AdamW) and then bench/torch_convnet_bench.py, so both see
the same machine load; each reports the best of 3 repeats. Prints every round, the best and the median of each, and
the load average before and after (other processes on the machine slow both).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from parity import lrtop_binary  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    lrtop = lrtop_binary()
    env = dict(os.environ, THREADS=str(a.threads))
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    mine, theirs = [], []
    for r in range(a.rounds):
        out = subprocess.run([lrtop, "bench", "--model", "convnet", "--steps", str(a.steps), "--warmup", "5",
                              "--repeats", "3", "--threads", str(a.threads), "--json"],
                             check=True, capture_output=True, text=True).stdout
        mine.append(json.loads(out)["ms_per_step"])
        out = subprocess.run([sys.executable, os.path.join(HERE, "torch_convnet_bench.py"), str(a.steps)],
                             check=True, capture_output=True, text=True, env=env).stdout
        theirs.append(json.loads(out)["ms_per_step"])
        print(f"round {r + 1}: lrtop {mine[-1]:.1f} ms/step   torch {theirs[-1]:.1f} ms/step", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"lrtop: best {min(mine):.1f} ms/step, median {statistics.median(mine):.1f}")
    print(f"torch: best {min(theirs):.1f} ms/step, median {statistics.median(theirs):.1f}")
    print(json.dumps({"lrtop_ms": mine, "torch_ms": theirs, "threads": a.threads}))


if __name__ == "__main__":
    main()
