"""Two gloo ranks on the CPU, steered through rank 0 (run by test_ddp.py: `python ddp_worker.py OUT_DIR`, and by
test_findlr.py: `python ddp_worker.py OUT_DIR find-lr`)."""
import json
import os
import socket
import sys
import threading
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lrtop  # noqa: E402


def resume_later(sock_path, delay):
    time.sleep(delay)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall(b'{"type":"command","id":1,"text":"resume"}\n')
    time.sleep(0.5)
    s.close()


def init_gloo(rank, world, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", rank=rank, world_size=world)


def worker(rank, world, out, port):
    init_gloo(rank, world, port)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name="ddp", log_dir=out, announce=False)
    trace = {"lr_used": {}, "start": {}, "end": {}, "weights": {}}
    g = torch.Generator().manual_seed(rank)
    issued = set()
    for i in range(12):
        step = run.step_count + 1  # the step about to be taken
        trace["start"].setdefault(step, time.time())
        x = torch.randn(8, 4, generator=g)
        loss = ddp(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        trace["lr_used"].setdefault(step, opt.param_groups[0]["lr"])
        opt.step()
        trace["weights"].setdefault(step, float(model.weight.detach().sum()))
        if rank == 0 and i == 9:
            # Over 1 MiB of commands in one step (each 4 KB of text): carried over the next boundaries, on every
            # rank alike (this raised on rank 0 alone and ended the job).
            for _ in range(300):
                run.command("lr" + " " * 4000 + "*1")
        if rank == 0 and step not in issued:
            issued.add(step)
            if step == 3:
                run.command("lr 1e-4")
            if step == 5:
                run.command("ckpt")
            if step == 6:
                run.command("pause")
                threading.Thread(target=resume_later, args=(run.socket_path, 1.0), daemon=True).start()
            if step == 8:
                run.command("rollback")
        run.step(loss=loss)
        trace["end"].setdefault(step, time.time())
        if step == 8 and "after_rollback" not in trace:
            trace["after_rollback"] = {"step": run.step_count, "lr": opt.param_groups[0]["lr"],
                                       "weights": float(model.weight.detach().sum())}
    run.close()
    trace["final_step"] = run.step_count
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(trace, f)
    dist.destroy_process_group()


def checksum(model):
    return float(sum(p.detach().double().sum() for p in model.parameters()))


def find_lr_worker(rank, world, out, port):
    """`find-lr` at step 3 on rank 0: every rank sweeps with its own batches, ends where rank 0's curve ends."""
    init_gloo(rank, world, port)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    run = lrtop.attach(opt, model=model, name="ddp", log_dir=out, announce=False)
    g = torch.Generator().manual_seed(rank)
    sweep = {"lrs": [], "losses": []}
    for _ in range(300):
        x = torch.randn(16, 4, generator=g)
        loss = ((ddp(x) - 3 * x.sum(1, keepdim=True)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sweeping = run.finding_lr
        if sweeping:
            sweep["lrs"].append(opt.param_groups[0]["lr"])
            sweep["losses"].append(float(loss))
        if rank == 0 and run.step_count == 2 and "weights_before" not in sweep:
            run.command("find-lr")  # applies at the boundary of step 3
        run.step(loss=loss)
        if not sweeping and run.finding_lr:
            sweep["weights_before"] = checksum(model)
        if sweeping and not run.finding_lr:
            sweep["weights_after"] = checksum(model)
            sweep["step_after"] = run.step_count
        if run.step_count == 8:
            break
    run.close()
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"sweep": sweep, "final_step": run.step_count}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    out = sys.argv[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = find_lr_worker if sys.argv[2:] == ["find-lr"] else worker
    mp.spawn(target, args=(2, out, port), nprocs=2, join=True)
