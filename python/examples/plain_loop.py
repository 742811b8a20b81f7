"""A plain PyTorch training loop steered live from lrtop.

    python python/examples/plain_loop.py              # prints: lrtop: steer this run with: lrtop attach runs/NAME
    lrtop attach                                      # in another terminal: the newest live run under ./runs

A small MLP learns a synthetic 4-class problem with AdamW and a cosine schedule: small enough for a laptop's CPU,
long enough to steer (`--step-delay` slows it down to watch). The lrtop lines are the `lrtop.attach(...)` call,
`run.step(...)`, `run.eval(...)` and `run.should_stop`.
"""
import time

import torch
import torch.nn.functional as F

import lrtop
from example_common import mlp, parser, teacher_problem


def main() -> None:
    args = parser(__doc__, lr=1e-3, batch_size=64).parse_args()
    x_train, y_train, x_val, y_val = teacher_problem(args.seed)
    model = mlp()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.steps)
    steps_per_epoch = len(x_train) // args.batch_size

    def evaluate() -> dict:
        with torch.no_grad():
            logits = model(x_val)
            return {"val_loss": F.cross_entropy(logits, y_val).item(),
                    "val_acc": (logits.argmax(1) == y_val).float().mean().item()}

    with lrtop.attach(optimizer, scheduler, model=model, name=args.name, log_dir=args.log_dir,
                      total_steps=args.steps, steps_per_epoch=steps_per_epoch, batch_size=args.batch_size,
                      seed=args.seed, eval_fn=evaluate) as run:
        for step in range(args.steps):
            batch = torch.randint(0, len(x_train), (args.batch_size,))
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            run.step(loss=loss, epoch=step // steps_per_epoch, samples=args.batch_size)
            if (step + 1) % args.eval_every == 0:
                run.eval(**evaluate())
            if run.should_stop:
                break
            if args.step_delay:
                time.sleep(args.step_delay)


if __name__ == "__main__":
    main()
