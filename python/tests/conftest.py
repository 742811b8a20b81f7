import json
import os
import socket
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _private_socket_dir(tmp_path, monkeypatch):
    # Short path: sun_path holds 108 bytes.
    d = f"/tmp/lrt-{os.getpid()}"
    os.makedirs(d, exist_ok=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", d)
    yield


@pytest.fixture(autouse=True)
def state_home(tmp_path_factory, monkeypatch):
    """A private XDG_STATE_HOME per test (beside tmp_path, not in it): the run registry (docs/registry.md) of the
    runs a test starts, never the user's own."""
    d = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(d))
    return d


def train_step(model, opt, x=None):
    """One optimizer step of a model from 8 inputs to 1 output learning their sum; returns the loss."""
    import torch
    x = torch.randn(32, 8) if x is None else x
    loss = ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss


def linear_run(log_dir, **kw):
    """A Linear(8, 1) with SGD at 0.01, attached (announce=False) under `log_dir`: (model, optimizer, run)."""
    import torch
    import lrtop
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return model, opt, lrtop.attach(opt, model=model, log_dir=str(log_dir), announce=False, **kw)


def tiny_bert(n=64):
    """A one-layer BERT built from a config (nothing downloaded) and a dataset class of n token rows whose label
    is the parity of the first token."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=2)

    class Tokens(torch.utils.data.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            ids = torch.randint(0, 50, (8,), generator=g)
            return {"input_ids": ids, "labels": int(ids[0] % 2)}

    return BertForSequenceClassification(config), Tokens


def wait_for_files(folder, names, timeout=10.0):
    """The folder's sorted listing once it is `names` (a `ckpt` command writes its file on a thread of its own)."""
    deadline = time.time() + timeout
    while True:
        files = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        if files == sorted(names) or time.time() > deadline:
            assert files == sorted(names)
            return files
        time.sleep(0.02)


def read_log(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Client:
    """A test stand-in for `lrtop attach`: JSON lines over the Unix socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.settimeout(10)
        self.buf = b""
        self.seen = []

    def send(self, obj):
        self.sock.sendall((json.dumps(obj) + "\n").encode())

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def command(self, ident, text):
        self.send({"type": "command", "id": ident, "text": text})

    def read(self, timeout=10.0):
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        msg = json.loads(line)
        self.seen.append(msg)
        return msg

    def wait_for(self, pred, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            msg = self.read(deadline - time.time())
            if pred(msg):
                return msg
        raise TimeoutError("no matching message")

    def fresh_status(self):
        """A status sent after this call (those the server sent before, every 0.5 s, are read and dropped)."""
        try:
            while True:
                self.read(0.2)
        except TimeoutError:
            pass
        self.send({"type": "status"})
        return self.wait_for(lambda m: m.get("type") == "status")

    def close(self):
        self.sock.close()


OTHER_USER = "lrtop-other"


@pytest.fixture(scope="session")
def other_user():
    """A second local user (created with useradd when missing) for the cross-user tests; they need root."""
    import pwd
    import shutil
    import subprocess
    if os.geteuid() != 0:
        pytest.skip("cross-user test: needs root to create a second local user with useradd (CI runs as root)")
    if shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("cross-user test: needs useradd and setpriv (Debian: passwd, util-linux)")
    try:
        return pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER_USER],
                       check=True, capture_output=True)
        return pwd.getpwnam(OTHER_USER)


def as_user(user, *command):
    """Runs a command as `user` (a pwd entry), as that user would from their own shell."""
    import subprocess
    subprocess.run(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--", *command],
                   check=True, capture_output=True)


@pytest.fixture
def shared_dir():
    """A directory every local user can create entries in, as /tmp is (mode 1777)."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="lrtop-shared-", dir="/tmp")
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def tiny_lightning_module(pl, make_scheduler):
    """A LightningModule classifying 8 inputs into 2 classes with SGD at 0.1 and the step-interval scheduler
    `make_scheduler(optimizer)` makes; it logs `val_loss` and `val_acc`."""
    import torch

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(8, 2)

        def training_step(self, batch, i):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def validation_step(self, batch, i):
            x, y = batch
            logits = self.net(x)
            self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
            self.log("val_acc", (logits.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": make_scheduler(opt), "interval": "step"}}

    return Tiny
