"""The hook's cost per step: a small MLP (784-256-10, batch 128, SGD) trained with and without `run.step()`,
alternating runs so machine load hits both alike; then the DDP exchange (2 gloo ranks): one exchange at every step
(as before #23) and one every K steps (now), amortised per step.

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
    """One run; CPU seconds per step of each part the hook touches (the main thread's, by `thread_time`) and of
    the other threads (the socket's service thread: the log's encoding and flush, the shadow schedule)."""
    model, opt, sched = make()
    x, y = torch.randn(128, 784), torch.randint(0, 10, (128,))
    run = lrtop.attach(opt, sched, model=model, log_dir=log_dir, announce=False, batch_size=128) if with_run else None
    client = None
    if run is not None and viewer:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(run.socket_path)
        # As `lrtop attach` does: the log's records pushed as they are made (read and dropped below).
        client.sendall(b'{"type":"subscribe","from_line":0}\n')
        client.setblocking(False)
    for _ in range(20):  # warm-up
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    clock = time.thread_time
    # thread_time() is a system call, not a vDSO read: a pair of them costs microseconds on a cold cache. Each
    # step also times an empty pair, and the CPU figures are net of it.
    inside = cpu = opt_cpu = sched_cpu = empty = 0.0
    t0, p0, m0 = time.perf_counter(), time.process_time(), clock()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward()
        e0 = clock(); e1 = clock()
        c0 = clock(); opt.step(); c1 = clock(); sched.step(); c2 = clock()
        empty += e1 - e0
        opt_cpu += c1 - c0
        sched_cpu += c2 - c1
        if run is not None:
            t1, c1 = time.perf_counter(), clock()
            run.step(loss=loss)
            inside += time.perf_counter() - t1
            cpu += clock() - c1
            if client is not None:
                try:
                    while client.recv(65536):
                        pass
                except BlockingIOError:
                    pass
    dt = (time.perf_counter() - t0) / steps
    others = ((time.process_time() - p0) - (clock() - m0)) / steps
    if run is not None:
        run.close()
    if client is not None:
        client.close()
    return {"wall": dt, "inside": inside / steps, "cpu": (cpu - empty) / steps if run else 0.0,
            "opt": opt_cpu / steps, "sched": sched_cpu / steps, "others": others, "clock": empty / steps}


def ddp_worker(rank, world, port, iters, step_time, out):
    """The exchange's cost: before (#23), one at every step; now, each step's bookkeeping and one exchange every K-th
    step, K as attach picks it for this step time (each rank runs the bare loop: what it costs, not the step)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from lrtop.distributed import MAX_K, TARGET_WAIT, WARMUP, CommandChannel
    ch = CommandChannel(True)
    ch.agree(1)
    for _ in range(100):
        ch.exchange([], 0)
    t0 = time.perf_counter()
    for _ in range(iters):
        ch.exchange([], 0)
    every_step = (time.perf_counter() - t0) / iters
    recs = [{"text": "lr 1e-4", "origin": "socket", "reason": None}] if rank == 0 else []
    t0 = time.perf_counter()
    for _ in range(iters // 4):
        ch.exchange(recs, 0)
    busy = (time.perf_counter() - t0) / (iters // 4)
    ch.k = k = max(1, min(MAX_K, int(TARGET_WAIT / step_time)))
    steps = iters * 20
    clock = time.perf_counter
    exchanges = 0
    t0 = clock()
    for step in range(WARMUP + 1, WARMUP + 1 + steps):
        now = clock()
        ch.count_step(step_time, now)
        if ch.due(step):
            ch.exchange([], step)
            exchanges += 1
    amortised = (clock() - t0) / steps
    if rank == 0:
        with open(out, "w") as f:
            f.write(f"{every_step} {busy} {k} {amortised} {exchanges} {steps}")
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ddp-iters", type=int, default=2000)
    a = ap.parse_args()
    torch.set_num_threads(1)
    plain, hooked, viewed = [], [], []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(a.rounds):
            plain.append(loop(a.steps, False, False, d))
            hooked.append(loop(a.steps, True, False, d))
            viewed.append(loop(a.steps, True, True, d))

    def med(runs, key):
        return statistics.median(r[key] for r in runs)

    def whole(runs):
        """The hook's CPU per step, every part, each round against the plain run of the same round."""
        return statistics.median(r["cpu"] + (r["opt"] - p["opt"]) + (r["sched"] - p["sched"]) + (r["others"] - p["others"])
                                 for r, p in zip(runs, plain))

    b = med(plain, "wall")
    print(f"MLP 784-256-10, batch 128, 1 thread, {a.steps} steps x {a.rounds} rounds (medians; CPU net of the "
          f"{med(plain, 'clock') * 1e6:.1f} us a pair of thread_time() calls costs here)")
    print(f"  plain step              {b * 1e3:8.3f} ms")
    h = med(hooked, "wall")
    print(f"  step with the hook      {h * 1e3:8.3f} ms   (difference {100 * (h - b) / b:+5.2f}%, load-sensitive)")
    for label, runs in (("no viewer", hooked), ("a viewer ", viewed)):
        w = whole(runs)
        print(f"  {label}: inside run.step() wall {med(runs, 'inside') * 1e6:6.1f} us, CPU {med(runs, 'cpu') * 1e6:6.1f} us; "
              f"optimizer hooks {(med(runs, 'opt') - med(plain, 'opt')) * 1e6:+5.1f} us, "
              f"routed scheduler step {(med(runs, 'sched') - med(plain, 'sched')) * 1e6:+5.1f} us, "
              f"service thread {(med(runs, 'others') - med(plain, 'others')) * 1e6:+5.1f} us")
        print(f"             the whole hook: {w * 1e6:6.1f} us CPU per step = {100 * w / b:4.2f}% of the plain step")
    if a.ddp_iters:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with tempfile.NamedTemporaryFile() as f:
            mp.spawn(ddp_worker, args=(2, port, a.ddp_iters, b, f.name), nprocs=2, join=True)
            every, busy, k, amortised, exchanges, steps = (float(x) for x in open(f.name).read().split())
        print(f"DDP exchange, 2 gloo ranks on this machine: one exchange {every * 1e6:.1f} us with nothing pending, "
              f"{busy * 1e6:.1f} us with a command (what every step paid before #23)")
        print(f"  every K={k:.0f} steps (K for the {b * 1e3:.2f} ms step above): {amortised * 1e6:.2f} us per step "
              f"amortised, nothing pending ({exchanges:.0f} exchanges in {steps:.0f} steps)")


if __name__ == "__main__":
    main()
