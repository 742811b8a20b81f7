"""How soon a viewer has a record: from `run.step()` returning to the record being in `lrtop attach`'s model
(docs/bridge.md "Records, pushed"). A loop here trains a small MLP at a set pace and notes, for every step, the time
`run.step()` returned; `lrtop attach --headless --json` (a separate process, attached once the run is going) prints
each record with the time it reached its model. Both clocks are this machine's wall clock.

    python python/bench/bench_push.py [--lrtop PATH] [--steps 1500] [--rate 100] [--metrics 20]

A benchmark, not a test: it prints the latency's percentiles (records that came pushed; the history read from the
log at attach, and the steps taken before the viewer's first record, are left out) and the machine's load; on a shared machine, repeat it.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lrtop  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def find_lrtop(given):
    for path in [given, os.path.join(ROOT, ".build/release/lrtop"), os.path.join(ROOT, ".build/debug/lrtop"),
                 shutil.which("lrtop")]:
        if path and os.access(path, os.X_OK):
            return path
    sys.exit("bench_push: no lrtop binary (build it, or pass --lrtop PATH)")


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lrtop")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--rate", type=float, default=100.0, help="steps a second the loop is paced to")
    ap.add_argument("--metrics", type=int, default=20, help="metrics of its own per step (tensors)")
    args = ap.parse_args()
    binary = find_lrtop(args.lrtop)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(128, 784), torch.randint(0, 10, (128,))
    folder = tempfile.mkdtemp(prefix="bench-push-")
    run = lrtop.attach(opt, model=model, log_dir=folder, name="push", announce=False, batch_size=128)
    returned = {}
    viewer = None
    lines = []
    period = 1.0 / args.rate
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        metrics = {f"m/{k}": loss.detach() * k for k in range(args.metrics)}
        run.step(loss=loss, **metrics)
        returned[step] = time.time()
        if step == 50:  # attached once the run is going: the history comes from the log, the rest pushed
            viewer = subprocess.Popen([binary, "attach", run.run_dir, "--headless", "--json"], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL)
            reader = threading.Thread(target=lambda: lines.extend(viewer.stdout), daemon=True)
            reader.start()
        wait = start + step * period - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    took = time.perf_counter() - start
    run.close()
    viewer.wait(timeout=60)
    reader.join(timeout=10)
    load = os.getloadavg()
    latencies, via = [], {"push": 0, "log": 0}
    arrivals = [json.loads(raw) for raw in lines]
    # Only steps taken once the viewer was there: those made before it started came in its first burst.
    joined = arrivals[0]["received"]
    for a in arrivals:
        via[a["via"]] += 1
        r = a["record"]
        if a["via"] == "push" and r["type"] == "step" and returned[r["step"]] > joined:
            latencies.append(a["received"] - returned[r["step"]])
    shutil.rmtree(folder, ignore_errors=True)
    ms = [1000 * t for t in latencies]
    print(f"{args.steps} steps paced to {args.rate:g}/s (the loop made {args.steps / took:.0f}/s) with {args.metrics} metrics; {via['log']} records read from the log "
          f"at attach, {via['push']} pushed; load average {load[0]:.1f} {load[1]:.1f} on {os.cpu_count()} cores")
    if os.environ.get("BENCH_PUSH_TRACE"):
        tenth = max(1, len(ms) // 10)
        print("by tenth of the run, p50 ms:", [round(statistics.median(ms[i:i + tenth]), 1) for i in range(0, len(ms), tenth)])
    print(f"run.step() returned -> record in the viewer's model, ms: p50 {statistics.median(ms):.1f}  "
          f"p95 {percentile(ms, 95):.1f}  p99 {percentile(ms, 99):.1f}  max {max(ms):.1f}  (n={len(ms)})")


if __name__ == "__main__":
    main()
