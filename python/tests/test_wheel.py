"""The platform wheel as a PyTorch user gets it (#27): scripts/build-wheel makes it, `pip install --no-index` puts it
in a fresh venv without torch, and with PATH and LD_LIBRARY_PATH free of the Swift toolchain the installed `lrtop`
says its versions, lists the six built-in themes, trains headless, and attaches in tmux to a PyTorch loop that runs
the bridge from this checkout; `ldd` of the installed binary names no toolchain library. The sdist beside it installs
too, and its launcher says how to get the binary.

The static release build has its own scratch folder (.build/wheel) and is incremental after the first time; the
first build takes a few minutes, the rest of this file about half a minute.
"""
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

import pytest

import lrtop
from lrtop._version import PROTOCOL, __version__

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIX_THEMES = ["default", "basic", "colorblind", "high-contrast", "light", "mono"]

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64",
                       reason="the wheel is built for Linux x86-64"),
    pytest.mark.skipif(shutil.which("swift") is None, reason="needs Swift 6 to build the wheel (.ci/install)"),
    pytest.mark.skipif(shutil.which("patchelf") is None, reason="needs patchelf to build the wheel (.ci/install)"),
]


def toolchain_root():
    """The Swift toolchain's usr/ folder (swift's own, symlinks resolved)."""
    return os.path.dirname(os.path.dirname(os.path.realpath(shutil.which("swift"))))


def run(args, timeout=120, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def dist():
    """(wheel, sdist) from scripts/build-wheel, with the same Python (its setuptools builds the package)."""
    env = dict(os.environ, LRTOP_PYTHON=sys.executable)
    built = run([os.path.join(ROOT, "scripts", "build-wheel")], timeout=1800, cwd=ROOT, env=env)
    assert built.returncode == 0, built.stdout + built.stderr
    paths = re.findall(r"^build-wheel: (\S+\.(?:whl|tar\.gz)) \(", built.stdout, re.M)
    wheel = next(os.path.join(ROOT, p) for p in paths if p.endswith(".whl"))
    sdist = next(os.path.join(ROOT, p) for p in paths if p.endswith(".tar.gz"))
    return wheel, sdist


def fresh_venv(path):
    """A new venv from the interpreter behind this one: no torch, no lrtop."""
    made = run([sys.executable, "-m", "venv", str(path)])
    assert made.returncode == 0, made.stderr
    return os.path.join(str(path), "bin")


def clean_env(bin_dir, home):
    """What a user's shell without Swift has: the venv's bin first, system folders, no LD_LIBRARY_PATH."""
    swift_bin = os.path.join(toolchain_root(), "bin")
    system = [d for d in ("/usr/local/bin", "/usr/bin", "/bin") if os.path.realpath(d) != os.path.realpath(swift_bin)]
    env = {"PATH": ":".join([bin_dir] + system), "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "TERM": "xterm-256color"}
    assert shutil.which("swift", path=env["PATH"]) is None, f"swift is still on {env['PATH']}"
    return env


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory):
    """The wheel installed offline into a fresh venv: (bin folder, clean environment, seconds pip took)."""
    wheel, _ = dist
    bin_dir = fresh_venv(tmp_path_factory.mktemp("wheel-venv") / "venv")
    home = tmp_path_factory.mktemp("home")
    start = time.monotonic()
    done = run([os.path.join(bin_dir, "pip"), "install", "--no-index", "--disable-pip-version-check", "-q", wheel])
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    print(f"\npip install --no-index {os.path.basename(wheel)}: {seconds:.1f} s")
    return bin_dir, clean_env(bin_dir, home), seconds


def installed_binary(bin_dir):
    python = os.path.join(bin_dir, "python")
    found = run([python, "-c", "import lrtop; print(lrtop.find_lrtop_bin())"], env={"PATH": bin_dir})
    path = found.stdout.strip()
    assert path.endswith(os.path.join("site-packages", "lrtop", "bin", "lrtop")), found.stdout + found.stderr
    return path


def test_the_wheel_is_under_40_mb_and_tagged_by_the_glibc_it_needs(dist, installed):
    wheel, _ = dist
    size = os.path.getsize(wheel)
    assert size <= 40e6, f"{wheel}: {size / 1e6:.1f} MB"
    tag = re.search(r"-py3-none-manylinux_2_(\d+)_x86_64\.whl$", wheel)
    assert tag, wheel
    binary = installed_binary(installed[0])
    libs = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(binary))), "lrtop.libs")
    needs = []
    for f in [binary] + [os.path.join(libs, n) for n in os.listdir(libs)]:
        needs += [int(m) for m in re.findall(r"\bGLIBC_2\.(\d+)\b", run(["objdump", "-p", f]).stdout)]
    assert max(needs) <= int(tag.group(1)), f"needs glibc 2.{max(needs)}, tagged 2.{tag.group(1)}"


def test_version_names_binary_package_and_protocol(installed):
    bin_dir, env, _ = installed
    expected = f"lrtop {__version__} · Python package {__version__} · bridge protocol {PROTOCOL}"
    start = time.monotonic()
    out = run(["lrtop", "--version"], env=env)
    print(f"\nlrtop --version from the wheel: {(time.monotonic() - start) * 1000:.0f} ms")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected
    module = run([os.path.join(bin_dir, "python"), "-m", "lrtop", "--version"], env=env)
    assert module.stdout.strip() == expected, module.stderr


def test_themes_are_all_six_and_it_says_where_it_looked(installed):
    _, env, _ = installed
    out = run(["lrtop", "themes"], env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == SIX_THEMES
    assert all("built in" in line for line in lines[:-1])
    assert lines[-1] == (f"user themes: NAME.theme files, looked for in {env['HOME']}/.config/lrtop/themes "
                         "(no such folder)")


def test_headless_training_runs_from_the_wheel(installed, tmp_path):
    _, env, _ = installed
    out = run(["lrtop", "train", "--headless", "--max-steps", "20"], env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "completed at step 20" in out.stdout
    (run_dir,) = os.listdir(tmp_path / "runs")
    records = [json.loads(line) for line in open(tmp_path / "runs" / run_dir / "run.jsonl")]
    assert records[0]["lrtop_version"] == __version__
    assert sum(r["type"] == "step" for r in records) == 20


def test_the_installed_binary_links_nothing_from_the_toolchain(installed):
    binary = installed_binary(installed[0])
    out = run(["ldd", binary], env=installed[1])
    assert out.returncode == 0, out.stderr
    toolchain_libs = os.path.join(toolchain_root(), "lib", "swift")
    for line in out.stdout.splitlines():
        assert "not found" not in line, out.stdout
        assert toolchain_libs not in line and "libswift" not in line and "Foundation" not in line, out.stdout
        if "=>" in line and "lrtop.libs" not in line:
            assert os.path.basename(line.split()[0]) in ("libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1"), line


def test_torch_is_not_installed_and_attach_says_what_to_install(installed):
    bin_dir, env, _ = installed
    python = os.path.join(bin_dir, "python")
    assert run([python, "-c", "import torch"], env=env).returncode != 0
    out = run([python, "-c", "import lrtop; lrtop.attach"], env=env)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1] == "ModuleNotFoundError: " + lrtop.TORCH_MISSING


class Tmux:
    """A tmux server of its own (socket in tmp), one window running `command` in a clean environment."""

    def __init__(self, tmp_path, command, env, cwd):
        self.socket = str(tmp_path / "tmux.sock")
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "wheel", "-x", "118", "-y", "34", "-c", str(cwd),
                  f"env -i {exports} {command}; echo LRTOP_EXITED=$?; sleep 60")

    def tmux(self, *args):
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True, check=True).stdout

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "wheel")

    def wait_for(self, text, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {text!r} on screen:\n{screen}")

    def close(self):
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_attach_from_the_wheel_steers_a_bridged_loop(installed, tmp_path):
    """The viewer from the wheel, the bridge from this checkout in the torch venv that runs the tests."""
    _, env, _ = installed
    loop_env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), OMP_NUM_THREADS="1")
    with open(tmp_path / "loop.out", "w") as out:
        loop = subprocess.Popen([sys.executable, os.path.join(ROOT, "python", "examples", "plain_loop.py"),
                                 "--steps", "100000", "--step-delay", "0.05", "--name", "wheel-e2e"],
                                cwd=tmp_path, env=loop_env, stdout=out, stderr=subprocess.STDOUT)
    log = tmp_path / "runs" / "wheel-e2e" / "run.jsonl"
    tui = None
    try:
        deadline = time.monotonic() + 180
        while not (log.exists() and '"type":"step"' in log.read_text()):
            assert loop.poll() is None and time.monotonic() < deadline, (tmp_path / "loop.out").read_text()
            time.sleep(0.2)
        tui = Tmux(tmp_path, "lrtop attach runs/wheel-e2e", env, tmp_path)
        tui.wait_for("learning rate")
        tui.wait_for("wheel-e2e")
        tui.tmux("send-keys", "-t", "wheel", ":")
        tui.tmux("send-keys", "-t", "wheel", "-l", "lr *0.5")
        tui.tmux("send-keys", "-t", "wheel", "Enter")
        tui.wait_for("✓ lr *0.5")
        tui.tmux("send-keys", "-t", "wheel", ":")
        tui.tmux("send-keys", "-t", "wheel", "-l", "stop")
        tui.tmux("send-keys", "-t", "wheel", "Enter")
        tui.wait_for("stopped")
        assert loop.wait(timeout=60) == 0, (tmp_path / "loop.out").read_text()
        tui.tmux("send-keys", "-t", "wheel", "q")
        screen = tui.wait_for("LRTOP_EXITED=0")
        assert "the run ended (stopped) at step" in screen
    finally:
        if tui:
            tui.close()
        if loop.poll() is None:
            loop.kill()
            loop.wait()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    commands = [r["text"] for r in records if r["type"] == "event" and r.get("kind") == "command"]
    assert commands == ["lr *0.5", "stop"]
    assert records[-1]["type"] == "end" and records[-1]["reason"] == "stopped"


def test_the_sdist_installs_and_its_launcher_says_how_to_get_the_binary(dist, tmp_path):
    """Built from the sdist as pip builds it where no wheel fits (here offline, with this venv's setuptools), then
    installed into a fresh venv."""
    _, sdist = dist
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "--no-build-isolation",
                 "--disable-pip-version-check", "-q", "-w", str(tmp_path / "built"), sdist], timeout=300)
    assert built.returncode == 0, built.stderr
    (pure,) = os.listdir(tmp_path / "built")
    assert pure == f"lrtop-{__version__}-py3-none-any.whl"
    bin_dir = fresh_venv(tmp_path / "venv")
    done = run([os.path.join(bin_dir, "pip"), "install", "--no-index", "--disable-pip-version-check", "-q",
                str(tmp_path / "built" / pure)], timeout=300)
    assert done.returncode == 0, done.stderr
    env = clean_env(bin_dir, tmp_path)
    for command in (["lrtop", "--version"], [os.path.join(bin_dir, "python"), "-m", "lrtop", "themes"]):
        out = run(command, env=env)
        assert out.returncode == 1
        assert out.stdout == ""
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("lrtop: error: no lrtop binary in this install")
        assert "install the platform wheel" in out.stderr and "build it in a clone" in out.stderr
