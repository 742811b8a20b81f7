"""Checkpoint files: a checksum beside each, a weights-only load, a check that the checkpoint fits the run, and a
load that either applies whole or changes nothing (issue 20, items 2, 15, 18); the reader fuzzed with mutations of a
valid file, checksums recomputed so the damage reaches the loader."""
import hashlib
import io
import os
import random
import resource
import struct
import zipfile

import pytest
import torch

import lrtop
from conftest import read_log, train_step
from lrtop.checkpoint_file import CheckpointError


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))


def adam_run(tmp_path, name, **options):
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=50)
    run = lrtop.attach(opt, sched, model=model, name=name, log_dir=str(tmp_path), announce=False, **options)
    return run, model, opt, sched


def train(run, model, opt, sched, n):
    for _ in range(n):
        train_step(model, opt)
        sched.step()
        run.step(loss=1.0)


def state_of(model, opt, run):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {k: {n: (t.clone() if isinstance(t, torch.Tensor) else t) for n, t in s.items()}
             for k, s in opt.state_dict()["state"].items()},
            [g["lr"] for g in opt.param_groups], run.step_count)


def same_state(a, b):
    wa, sa, la, na = a
    wb, sb, lb, nb = b
    return la == lb and na == nb and all(torch.equal(wa[k], wb[k]) for k in wa) and \
        all(torch.equal(sa[k][n], sb[k][n]) if isinstance(sa[k][n], torch.Tensor) else sa[k][n] == sb[k][n]
            for k in sa for n in sa[k])


def refused(run, model, opt, path) -> str:
    """Loads `path`, which must be refused with one line and leave the run as it was; returns the line."""
    before = state_of(model, opt, run)
    with pytest.raises(CheckpointError) as e:
        run.load_checkpoint(path)
    assert "\n" not in str(e.value) and same_state(before, state_of(model, opt, run))
    return str(e.value)


def crafted(tmp_path, saved_path, mutate, name) -> str:
    """A checkpoint lrtop wrote, changed by `mutate(snapshot)` and saved again with a valid checksum."""
    snap = torch.load(saved_path, weights_only=True)
    mutate(snap)
    buf = io.BytesIO()
    torch.save(snap, buf)
    target = str(tmp_path / name)
    write_with_checksum(target, buf.getvalue())
    return target


def write_with_checksum(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    with open(path + ".sha256", "w") as f:
        f.write(f"{hashlib.sha256(data).hexdigest()}  {os.path.basename(path)}\n")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A valid checkpoint of an Adam + cosine run at step 5, and the bytes of its file."""
    tmp = tmp_path_factory.mktemp("ck")
    run, model, opt, sched = adam_run(tmp, "src")
    train(run, model, opt, sched, 5)
    path = run.save_checkpoint()
    run.close()
    return path, open(path, "rb").read()


def test_a_checkpoint_is_written_with_its_checksum_and_loads_back(tmp_path, saved):
    path, data = saved
    line = open(path + ".sha256").read()
    assert line == f"{hashlib.sha256(data).hexdigest()}  {os.path.basename(path)}\n", "sha256sum -c reads it"
    run, model, opt, sched = adam_run(tmp_path, "dst")
    run.load_checkpoint(path)
    assert run.step_count == 5
    run.close()


def test_a_pickle_that_runs_code_is_refused_even_with_a_valid_checksum(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    buf = io.BytesIO()
    torch.save({"lrtop": {"step": 1}, "x": Payload()}, buf)
    path = str(tmp_path / "evil.pt")
    write_with_checksum(path, buf.getvalue())
    run, model, opt, sched = adam_run(tmp_path, "victim")
    before = state_of(model, opt, run)
    with pytest.raises(CheckpointError) as e:
        run.load_checkpoint(path)
    assert "not a loadable checkpoint" in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists(), "nothing in the file ran"
    assert same_state(before, state_of(model, opt, run))
    run.close()


def test_bit_flips_are_refused_by_the_checksum(tmp_path, saved):
    path, data = saved
    run, model, opt, sched = adam_run(tmp_path, "flips")
    before = state_of(model, opt, run)
    rng = random.Random(1)
    target = str(tmp_path / "flipped.pt")
    with open(path + ".sha256", "rb") as f:
        checksum = f.read()
    for _ in range(40):
        i = rng.randrange(len(data))
        flipped = bytearray(data)
        flipped[i] ^= 1 << rng.randrange(8)
        with open(target, "wb") as f:
            f.write(flipped)
        with open(target + ".sha256", "wb") as f:
            f.write(checksum)
        with pytest.raises(CheckpointError) as e:
            run.load_checkpoint(target)
        assert "checksum mismatch" in str(e.value)
    os.unlink(target + ".sha256")
    with pytest.raises(CheckpointError) as e:
        run.load_checkpoint(target)
    assert "no checksum beside it" in str(e.value)
    assert same_state(before, state_of(model, opt, run))
    run.close()


def test_a_checkpoint_of_another_optimizer_type_is_refused_at_load(tmp_path):
    model = make_model()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    run = lrtop.attach(sgd, model=model, name="sgd", log_dir=str(tmp_path), announce=False)
    for _ in range(3):
        run.step(loss=train_step(model, sgd))
    path = run.save_checkpoint()
    run.close()
    run2, model2, adam, sched = adam_run(tmp_path, "adam")
    train(run2, model2, adam, sched, 2)
    assert "a SGD optimizer and this run steps a Adam" in refused(run2, model2, adam, path)
    train(run2, model2, adam, sched, 1)  # and the run goes on (today: KeyError 'betas' at the next step)
    run2.close()


def test_a_load_that_fails_half_way_leaves_the_run_as_it_was(tmp_path, saved):
    # The Python RNG state is the last thing restored, after the weights and the optimizer.
    target = crafted(tmp_path, saved[0], lambda s: s["rng"].update(python=(3, (1, 2, 3), None)), "late-failure.pt")
    run, model, opt, sched = adam_run(tmp_path, "half")
    train(run, model, opt, sched, 2)
    assert "as they were" in refused(run, model, opt, target)
    train(run, model, opt, sched, 1)
    run.close()


def test_nan_weights_are_never_checkpointed_and_rollback_finds_the_last_finite_one(tmp_path):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = lrtop.attach(opt, model=model, name="nan", log_dir=str(tmp_path), guard="off", announce=False)
    for _ in range(3):
        run.step(loss=train_step(model, opt))
    run.command("ckpt")
    run.step(loss=train_step(model, opt))  # step 4: a finite checkpoint
    good = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    run.command("ckpt")        # refused
    run.command("lr /10")      # risky: its automatic checkpoint is refused, the command applies
    run.step(loss=1.0)
    assert run.checkpoint_count == 1
    run.command("rollback")
    run.step(loss=1.0)
    assert all(torch.equal(model.state_dict()[k], good[k]) for k in good)
    run.close()
    events = [e for e in read_log(run.log_path) if e["type"] == "event"]
    refused = [e for e in events if e["text"] == "ckpt" and e["kind"] == "error"]
    assert refused and "NaN or infinity (0.weight)" in refused[0]["message"]
    auto = [e for e in events if e["kind"] == "checkpoint" and e["text"] == "before 'lr /10'"]
    assert auto and auto[0]["message"].startswith("not taken: ")
    assert [e["kind"] for e in events if e["text"] == "lr /10"] == ["command"]
    assert sorted(os.listdir(tmp_path / "nan" / "checkpoints")) == ["step-0000004.pt", "step-0000004.pt.sha256"]


def test_a_checkpoint_with_nan_weights_is_refused_at_load(tmp_path, saved):
    target = crafted(tmp_path, saved[0], lambda s: s["model"]["2.bias"].fill_(float("nan")), "nan.pt")
    run, model, opt, sched = adam_run(tmp_path, "loadnan")
    assert "2.bias holds NaN or infinity" in refused(run, model, opt, target)
    run.close()


def test_checkpoint_keep_prunes_the_files_and_stale_temporaries_are_cleaned(tmp_path):
    run, model, opt, sched = adam_run(tmp_path, "keep", checkpoint_keep=2)
    folder = tmp_path / "keep" / "checkpoints"
    for _ in range(4):
        train(run, model, opt, sched, 1)
        run.save_checkpoint()
    assert sorted(os.listdir(folder)) == ["step-0000003.pt", "step-0000003.pt.sha256",
                                          "step-0000004.pt", "step-0000004.pt.sha256"]
    run.close()
    # A process killed mid-checkpoint leaves its temporaries (this pid is gone; the legacy name is an hour old).
    dead_pid = 2 ** 22 + 7
    (folder / f"step-0000005.pt.{dead_pid}.tmp").write_bytes(b"half a checkpoint")
    (folder / f"step-0000005.pt.sha256.{dead_pid}.tmp").write_bytes(b"")
    legacy = folder / "step-0000006.pt.tmp"
    legacy.write_bytes(b"x")
    os.utime(legacy, (1e9, 1e9))
    fresh = folder / "step-0000007.pt.tmp"
    fresh.write_bytes(b"another lrtop may be writing this one now")
    run2, model2, opt2, sched2 = adam_run(tmp_path, "resumed")
    run2.load_checkpoint(str(folder / "step-0000004.pt"))
    assert sorted(os.listdir(folder)) == ["step-0000003.pt", "step-0000003.pt.sha256", "step-0000004.pt",
                                          "step-0000004.pt.sha256", "step-0000007.pt.tmp"]
    run2.close()


# ------------------------------------------------------------------------------------------------------------ fuzz


def _rezip(raw: bytes, patch) -> bytes:
    z = zipfile.ZipFile(io.BytesIO(raw))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as w:
        for n in z.namelist():
            data = z.read(n)
            w.writestr(n, patch(data) if n.endswith("data.pkl") else data)
    return out.getvalue()


def _structural_mutations(snap: dict):
    """Valid archives with insides that are not lrtop's: wrong types, shapes, sizes, missing and extra parts."""
    import copy

    def mutated(f):
        s = copy.deepcopy(snap)
        f(s)
        return s
    first = next(iter(snap["model"]))
    yield mutated(lambda s: s.pop("lrtop"))
    yield mutated(lambda s: s.pop("optimizer"))
    yield mutated(lambda s: s.pop("rng"))
    yield mutated(lambda s: s["lrtop"].update(step=-3))
    yield mutated(lambda s: s["lrtop"].update(step=2 ** 80))
    yield mutated(lambda s: s["lrtop"].update(step="5"))
    yield mutated(lambda s: s["lrtop"].update(lrs=[float("nan")]))
    yield mutated(lambda s: s["lrtop"].update(lrs=[1e-3, 1e-3]))
    yield mutated(lambda s: s["lr_control"].update(held="yes"))
    yield mutated(lambda s: s["lr_control"].update(warmup=[1]))
    yield mutated(lambda s: s["lr_control"].update(spec="cosin:T_max=3"))
    yield mutated(lambda s: s["lr_control"].update(spec=42))
    yield mutated(lambda s: s["lr_control"].update(spec_length=-5))
    yield mutated(lambda s: s.pop("lr_control"))
    yield mutated(lambda s: s["model"].update({first: torch.zeros(3, 3)}))
    yield mutated(lambda s: s["model"].update({first: "weights"}))
    yield mutated(lambda s: s["model"].update({first: s["model"][first].double()}))
    yield mutated(lambda s: s["model"].pop(first))
    yield mutated(lambda s: s["model"].update(extra=torch.zeros(1)))
    yield mutated(lambda s: s["optimizer"]["param_groups"].append({"params": []}))
    yield mutated(lambda s: s["optimizer"]["param_groups"][0].update(params=[0, 1]))
    yield mutated(lambda s: s["optimizer"]["param_groups"][0].pop("betas"))
    yield mutated(lambda s: s["optimizer"]["state"].update({99: {}}))
    yield mutated(lambda s: s["optimizer"]["state"][0].update(exp_avg=torch.zeros(1000)))
    yield mutated(lambda s: s["optimizer"]["state"][0].update(exp_avg_sq=torch.full((16, 8), float("inf"))))
    yield mutated(lambda s: s["optimizer"].update(state=[1, 2]))
    yield mutated(lambda s: s["rng"].update(torch=torch.zeros(3, dtype=torch.uint8)))
    yield mutated(lambda s: s["rng"].update(python=(3, (1,), None)))
    yield mutated(lambda s: s["rng"].update(numpy=["MT19937", [1, 2], 0, 0, 0.0]))
    yield mutated(lambda s: s["lr_control"].update(scheduler={"last_epoch": "x"}))
    yield mutated(lambda s: s["lr_control"].update(scheduler=[1]))
    yield mutated(lambda s: s["lr_control"].update(shadow_lrs=[None]))
    yield mutated(lambda s: s.update(lrtop=[1, 2, 3]))
    nested: list = []
    for _ in range(300):
        nested = [nested]
    yield mutated(lambda s: s["lrtop"].update(label=nested))


def test_fuzz_the_checkpoint_reader(tmp_path, saved):
    """Mutations of a valid file, each with its checksum recomputed: one clear error (or, where only tensor data
    changed, a load that passes every check), the run untouched after an error, no crash, bounded memory."""
    path, data = saved
    run, model, opt, sched = adam_run(tmp_path, "fuzz")
    train(run, model, opt, sched, 2)
    before = state_of(model, opt, run)
    target = str(tmp_path / "mutant.pt")
    rng = random.Random(20)
    mutants = []
    for _ in range(150):  # bit flips anywhere: zip headers, the pickle, tensor data
        b = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 8))):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        mutants.append(bytes(b))
    for _ in range(20):  # truncations
        mutants.append(data[:rng.randrange(len(data))])
    for _ in range(30):  # a run of bytes overwritten
        b = bytearray(data)
        i = rng.randrange(len(b))
        b[i:i + rng.randrange(1, 64)] = bytes(rng.randrange(256) for _ in range(64))[:len(b[i:i + 64])]
        mutants.append(bytes(b))
    mutants += [b"", b"PK\x03\x04", data + data, b"\x80\x02}q\x00."]
    # Storage sizes and views that lie about their size (the allocation they ask for is never made).
    for numel in (2 ** 31 - 1, 2 ** 40, 2 ** 62):
        mutants.append(_rezip(data, lambda pk, n=numel: _patch_first_numel(pk, n)))
    snap = torch.load(path, weights_only=True)
    for s in _structural_mutations(snap):
        buf = io.BytesIO()
        torch.save(s, buf)
        mutants.append(buf.getvalue())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = {"refused": 0, "loaded": 0}
    for m in mutants:
        write_with_checksum(target, m)
        try:
            run.load_checkpoint(target)
        except CheckpointError as e:
            message = str(e)
            assert "\n" not in message and target in message and len(message) < 600, message
            assert same_state(before, state_of(model, opt, run)), message
            outcomes["refused"] += 1
        else:
            # Only tensor data changed: a checkpoint with other finite weights, which is what the file says.
            assert all(torch.isfinite(v).all() for v in model.state_dict().values())
            outcomes["loaded"] += 1
            run.load_checkpoint(path)
            train(run, model, opt, sched, 2)
            before = state_of(model, opt, run)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
    assert grown < 200, f"the reader's peak memory grew {grown:.0f} MB"
    assert outcomes["refused"] > len(mutants) // 2
    structural = list(_structural_mutations(snap))
    assert all(_refuses(run, path, tmp_path, m) for m in structural), "every structural mutation is refused"
    train(run, model, opt, sched, 1)
    run.close()


def _refuses(run, good_path, tmp_path, snap) -> bool:
    buf = io.BytesIO()
    torch.save(snap, buf)
    target = str(tmp_path / "structural.pt")
    write_with_checksum(target, buf.getvalue())
    try:
        run.load_checkpoint(target)
    except CheckpointError:
        return True
    run.load_checkpoint(good_path)
    return False


def _patch_first_numel(pk: bytes, numel: int) -> bytes:
    """The pickle with its first storage's element count replaced (BININT1 after the location 'cpu')."""
    i = pk.index(b"X\x03\x00\x00\x00cpu")
    j = i + 8
    while pk[j:j + 1] == b"q":  # BINPUT n
        j += 2
    assert pk[j:j + 1] in (b"K", b"M", b"J")
    width = {b"K": 1, b"M": 2, b"J": 4}[pk[j:j + 1]]
    return pk[:j] + b"\x8a\x08" + struct.pack("<q", numel) + pk[j + 1 + width:]
