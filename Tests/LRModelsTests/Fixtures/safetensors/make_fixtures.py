#!/usr/bin/env python3
"""Writes the safetensors fixtures of Tests/LRModelsTests/SafetensorsTests.swift with the real library.

Run from the repository root with the project's venv:  python Tests/LRModelsTests/Fixtures/safetensors/make_fixtures.py
Each .safetensors file comes with a .json of what it must decode to (float32 values written exactly, as the
shortest decimal that round-trips a float32 widened to a Python float).
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "bench"))
import twins  # noqa: E402


def expected(tensors):
    out = {}
    for name, t in tensors.items():
        if t.dtype in (torch.int64, torch.int32):
            out[name] = {"shape": list(t.shape), "ints": [int(v) for v in t.flatten().tolist()]}
        else:
            out[name] = {"shape": list(t.shape), "floats": [float(v) for v in t.float().flatten().tolist()]}
    return out


def write(name, tensors, metadata=None):
    save_file(tensors, os.path.join(HERE, name + ".safetensors"), metadata=metadata)
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump({"metadata": metadata or {}, "tensors": expected(tensors)}, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    g = torch.Generator().manual_seed(15)
    # Every float dtype lrtop reads, with values that need all their bits (and an integer count).
    write("dtypes", {
        "f32": torch.randn(2, 3, generator=g),
        "f16": torch.randn(5, generator=g).to(torch.float16),
        "bf16": (torch.randn(2, 2, generator=g) * 1000).to(torch.bfloat16),
        "count": torch.tensor(7, dtype=torch.int64),
        "empty": torch.zeros(0, 3),
    }, metadata={"format": "pt", "written_by": "make_fixtures.py"})

    # Twins' state_dicts after a few training steps (running statistics and counters are not their defaults).
    torch.manual_seed(15)
    mlp = twins.MLP(inputs=6, hidden=(5,), classes=3)
    write("mlp-6-5-3", mlp.state_dict(), metadata={"format": "pt"})
    write("mlp-6-5-3-bf16", {k: v.to(torch.bfloat16) for k, v in mlp.state_dict().items()}, metadata={"format": "pt"})

    torch.manual_seed(15)
    convnet = twins.ConvNet(channels=1, width=2, classes=3)
    opt = torch.optim.SGD(convnet.parameters(), lr=0.1)
    for _ in range(3):
        x = torch.randn(4, 1, 6, 6, generator=g)
        loss = torch.nn.functional.cross_entropy(convnet(x), torch.tensor([0, 1, 2, 1]))
        opt.zero_grad(); loss.backward(); opt.step()
    write("convnet-w2", convnet.state_dict(), metadata={"format": "pt"})


if __name__ == "__main__":
    main()
