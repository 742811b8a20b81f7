#!/usr/bin/env python3
"""lrtop's convnet step against its PyTorch twin's, measured in the same run, alternating.

  python bench/convnet_speed.py [--rounds 5] [--steps 30] [--threads 2] [--baseline OLD_LRTOP] [--quiet-below 1.5]

Each round runs `lrtop bench --model convnet` (batch 128, AdamW), then the --baseline binary if given (an lrtop
built from an earlier commit: before/after in the same run), then bench/torch_convnet_bench.py, so all see the
same machine load; each reports the best of 3 repeats. Prints every round with the 1-minute load average at its
start (other processes on the machine slow every side; --quiet-below waits, up to --wait seconds, for the load to
drop below that before each round), then the best and the median of each.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from parity import lrtop_binary  # noqa: E402


def lrtop_ms(binary, steps, threads):
    out = subprocess.run([binary, "bench", "--model", "convnet", "--steps", str(steps), "--warmup", "5",
                          "--repeats", "3", "--threads", str(threads), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["ms_per_step"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--baseline", help="another lrtop binary to alternate with (e.g. built from main)")
    p.add_argument("--quiet-below", type=float, help="wait for the 1-minute load average to drop below this")
    p.add_argument("--wait", type=float, default=600, help="the longest wait for a quiet machine, seconds")
    a = p.parse_args()
    lrtop = lrtop_binary()
    env = dict(os.environ, THREADS=str(a.threads))
    results = {"lrtop": [], "baseline": [], "torch": [], "load": []}
    for r in range(a.rounds):
        if a.quiet_below:
            deadline = time.time() + a.wait
            while os.getloadavg()[0] >= a.quiet_below and time.time() < deadline:
                time.sleep(5)
        load = os.getloadavg()[0]
        results["load"].append(load)
        results["lrtop"].append(lrtop_ms(lrtop, a.steps, a.threads))
        line = f"round {r + 1} (load {load:.2f}): lrtop {results['lrtop'][-1]:.1f} ms/step"
        if a.baseline:
            results["baseline"].append(lrtop_ms(a.baseline, a.steps, a.threads))
            line += f"   baseline {results['baseline'][-1]:.1f} ms/step"
        out = subprocess.run([sys.executable, os.path.join(HERE, "torch_convnet_bench.py"), str(a.steps)],
                             check=True, capture_output=True, text=True, env=env).stdout
        results["torch"].append(json.loads(out)["ms_per_step"])
        print(line + f"   torch {results['torch'][-1]:.1f} ms/step", flush=True)
    for name in ("lrtop", "baseline", "torch"):
        if results[name]:
            print(f"{name}: best {min(results[name]):.1f} ms/step, median {statistics.median(results[name]):.1f}")
    print(json.dumps(dict(results, threads=a.threads)))


if __name__ == "__main__":
    main()
