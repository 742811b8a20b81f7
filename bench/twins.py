"""PyTorch twins of lrtop's models, its data and its optimizers, for bench/parity.py and the safetensors fixtures.

A twin's state_dict() has exactly the names and shapes `lrtop export-weights` writes, so
`model.load_state_dict(safetensors.torch.load_file(path))` takes lrtop's weights and
`safetensors.torch.save_file(model.state_dict(), path)` writes a file `lrtop train --init` takes.
"""
import gzip
import importlib.util
import os
import struct
import sys
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


class MLP(nn.Module):
    """lrtop's `mlp`: [fc{i} -> ReLU (-> Dropout)] per hidden size, then `head`."""

    def __init__(self, inputs=784, hidden=(256,), classes=10, dropout=0.0):
        super().__init__()
        sizes = [inputs, *hidden]
        for i in range(len(hidden)):
            setattr(self, f"fc{i + 1}", nn.Linear(sizes[i], sizes[i + 1]))
        self.depth = len(hidden)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(sizes[-1], classes)

    def forward(self, x):
        x = x.flatten(1)
        for i in range(self.depth):
            x = self.dropout(F.relu(getattr(self, f"fc{i + 1}")(x)))
        return self.head(x)


class ConvBN(nn.Module):
    """`<name>.conv` + `<name>.bn` (lrtop's stem and projection shortcut)."""

    def __init__(self, cin, cout, kernel, stride, padding):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class Block(nn.Module):
    """lrtop's ResidualBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = ConvBN(cin, cout, 1, stride, 0) if stride != 1 or cin != cout else None

    def forward(self, x):
        main = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(main + (x if self.shortcut is None else self.shortcut(x)))


class Stage(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.block1 = Block(cin, cout, stride)

    def forward(self, x):
        return self.block1(x)


class ConvNet(nn.Module):
    """lrtop's `convnet`: stem conv3x3-bn-relu, stage1.block1, stage2.block1 (stride 2), global average pool, head."""

    def __init__(self, channels=1, width=16, classes=10, dropout=0.0):
        super().__init__()
        self.stem = ConvBN(channels, width, 3, 1, 1)
        self.stage1 = Stage(width, width, 1)
        self.stage2 = Stage(width, 2 * width, 2)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = self.stage2(self.stage1(x))
        return self.head(self.dropout(x.mean(dim=(2, 3))))


def make(model, **kw):
    return {"mlp": MLP, "convnet": ConvNet}[model](**kw)


def _idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = struct.unpack(">" + "I" * data[3], data[4:4 + 4 * data[3]])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * data[3]).reshape(dims)


def fashion_mnist(folder=FASHION_MNIST):
    """(x_train, y_train, x_test, y_test): images [N, 1, 28, 28] as x/255 in float32 (as lrtop decodes them)."""
    def find(base):
        for name in (base, base + ".gz"):
            if os.path.exists(os.path.join(folder, name)):
                return os.path.join(folder, name)
        raise FileNotFoundError(f"{folder}: {base}[.gz] not found (apt-get install dataset-fashion-mnist)")
    def images(base):
        return torch.tensor(_idx(find(base)), dtype=torch.float32).unsqueeze(1) / 255.0
    def labels(base):
        return torch.tensor(_idx(find(base)).astype(np.int64))
    return (images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte"),
            images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte"))


def timm_lamb():
    """timm's Lamb. timm's package __init__ imports torchvision, which its optimizers never use: when that import
    fails, load timm/optim/lamb.py alone (it needs only torch)."""
    try:
        from timm.optim import Lamb
        return Lamb
    except ImportError:
        pass
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("timm is not installed: pip install --no-deps timm==1.0.31 (LAMB's parity needs timm's Lamb)")
    root = list(spec.submodule_search_locations)[0]
    for name, path in (("timm", root), ("timm.optim", os.path.join(root, "optim"))):
        if name not in sys.modules or not hasattr(sys.modules[name], "__path__"):
            module = types.ModuleType(name)
            module.__path__ = [path]
            sys.modules[name] = module
    return importlib.import_module("timm.optim.lamb").Lamb
