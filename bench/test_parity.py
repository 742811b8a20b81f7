"""lrtop against PyTorch, as a user of both would check it: the same weights in, the same losses out.

Needs the release binary (`swift build -c release`; found with --show-bin-path, or LRTOP_BIN), torch and safetensors
from the project's venv, and Debian's Fashion-MNIST.
"""
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402
import twins  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.isdir(twins.FASHION_MNIST),
                                reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


def test_mlp_with_adamw_matches_pytorch_step_for_step_for_50_steps(tmp_path):
    out = tmp_path / "parity.json"
    status = parity.main(["steps", "--optimizers", "adamw", "--steps", "50", "--json", str(out)])
    result = json.loads(out.read_text())["results"]["adamw"]
    assert result["max_loss_rel"] < 1e-4, result
    assert result["max_norm_rel"] < 1e-4, result
    assert result["first_loss"][0] == pytest.approx(result["first_loss"][1], rel=1e-5)
    assert status == 0


def bits(t):
    return t.contiguous().view(torch.int64 if t.dtype == torch.int64 else torch.int32)


@pytest.mark.parametrize("model", ["mlp", "convnet"])
def test_weights_round_trip_lrtop_pytorch_lrtop_bit_for_bit(tmp_path, model):
    lrtop = parity.lrtop_binary()
    first = tmp_path / "lrtop.safetensors"
    subprocess.run([lrtop, "export-weights", "--initial", "--model", model, "--seed", "5", str(first)], check=True)

    twin = twins.make(model)
    twin.load_state_dict(load_file(first))  # strict: every name and shape matches
    back = tmp_path / "torch.safetensors"
    save_file(twin.state_dict(), back, metadata={"format": "pt"})
    again = tmp_path / "lrtop-again.safetensors"
    subprocess.run([lrtop, "export-weights", "--model", model, str(back), str(again)], check=True)

    a, b = load_file(first), load_file(again)
    assert a.keys() == b.keys() == twin.state_dict().keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert torch.equal(bits(a[name]), bits(b[name])), name


def test_pytorch_training_state_comes_back_from_lrtop_unchanged(tmp_path):
    """A PyTorch user's fine-tuned convnet (running statistics, counters) survives lrtop's reader and writer."""
    torch.manual_seed(0)
    twin = twins.ConvNet()
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(twin(torch.rand(8, 1, 28, 28)), torch.randint(0, 10, (8,)))
        opt.zero_grad(); loss.backward(); opt.step()
    mine = tmp_path / "mine.safetensors"
    save_file(twin.state_dict(), mine)
    out = tmp_path / "through-lrtop.safetensors"
    subprocess.run([parity.lrtop_binary(), "export-weights", "--model", "convnet", str(mine), str(out)], check=True)
    theirs = load_file(out)
    for name, value in twin.state_dict().items():
        assert torch.equal(bits(value), bits(theirs[name])), name
    assert theirs["stem.bn.num_batches_tracked"].item() == 2


def test_a_file_that_does_not_fit_names_the_tensor(tmp_path):
    wrong = tmp_path / "wide.safetensors"
    save_file(twins.MLP(hidden=(128,)).state_dict(), wrong)
    run = subprocess.run([parity.lrtop_binary(), "train", "--headless", "--init", str(wrong), "--max-steps", "1",
                          "--run-dir", str(tmp_path / "run")], capture_output=True, text=True)
    assert run.returncode != 0
    assert "tensor 'fc1.weight' has shape [128, 784]" in run.stderr and "needs [256, 784]" in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
