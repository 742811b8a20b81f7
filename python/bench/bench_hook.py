"""The hook's cost per step: a small MLP (784-256-10, batch 128, SGD) trained with and without `run.step()`,
alternating runs so machine load hits both alike; then the DDP exchange (2 gloo ranks) per step.

    python python/bench/bench_hook.py [--steps 300] [--rounds 5] [--ddp-iters 2000]

A benchmark, not a test: it prints medians; on a shared machine, repeat it.
"""
import argparse
import os
import socket
import statistics
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lrtop  # noqa: E402


def make():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10_000)
    return model, opt, sched


def loop(steps, with_run, viewer, log_dir):
    model, opt, sched = make()
    x, y = torch.randn(128, 784), torch.randint(0, 10, (128,))
    run = lrtop.attach(opt, sched, model=model, log_dir=log_dir, announce=False, batch_size=128) if with_run else None
    client = None
    if run is not None and viewer:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(run.server.path)
        client.setblocking(False)
    for _ in range(20):  # warm-up
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    inside = cpu = 0.0
    t0, p0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        if run is not None:
            t1, c1 = time.perf_counter(), time.thread_time()
            run.step(loss=loss)
            inside += time.perf_counter() - t1
            cpu += time.thread_time() - c1
            if client is not None:
                try:
                    while client.recv(65536):
                        pass
                except BlockingIOError:
                    pass
    dt = (time.perf_counter() - t0) / steps
    process_cpu = (time.process_time() - p0) / steps  # every thread: the loop, the service thread's flush and shadow
    if run is not None:
        run.close()
    if client is not None:
        client.close()
    return dt, inside / steps, cpu / steps, process_cpu


def ddp_worker(rank, world, port, iters, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from lrtop.distributed import CommandChannel
    ch = CommandChannel(True)
    for _ in range(100):
        ch.exchange([])
    t0 = time.perf_counter()
    for _ in range(iters):
        ch.exchange([])
    idle = (time.perf_counter() - t0) / iters
    recs = [{"text": "lr 1e-4", "origin": "socket", "reason": None}] if rank == 0 else []
    t0 = time.perf_counter()
    for _ in range(iters // 4):
        ch.exchange(recs)
    busy = (time.perf_counter() - t0) / (iters // 4)
    if rank == 0:
        with open(out, "w") as f:
            f.write(f"{idle} {busy}")
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ddp-iters", type=int, default=2000)
    a = ap.parse_args()
    torch.set_num_threads(1)
    base, hooked, viewed, in_h, in_v, cpu_h, cpu_v, pcpu_b, pcpu_h = [], [], [], [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(a.rounds):
            dt, _, _, pcpu = loop(a.steps, False, False, d)
            base.append(dt); pcpu_b.append(pcpu)
            dt, inside, cpu, pcpu = loop(a.steps, True, False, d)
            hooked.append(dt); in_h.append(inside); cpu_h.append(cpu); pcpu_h.append(pcpu)
            dt, inside, cpu, _ = loop(a.steps, True, True, d)
            viewed.append(dt); in_v.append(inside); cpu_v.append(cpu)
    b, h, v, ih, iv, ch, cv, pb, ph = (statistics.median(x) for x in
                                       (base, hooked, viewed, in_h, in_v, cpu_h, cpu_v, pcpu_b, pcpu_h))
    # Each round's hooked run against the plain run just before it: the pairing cancels slow drifts in load.
    paired = statistics.median(x - y for x, y in zip(pcpu_h, pcpu_b))
    print(f"MLP 784-256-10, batch 128, 1 thread, {a.steps} steps x {a.rounds} rounds (medians)")
    print(f"  plain step              {b * 1e3:8.3f} ms")
    print(f"  step with run.step()    {h * 1e3:8.3f} ms   (difference {100 * (h - b) / b:+5.2f}%, load-sensitive)")
    print(f"  process CPU per step, every thread: plain {pb * 1e3:.3f} ms, hooked {ph * 1e3:.3f} ms; "
          f"paired difference {paired * 1e6:+.1f} us = {100 * paired / b:+5.2f}% of the plain step "
          f"(the whole hook: run.step, the optimizer hooks, the routed scheduler step, the service thread)")
    print(f"  inside run.step(), no viewer:  wall {ih * 1e6:7.1f} us = {100 * ih / b:5.2f}%, "
          f"CPU {ch * 1e6:6.1f} us = {100 * ch / b:5.2f}% of the plain step")
    print(f"  inside run.step(), a viewer:   wall {iv * 1e6:7.1f} us = {100 * iv / b:5.2f}%, "
          f"CPU {cv * 1e6:6.1f} us = {100 * cv / b:5.2f}% of the plain step (status every 0.5 s)")
    print(f"  (plus the optimizer pre/post hooks: one list of group LRs per step)")
    if a.ddp_iters:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with tempfile.NamedTemporaryFile() as f:
            mp.spawn(ddp_worker, args=(2, port, a.ddp_iters, f.name), nprocs=2, join=True)
            idle, busy = (float(x) for x in open(f.name).read().split())
        print(f"DDP exchange, 2 gloo ranks on this machine: {idle * 1e6:.1f} us/step with nothing pending, "
              f"{busy * 1e6:.1f} us/step with a command")


if __name__ == "__main__":
    main()
