"""What the examples share: their command-line options and the synthetic 4-class problem they learn."""
import argparse

import torch


def parser(doc: str, lr: float, batch_size: int) -> argparse.ArgumentParser:
    """The options every example takes (run length, LR, steering pace, where the log goes)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps (default 3000)")
    p.add_argument("--lr", type=float, default=lr, help=f"the optimizer's LR (default {lr:g})")
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--eval-every", type=int, default=100, help="steps between evaluations")
    p.add_argument("--step-delay", type=float, default=0.0, help="seconds to sleep after each step (to watch it)")
    p.add_argument("--name", help="run name (default: the start time)")
    p.add_argument("--log-dir", default="runs", help="where the run's folder goes (default ./runs)")
    p.add_argument("--seed", type=int, default=0)
    return p


def teacher_problem(seed: int, n_train: int = 8192, n_val: int = 1024):
    """Points in 16 dimensions labelled by a random linear teacher: (x_train, y_train, x_val, y_val)."""
    torch.manual_seed(seed)
    teacher = torch.randn(16, 4)
    x_train, x_val = torch.randn(n_train, 16), torch.randn(n_val, 16)
    return x_train, (x_train @ teacher).argmax(1), x_val, (x_val @ teacher).argmax(1)


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
