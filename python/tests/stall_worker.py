"""Bridged loops that get stuck where real ones do, for the stack and stall tests (test_stacks.py):
`python stall_worker.py LOG_DIR loader RELEASE` trains 5 steps, then its Dataset's `__getitem__` sleeps until the
file RELEASE exists (a DataLoader with num_workers=0: the main thread itself waits), then trains 3 more steps.
`python stall_worker.py LOG_DIR ddp RELEASE PORT`: two gloo ranks train 5 steps, then rank 0 sleeps in its loop until
RELEASE exists while rank 1 goes on into its next step's gradient all-reduce and waits there for rank 0.
Each prints `ready RUN_DIR` once stuck (rank 0 for the DDP job)."""
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import lrtop  # noqa: E402

STEPS_BEFORE = 5


def wait_for_release(release, say=None):
    if say is not None:
        print(say, flush=True)
    while not os.path.exists(release):
        time.sleep(0.05)


class SlowData(torch.utils.data.Dataset):
    """Eight rows of 4 inputs; from row `STEPS_BEFORE` on, the read waits for the release file (a stuck file system,
    a dead NFS server)."""

    def __init__(self, release, run_dir):
        self.release = release
        self.run_dir = run_dir

    def __len__(self):
        return STEPS_BEFORE + 3

    def __getitem__(self, i):
        if i == STEPS_BEFORE:
            print(f"ready {self.run_dir[0]}", flush=True)
            while not os.path.exists(self.release):
                time.sleep(0.05)  # the frame the stacks must show
        return torch.full((4,), float(i))


def loader(log_dir, release):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    run_dir = [None]
    data = torch.utils.data.DataLoader(SlowData(release, run_dir), batch_size=1, num_workers=0)
    with lrtop.attach(opt, model=model, name="stall", log_dir=log_dir, announce=False, total_steps=8) as run:
        run_dir[0] = run.run_dir
        for x in data:
            loss = model(x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            run.step(loss=loss)
            time.sleep(0.05)


def ddp_rank(rank, world, log_dir, release, port):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
    run = lrtop.attach(opt, model=model, name="ddp-stall", log_dir=log_dir, announce=False)
    for i in range(STEPS_BEFORE + 3):
        if i == STEPS_BEFORE and rank == 0:
            wait_for_release(release, f"ready {run.run_dir}")
        loss = ddp(torch.randn(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.step(loss=loss)
        time.sleep(0.05)
    run.close()
    dist.destroy_process_group()


if __name__ == "__main__":
    log_dir, mode, release = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "loader":
        loader(log_dir, release)
    else:
        mp.spawn(ddp_rank, args=(2, log_dir, release, int(sys.argv[4])), nprocs=2, join=True)
    print("done", flush=True)
