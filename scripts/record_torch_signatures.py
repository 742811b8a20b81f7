#!/usr/bin/env python3
"""Records the constructor signatures of torch.optim.lr_scheduler's classes that lrtop's schedulers follow.

LROptimTests' SchedulerDescriptorTests check every scheduler descriptor's defaults against this file, so a default
that drifts from PyTorch's fails a test without needing torch at test time. Rerun after a torch upgrade:

    /root/.cache/lrtop/venv/bin/python scripts/record_torch_signatures.py \
        > Tests/LROptimTests/Fixtures/torch_scheduler_signatures.json
"""
import inspect
import json
import sys

import torch
from torch.optim import lr_scheduler

CLASSES = [
    "ConstantLR", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
    "LinearLR", "PolynomialLR", "OneCycleLR", "CyclicLR", "ReduceLROnPlateau", "SequentialLR",
]
# Arguments every scheduler has that are not options of a spec.
SKIPPED = {"self", "optimizer", "last_epoch", "verbose"}


def parameters(cls):
    out = {}
    for name, p in inspect.signature(cls).parameters.items():
        if name in SKIPPED or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is inspect.Parameter.empty:
            out[name] = {"required": True}
        elif p.default is None or isinstance(p.default, (bool, int, float, str)):
            out[name] = {"default": p.default}
        else:
            out[name] = {"default": repr(p.default)}
    return out


def main():
    record = {
        "recorded_with": f"torch {torch.__version__.split('+')[0]}, scripts/record_torch_signatures.py",
        "classes": {name: parameters(getattr(lr_scheduler, name)) for name in CLASSES},
    }
    json.dump(record, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
