"""Where a bridged run writes: only in folders that are the user's own, never through a link another user planted,
never over another run; and a squatted socket folder does not stop the run (issue 20, items 1, 3, 17, 18)."""
import os
import socket
import stat
import subprocess
import sys

import pytest
import torch

import lrtop
from conftest import Client, as_user, read_log
from lrtop import server as server_module
from lrtop.safefs import UnsafeFolder


def make(tmp, name="r", **options):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return lrtop.attach(opt, model=model, name=name, log_dir=str(tmp), announce=False, **options), model, opt


def test_a_run_folder_another_user_made_is_refused_naming_owner_and_mode(shared_dir, other_user):
    folder = os.path.join(shared_dir, "r1")
    as_user(other_user, "mkdir", "-m", "0755", folder)
    with pytest.raises(UnsafeFolder) as e:
        make(shared_dir, "r1")
    assert "belongs to lrtop-other" in str(e.value) and "mode 0755" in str(e.value) and folder in str(e.value)
    assert os.listdir(folder) == [], "nothing was written into the other user's folder"


def test_a_run_folder_planted_as_a_link_is_refused_and_its_target_untouched(shared_dir, other_user, tmp_path):
    target = tmp_path / "victim"
    target.mkdir()
    as_user(other_user, "ln", "-s", str(target), os.path.join(shared_dir, "r2"))
    with pytest.raises(UnsafeFolder) as e:
        make(shared_dir, "r2")
    assert "symbolic link" in str(e.value)
    assert os.listdir(target) == []


def test_a_folder_others_can_write_is_refused(tmp_path):
    folder = tmp_path / "open"
    folder.mkdir()
    os.chmod(folder, 0o777)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(UnsafeFolder) as e:
        lrtop.attach(opt, model=model, name="open", log_dir=str(tmp_path), announce=False)
    assert "others can write in it (mode 0777" in str(e.value) and "chmod go-w" in str(e.value)
    assert not opt._optimizer_step_pre_hooks, "a refused attach leaves nothing on the optimizer"
    opt.step()


def test_a_dangling_log_link_in_a_reused_folder_is_not_followed(tmp_path):
    folder = tmp_path / "r3"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere.txt"
    os.symlink(elsewhere, folder / "run.jsonl")
    run, model, opt = make(tmp_path, "r3")
    run.step(loss=1.0)
    run.close()
    assert not elsewhere.exists(), "the log was not created where the link points"
    assert run.name == "r3-2" and read_log(tmp_path / "r3-2" / "run.jsonl")[-1]["type"] == "end"


def test_the_same_name_twice_goes_to_name_2_and_the_first_run_is_untouched(tmp_path, capfd):
    first, model, opt = make(tmp_path, "twice")
    for _ in range(3):
        first.step(loss=1.0)
    first.save_checkpoint()
    first.close()
    before = (tmp_path / "twice" / "run.jsonl").read_bytes()
    ckpts = sorted(os.listdir(tmp_path / "twice" / "checkpoints"))
    second, model, opt = make(tmp_path, "twice")
    assert second.name == "twice-2" and second.run_dir == str(tmp_path / "twice-2")
    for _ in range(3):
        second.step(loss=1.0)
    second.save_checkpoint()
    second.close()
    assert (tmp_path / "twice" / "run.jsonl").read_bytes() == before
    assert sorted(os.listdir(tmp_path / "twice" / "checkpoints")) == ckpts
    assert "holds a run already; this one is" in capfd.readouterr().err
    assert read_log(tmp_path / "twice-2" / "run.jsonl")[0]["type"] == "header"


def test_a_squatted_socket_folder_falls_back_to_a_private_one(shared_dir, other_user, monkeypatch, tmp_path, capfd):
    monkeypatch.setenv("XDG_RUNTIME_DIR", shared_dir)
    monkeypatch.setattr(server_module, "_warned_fallback", False)
    as_user(other_user, "mkdir", "-m", "0777", os.path.join(shared_dir, f"lrtop-{os.getuid()}"))
    runs = [make(tmp_path, f"sq{i}")[0] for i in range(2)]
    for run in runs:
        sock = run.socket_path
        assert not sock.startswith(os.path.join(shared_dir, f"lrtop-{os.getuid()}/"))
        assert stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode) == 0o700
        assert read_log(run.log_path)[0]["socket"] == sock, "the header names the socket, so attach finds it"
        c = Client(sock)
        run.step(loss=1.0)
        assert c.read()["type"] == "hello"
        c.close()
    err = capfd.readouterr().err
    assert err.count("cannot hold this run's socket") == 1, "warned once"
    folders = [os.path.dirname(r.socket_path) for r in runs]
    for run in runs:
        run.close()
    assert not any(os.path.exists(f) for f in folders), "the fallback folders are removed at close"


def test_a_socket_folder_planted_as_a_link_falls_back(monkeypatch, tmp_path):
    runtime = tmp_path / "rt"
    runtime.mkdir()
    (tmp_path / "theirs").mkdir()
    os.symlink(tmp_path / "theirs", runtime / f"lrtop-{os.getuid()}")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    run, model, opt = make(tmp_path, "link")
    assert os.listdir(tmp_path / "theirs") == []
    run.step(loss=1.0)
    run.close()


def test_stale_sockets_of_dead_processes_are_removed_at_start(tmp_path):
    directory = server_module.socket_dir()
    os.makedirs(directory, mode=0o700, exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = os.path.join(directory, f"{int(dead.stdout)}-deadbeef.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(stale)
    s.close()  # a process killed before it could unlink its socket leaves exactly this
    live = os.path.join(directory, f"{os.getppid()}-0badcafe.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(live)
    s.close()
    run, model, opt = make(tmp_path, "stale")
    assert not os.path.exists(stale)
    assert os.path.exists(live), "a live process's socket is left alone"
    os.unlink(live)
    run.close()
