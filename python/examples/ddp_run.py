"""A 2-rank DDP run (gloo, CPU) steered live from lrtop: rank 0 logs and listens, every rank applies the same
commands at the same step.

    python python/examples/ddp_run.py                 # prints: lrtop: steer this run with: lrtop attach runs/NAME
    lrtop attach                                      # in another terminal

Each rank also writes what it did at every step to RUN_DIR/ranks/rankN.jsonl (the step, the LR its optimizer used,
a checksum of its weights, the time): the end-to-end tests compare the ranks with it. The same loop runs under
`torchrun --nproc-per-node 2 python/examples/ddp_run.py --torchrun`.
"""
import json
import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

import lrtop
from example_common import mlp, parser, teacher_problem


def train(rank: int, world: int, args) -> None:
    if not args.torchrun:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(args.port))
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    x_train, y_train, _, _ = teacher_problem(args.seed)  # the same problem and initial weights on every rank
    model = mlp()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=args.lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1000, gamma=0.5)
    batches = torch.Generator().manual_seed(args.seed + 1 + rank)  # each rank its own shard of the batches
    steps_per_epoch = len(x_train) // (args.batch_size * world)

    run = lrtop.attach(optimizer, scheduler, model=model, name=args.name, log_dir=args.log_dir,
                       total_steps=args.steps, steps_per_epoch=steps_per_epoch, batch_size=args.batch_size * world,
                       seed=args.seed, announce=rank == 0)
    trace_dir = os.path.join(args.log_dir, run.name, "ranks")
    os.makedirs(trace_dir, exist_ok=True)
    with run, open(os.path.join(trace_dir, f"rank{rank}.jsonl"), "w") as trace:
        for _ in range(args.steps):
            idx = torch.randint(0, len(x_train), (args.batch_size,), generator=batches)
            loss = F.cross_entropy(ddp(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            lr_used = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            step = run.step_count + 1
            checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
            run.step(loss=loss)
            trace.write(json.dumps({"step": step, "lr": lr_used, "weights": checksum, "time": time.time(),
                                    "after": run.step_count}) + "\n")
            trace.flush()
            if run.should_stop:
                break
            if args.step_delay:
                time.sleep(args.step_delay)
    dist.destroy_process_group()


def main() -> None:
    p = parser(__doc__, lr=0.05, batch_size=32)  # --batch-size is per rank; --eval-every is not used
    p.add_argument("--world-size", type=int, default=2)
    p.add_argument("--torchrun", action="store_true", help="started by torchrun: rank and world from its env")
    args = p.parse_args()
    if args.name is None:
        args.name = time.strftime("%Y-%m-%d_%H-%M-%S")
    if args.torchrun:
        train(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), args)
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        args.port = s.getsockname()[1]
    mp.spawn(train_rank, args=(args,), nprocs=args.world_size, join=True)


def train_rank(rank: int, args) -> None:
    train(rank, args.world_size, args)


if __name__ == "__main__":
    main()
