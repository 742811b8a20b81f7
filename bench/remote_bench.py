"""The SSH transport's latency over loopback (issue #26; a benchmark, not a test: run it by hand, as root).

    python bench/remote_bench.py [--lrtop .build/release/lrtop] [-n 50]

It starts OpenSSH's sshd on 127.0.0.1 (a throwaway host key and user key, as the end-to-end tests do), a bridged
PyTorch loop "there" (its own socket and state folders), and `lrtop attach` in tmux, then measures what a person
sees, by reading tmux's screen every few milliseconds:

- a command's answer: from the Enter of `:lr X` (tmux send-keys) to `✓ lr X` on the key bar, over N commands half a
  second apart, while the loop steps every 20 ms (the command applies at the next step boundary);
- a record on screen: from just before `run.step(loss=L)` (the loop stamps the time) to L in the status panel, over
  N steps a third of a second apart;
- `lrtop ls h1 h2 h3` of three hosts (three aliases of the server: three master connections), once the masters exist,
  beside what the host itself costs: three `ssh -S MASTER hN true` at once (each command there starts the login
  shell, and root's ~/.bashrc here runs `pyenv init`); and the same against a second server whose sessions get an
  empty HOME (no rc file: lrtop's own cost).

The first two are measured over SSH and, as the baseline, attached locally to the same run. Prints a table with the
load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# Every value differs from the one before in every digit, so the terminal redraws the whole number.
LOSSES = ["0.1111", "0.2222", "0.3333", "0.4444", "0.5555", "0.6666", "0.7777", "0.8888", "0.9999"]


def child(run_dir: str, stamps: str, slow_flag: str) -> None:
    """The training loop: a tiny model, a step every 20 ms, or every 0.33 s once `slow_flag` exists, each loss taken
    from LOSSES in turn and stamped (step, loss, time just before run.step) into `stamps`."""
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import torch
    import lrtop
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    with lrtop.attach(opt, model=model, name=os.path.basename(run_dir), log_dir=os.path.dirname(run_dir),
                      total_steps=1_000_000, announce=False) as run, open(stamps, "a", buffering=1) as out:
        step = 0
        while not run.should_stop:
            x = torch.randn(8, 4)
            loss = ((model(x) - 1) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            value = LOSSES[step % len(LOSSES)]
            t = time.time()
            run.step(loss=float(value))
            out.write(f"{step} {value} {t}\n")
            step += 1
            time.sleep(0.33 if os.path.exists(slow_flag) else 0.02)


class World:
    """sshd on a free loopback port, keys and an ssh config with the aliases loop, h1, h2, h3."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="lrb-", dir="/tmp")
        os.makedirs("/run/sshd", exist_ok=True)
        for sub in ("remote", "state", "local", "tmp"):
            os.makedirs(os.path.join(self.dir, sub), mode=0o700)
        for key in ("host_key", "user_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(self.dir, key)], check=True)
        shutil.copy(os.path.join(self.dir, "user_key.pub"), os.path.join(self.dir, "authorized_keys"))
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        d = self.dir
        with open(f"{d}/sshd.conf", "w") as f:
            f.write(f"ListenAddress 127.0.0.1\nPort {self.port}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n"
                    "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
                    f"UsePAM no\nStrictModes no\nPidFile {d}/sshd.pid\nMaxSessions 50\nMaxStartups 50\n"
                    f"SetEnv XDG_RUNTIME_DIR={d}/remote XDG_STATE_HOME={d}/state\nLogLevel ERROR\n")
        with open(f"{d}/ssh_config", "w") as f:
            for alias in ("loop", "h1", "h2", "h3"):
                f.write(f"Host {alias}\n  HostName 127.0.0.1\n  Port {self.port}\n  User {os.environ.get('USER', 'root')}\n"
                        f"  IdentityFile {d}/user_key\n  IdentitiesOnly yes\n  IdentityAgent none\n"
                        f"  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking accept-new\n  LogLevel ERROR\n")
        # The same server with an empty HOME for its sessions: the login shell reads no rc file.
        os.makedirs(f"{d}/home", mode=0o700)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.plain_port = s.getsockname()[1]
        s.close()
        with open(f"{d}/sshd.conf") as f:
            conf = f.read()
        with open(f"{d}/sshd_plain.conf", "w") as f:
            f.write(conf.replace(f"Port {self.port}", f"Port {self.plain_port}").replace("sshd.pid", "sshd_plain.pid")
                    .replace("SetEnv ", f"SetEnv HOME={d}/home "))
        with open(f"{d}/ssh_config", "a") as f:
            for alias in ("p1", "p2", "p3"):
                f.write(f"Host {alias}\n  HostName 127.0.0.1\n  Port {self.plain_port}\n  User {os.environ.get('USER', 'root')}\n"
                        f"  IdentityFile {d}/user_key\n  IdentitiesOnly yes\n  IdentityAgent none\n"
                        f"  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking accept-new\n  LogLevel ERROR\n")
        self.sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", f"{d}/sshd.conf"], stderr=subprocess.DEVNULL)
        self.sshd_plain = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", f"{d}/sshd_plain.conf"],
                                           stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        for port in (self.port, self.plain_port):
            while time.time() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
        self.lrtop_env = {"LRTOP_SSH_COMMAND": f"ssh -F {d}/ssh_config", "XDG_RUNTIME_DIR": f"{d}/local",
                          "TMPDIR": f"{d}/tmp"}
        self.remote_env = {"XDG_RUNTIME_DIR": f"{d}/remote", "XDG_STATE_HOME": f"{d}/state"}

    def close(self) -> None:
        for pid in os.listdir("/proc"):
            if pid.isdigit() and int(pid) != os.getpid():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if self.dir.encode() in f.read():
                            os.kill(int(pid), 9)
                except OSError:
                    pass
        for server in (self.sshd, self.sshd_plain):
            server.terminate()
            server.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Screen:
    """A tmux session running one command; `wait_for` polls its screen."""

    def __init__(self, command: str, env: dict) -> None:
        self.sock = tempfile.mktemp(prefix="lrb-tmux-", dir="/tmp")
        prefix = "env " + " ".join(f"{k}='{v}'" for k, v in sorted(env.items())) + " "
        subprocess.run(["tmux", "-S", self.sock, "new-session", "-d", "-s", "b", "-x", "130", "-y", "40",
                        f"{prefix}TERM=xterm-256color LANG=C.UTF-8 {command}; sleep 60"], check=True)

    def text(self) -> str:
        return subprocess.run(["tmux", "-S", self.sock, "capture-pane", "-p", "-t", "b"], capture_output=True,
                              text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-S", self.sock, "send-keys", "-t", "b", *keys], check=True)

    def literal(self, text: str) -> None:
        subprocess.run(["tmux", "-S", self.sock, "send-keys", "-t", "b", "-l", text], check=True)

    def wait_for(self, needle: str, timeout: float = 30.0) -> float:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.text():
                return time.time()
            time.sleep(0.002)
        raise TimeoutError(f"no '{needle}' on screen:\n{self.text()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], stderr=subprocess.DEVNULL)
        if os.path.exists(self.sock):
            os.unlink(self.sock)


def percentile(values: list, p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(lrtop: str, target: str, env: dict, stamps: str, slow_flag: str, n: int, tag: str) -> dict:
    screen = Screen(f"{lrtop} attach {target}", env)
    try:
        screen.wait_for("running", 60)
        time.sleep(1)
        # Commands: Enter to ✓.
        if os.path.exists(slow_flag):
            os.unlink(slow_flag)
        time.sleep(0.5)
        acks = []
        for i in range(n):
            # At a person's pace: each answer is shown from the socket at once and again when the run's log brings
            # its event, so commands fired faster than the log's tick would see an older answer over a newer one.
            time.sleep(0.5)
            value = f"{1 + (i + (0 if tag == 'ssh' else 50)) / 1000:.3f}e-4"
            screen.keys(":")
            screen.literal(f"lr {value}")
            t0 = time.time()
            screen.keys("Enter")
            acks.append(screen.wait_for(f"✓ lr {value}") - t0)
        # Records: run.step() to its loss in the status panel.
        open(slow_flag, "w").close()
        time.sleep(1)
        seen = {}
        start = time.time()
        last = None
        while len(seen) < n and time.time() - start < n * 0.33 * 3 + 30:
            text = screen.text()
            for line in text.splitlines():
                if "loss " in line:
                    for value in LOSSES:
                        if f"loss        {value}" in line and value != last:
                            seen.setdefault(len(seen), (value, time.time()))
                            last = value
            time.sleep(0.002)
        with open(stamps) as f:
            stamped = [line.split() for line in f if line.strip()]
        records = []
        for value, t_seen in seen.values():
            before = [float(t) for _, v, t in stamped if v == value and float(t) <= t_seen]
            if before and t_seen - before[-1] < 2:
                records.append(t_seen - before[-1])
        screen.keys("q")
        time.sleep(1)
        return {"ack": acks, "record": records}
    finally:
        screen.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lrtop", default=os.path.join(ROOT, ".build/release/lrtop"))
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--child", nargs=3, metavar=("RUN_DIR", "STAMPS", "SLOW_FLAG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if os.getuid() != 0 or not os.path.exists("/usr/sbin/sshd"):
        sys.exit("remote_bench: needs root and openssh-server (sshd on loopback)")
    load_before = os.getloadavg()
    world = World()
    run_dir = os.path.join(world.dir, "runs", "bench")
    stamps, slow_flag = os.path.join(world.dir, "stamps"), os.path.join(world.dir, "slow")
    env = dict(os.environ, **world.remote_env, OMP_NUM_THREADS="1")
    loop = subprocess.Popen([sys.executable, __file__, "--child", run_dir, stamps, slow_flag], env=env)
    try:
        deadline = time.time() + 120
        while not (os.path.exists(stamps) and os.path.getsize(stamps) > 0) and time.time() < deadline:
            time.sleep(0.2)
        ssh = measure(args.lrtop, "loop:bench", world.lrtop_env, stamps, slow_flag, args.n, "ssh")
        local = measure(args.lrtop, run_dir, world.lrtop_env, stamps, slow_flag, args.n, "local")
        # ls of three hosts, once their masters exist; and the host's own cost of three commands at once.
        lsenv = dict(os.environ, **world.lrtop_env)
        ls, bare, ls_plain, bare_plain = [], [], [], []
        for hosts, timings, baseline in ((["h1", "h2", "h3"], ls, bare), (["p1", "p2", "p3"], ls_plain, bare_plain)):
            ssh_dir = os.path.join(world.dir, "local", f"lrtop-{os.getuid()}", "ssh")
            existing = set(os.listdir(ssh_dir)) if os.path.isdir(ssh_dir) else set()
            subprocess.run([args.lrtop, "ls", *hosts], env=lsenv, capture_output=True, check=True)
            # The masters of these hosts: those this first ls made (the other server's are still open beside them).
            masters = sorted(os.path.join(ssh_dir, n) for n in os.listdir(ssh_dir) if n.endswith(".m") and n not in existing)
            assert len(masters) == len(hosts), masters
            for _ in range(20):
                t0 = time.time()
                out = subprocess.run([args.lrtop, "ls", *hosts], env=lsenv, capture_output=True, text=True)
                timings.append(time.time() - t0)
                rows = [line.split() for line in out.stdout.splitlines()[1:]]
                # Every host lists the bench's run (other runs of this user in the machine's /tmp/lrtop-UID may be
                # listed beside it: the tests of a build running at the same time).
                assert out.returncode == 0 and all([h, "bench"] in [r[:2] for r in rows] for h in hosts), out
                t0 = time.time()
                procs = [subprocess.Popen(["ssh", "-F", f"{world.dir}/ssh_config", "-o", f"ControlPath={m}", h, "true"])
                         for h, m in zip(hosts, masters)]
                for p in procs:
                    p.wait()
                baseline.append(time.time() - t0)
    finally:
        loop.terminate()
        loop.wait()
        world.close()
    load_after = os.getloadavg()
    rows = [("command: Enter to ✓, over SSH", ssh["ack"]), ("command: Enter to ✓, local", local["ack"]),
            ("record: run.step() to screen, over SSH", ssh["record"]),
            ("record: run.step() to screen, local", local["record"]), ("lrtop ls of 3 hosts (warm)", ls),
            ("  3 x ssh -S MASTER host true, at once", bare), ("lrtop ls of 3 hosts, no rc file", ls_plain),
            ("  3 x ssh -S MASTER host true, no rc file", bare_plain)]
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cores)")
    print(f"{'':44}{'n':>4}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}")
    for name, values in rows:
        print(f"{name:44}{len(values):4}{statistics.median(values) * 1000:11.0f}{percentile(values, 95) * 1000:9.0f}"
              f"{max(values) * 1000:9.0f}")
    print(json.dumps({name: [round(v * 1000, 1) for v in values] for name, values in rows}))


if __name__ == "__main__":
    main()
