"""Two gloo ranks on the CPU, steered through rank 0 (run by test_ddp.py; `python ddp_worker.py OUT_DIR`)."""
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


def worker(rank, world, out, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", rank=rank, world_size=world)
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
        if rank == 0 and step not in issued:
            issued.add(step)
            if step == 3:
                run.command("lr 1e-4")
            if step == 5:
                run.command("ckpt")
            if step == 6:
                run.command("pause")
                threading.Thread(target=resume_later, args=(run.server.path, 1.0), daemon=True).start()
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


if __name__ == "__main__":
    out = sys.argv[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(2, out, port), nprocs=2, join=True)
