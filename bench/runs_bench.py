"""What following many live runs costs the viewer (issue #25: `lrtop runs`, `lrtop ls`; a benchmark, not a test).

    python bench/runs_bench.py [--lrtop .build/release/lrtop] [-n 50 200] [--torch 2] [--seconds 20]

For each N it starts N small live runs in a private runtime folder, then `lrtop bench --fleet` (the fleet: the data
side of the runs table, one poll(2) thread over every run's socket, read by a viewer ten times a second) and reads:
the time from its start to a snapshot with every run's status in it (the table's first full frame), the status
refreshes per run per second (median and slowest run), and its CPU as a share of one core.

The runs: `--torch` of them are python/examples/plain_loop.py (real PyTorch loops, bridged), the rest are mini runs,
each a process with the bridge's own server (python/lrtop/server.py: greeting, a status every 0.5 s with the
protocol-E figures, commands acknowledged at a 50 ms step boundary) and a counter for a training loop: a hundred
torch processes do not fit on a small machine, and the viewer cannot tell the difference. Prints one line per N with
the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

MINI_RUN = r'''
import os, sys, time
sys.path.insert(0, sys.argv[1])
from lrtop._version import PROTOCOL
from lrtop.server import ControlServer
name, log = sys.argv[2], sys.argv[3]
state = {"step": 0, "last": time.time(), "start": time.time()}
def status():
    step, now = state["step"], time.time()
    rate = step / max(1e-9, now - state["start"])
    return {"type": "status", "state": "running", "step": step, "epoch": 0, "total_steps": 1000000, "lr": [1e-3],
            "groups": ["all"], "hold": False, "override": False, "loss": 1.0 / (1 + 0.01 * step),
            "loss_trend": [1.0 / (1 + 0.01 * s) for s in range(0, step + 1, max(1, step // 24))][-24:],
            "steps_per_s": rate, "samples_per_s": rate * 64, "eta_s": (1000000 - step) / max(rate, 1e-9),
            "step_age": now - state["last"], "step_time": 0.05}
server = ControlServer({"type": "hello", "protocol": PROTOCOL, "run": name, "log": log, "pid": os.getpid(),
                        "framework": "plain", "world_size": 1}, status, on_malformed=lambda line: None)
while True:
    time.sleep(0.05)
    state["step"] += 1
    state["last"] = time.time()
    for r in server.poll():
        server.send(r.client, {"type": "ack", "id": r.id, "ok": True})
'''


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lrtop", default=os.path.join(ROOT, ".build/release/lrtop"))
    p.add_argument("-n", type=int, nargs="+", default=[50, 200])
    p.add_argument("--torch", type=int, default=2, help="real PyTorch loops among the runs")
    p.add_argument("--seconds", type=float, default=20)
    a = p.parse_args()
    for n in a.n:
        with tempfile.TemporaryDirectory(prefix="lrtop-runs-bench-") as tmp:
            env = dict(os.environ, XDG_RUNTIME_DIR=os.path.join(tmp, "rt"), XDG_STATE_HOME=os.path.join(tmp, "state"),
                       PYTHONPATH=os.path.join(ROOT, "python"), OMP_NUM_THREADS="1")
            os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
            procs = []
            try:
                torch = min(a.torch, n)
                for i in range(torch):
                    procs.append(subprocess.Popen(
                        [sys.executable, os.path.join(ROOT, "python/examples/plain_loop.py"), "--steps", "100000000",
                         "--step-delay", "0.05", "--name", f"torch-{i}", "--log-dir", os.path.join(tmp, "runs")],
                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                for i in range(n - torch):
                    procs.append(subprocess.Popen(
                        [sys.executable, "-c", MINI_RUN, os.path.join(ROOT, "python"), f"mini-{i}",
                         os.path.join(tmp, "runs", f"mini-{i}", "run.jsonl")],
                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                folder = os.path.join(env["XDG_RUNTIME_DIR"], f"lrtop-{os.getuid()}")
                deadline = time.time() + 600
                while time.time() < deadline:
                    socks = [f for f in os.listdir(folder) if f.endswith(".sock")] if os.path.isdir(folder) else []
                    if len(socks) >= n:
                        break
                    time.sleep(0.5)
                load_before = os.getloadavg()[0]
                out = subprocess.run([a.lrtop, "bench", "--fleet", str(a.seconds), "--fleet-expect", str(n), "--json"],
                                     env=env, capture_output=True, text=True, timeout=a.seconds + 120)
                r = json.loads(out.stdout)
                first = r["first_snapshot_s"]
                print(f"{n} runs ({torch} PyTorch): first full snapshot "
                      f"{'%.3f s' % first if first is not None else 'not within 60 s'}, refresh median "
                      f"{r['refresh_hz_median']:.2f} Hz (slowest run {r['refresh_hz_min']:.2f} Hz), viewer CPU "
                      f"{r['cpu_percent']:.2f}% of a core; load {load_before:.1f} -> {os.getloadavg()[0]:.1f} "
                      f"on {os.cpu_count()} cores", flush=True)
            finally:
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()


if __name__ == "__main__":
    main()
