"""Two gloo ranks on the CPU, steered through rank 0 (run by test_ddp.py: `python ddp_worker.py OUT_DIR`, and by
test_findlr.py: `python ddp_worker.py OUT_DIR find-lr`, and `every-k`)."""
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


def resume_and_watch(sock_path, delay, statuses):
    """`resume` after `delay`, keeping the statuses the socket sends meanwhile and just after."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.settimeout(0.1)
    data, t0, sent = b"", time.time(), False
    while time.time() - t0 < delay + 0.5:
        if not sent and time.time() - t0 >= delay:
            s.sendall(b'{"type":"command","id":1,"text":"resume"}\n')
            sent = True
        try:
            data += s.recv(65536)
        except socket.timeout:
            pass
    s.close()
    statuses.extend(m for m in (json.loads(line) for line in data.split(b"\n") if line.strip())
                    if m.get("type") == "status")


def init_gloo(rank, world, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", rank=rank, world_size=world)


def linear_run(rank, world, out, port, name):
    """A Linear(4, 1) under DDP on gloo, SGD at 0.1, attached as `name`."""
    init_gloo(rank, world, port)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    return model, ddp, opt, lrtop.attach(opt, model=model, name=name, log_dir=out, announce=False)


def worker(rank, world, out, port):
    model, ddp, opt, run = linear_run(rank, world, out, port, "ddp")
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


def every_k_worker(rank, world, out, port):
    """Steps of about 3 ms: after the warm-up the ranks exchange every K-th step only; `lr 0.05` queued at step 20
    and `pause` at step 70 (resumed 0.5 s later) apply at an exchange, at the same step on both ranks."""
    _, ddp, opt, run = linear_run(rank, world, out, port, "k")
    trace: dict = {"lr_used": {}, "start": {}}
    statuses: list = []
    for _ in range(160):
        step = run.step_count + 1
        trace["start"][step] = time.time()
        loss = ddp(torch.randn(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        trace["lr_used"][step] = opt.param_groups[0]["lr"]
        opt.step()
        time.sleep(0.003 if rank == 0 else 0.002)
        if rank == 0 and step == 20:
            run.command("lr 0.05")
        if rank == 0 and step == 70:
            run.command("pause")
            watcher = threading.Thread(target=resume_and_watch, args=(run.socket_path, 0.5, statuses))
            watcher.start()
        run.step(loss=loss)
    run.close()
    if rank == 0:
        watcher.join()
    trace["k"] = run._channel.k
    trace["statuses"] = statuses
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(trace, f)
    dist.destroy_process_group()


def fsdp2_worker(rank, world, out, port):
    """FSDP2 (`fully_shard`) on 2 gloo ranks: `lr` at step 3, `ckpt` at 5, `rollback` at 8, `find-lr` at 10 (its
    weights put back after), each rank's own shard recorded."""
    init_gloo(rank, world, port)
    from torch.distributed.fsdp import fully_shard
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer)
    fully_shard(model)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    run = lrtop.attach(opt, model=model, name="fsdp", log_dir=out, announce=False)
    trace: dict = {"lr_used": {}, "shard": {}}
    g = torch.Generator().manual_seed(rank)

    def shard():
        return float(sum(p.to_local().detach().double().sum() for p in model.parameters()))
    commands = {3: "lr 0.001", 5: "ckpt", 8: "rollback", 10: "find-lr"}
    issued = set()
    for _ in range(400):
        step = run.step_count + 1
        loss = ((model(torch.randn(8, 4, generator=g)) - 1) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        if not run.finding_lr:
            trace["lr_used"].setdefault(step, opt.param_groups[0]["lr"])
        opt.step()
        if not run.finding_lr:
            trace["shard"].setdefault(step, shard())
        if rank == 0 and step in commands and step not in issued and not run.finding_lr:
            issued.add(step)
            run.command(commands[step])
        sweeping = run.finding_lr
        run.step(loss=loss)
        if step == 8 and "after_rollback" not in trace:
            trace["after_rollback"] = {"step": run.step_count, "shard": shard()}
        if not sweeping and run.finding_lr:
            trace["before_sweep"] = shard()
        if sweeping and not run.finding_lr:
            trace["after_sweep"] = shard()
            break
    run.close()
    trace["final_step"] = run.step_count
    trace["files"] = run.checkpoint_files
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(trace, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    out = sys.argv[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = {"find-lr": find_lr_worker, "every-k": every_k_worker, "fsdp2": fsdp2_worker}.get(sys.argv[2] if sys.argv[2:] else "", worker)
    mp.spawn(target, args=(2, out, port), nprocs=2, join=True)
