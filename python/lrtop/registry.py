"""The run registry (docs/registry.md): one small file per live serving process, so `lrtop ls`, `lrtop attach NAME`
and `lrtop runs` find every run of the user from any folder (and, on a shared home, of every node).

The folder is `${XDG_STATE_HOME:-~/.local/state}/lrtop/runs/`: the user's own state folder, never a shared `/tmp`.
It is created 0700 (with its missing parents) and refused when it is a link, not the user's, or writable by the
group or others: a warning line, and the run goes on without an entry (it is still found through its socket folder
and its log's header). An entry, `<host>-<pid>-<8 hex>.json`, mode 0600, is written to a fresh temporary
(O_CREAT|O_EXCL|O_NOFOLLOW) in that folder and renamed over itself, so a reader never sees half a file; its
`heartbeat` is rewritten every `HEARTBEAT_INTERVAL` seconds by the socket's service thread (never the training loop)
and the entry is removed when the run closes. A process killed before it could remove it leaves it behind: any
reader on the same host removes entries whose process is gone, or whose socket is gone once the heartbeat is stale.

Nothing read here is trusted: a reader skips links, non-regular files, files over `MAX_ENTRY_BYTES`, entries that are
not the format's, and stale heartbeats.
"""
from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import re
import secrets
import socket
import stat
import threading
import time
from typing import Callable, Optional

from .safefs import UnsafeFolder, close_quietly, owner_name, process_gone

FORMAT = 1
MAX_ENTRY_BYTES = 16384
HEARTBEAT_INTERVAL = 10.0
# An entry whose heartbeat is older than this is stale: its process is hung, gone, or on a node that went away.
STALE_AFTER = 60.0
# Strings a reader takes (the Swift reader's limit: RemoteSurvey.maxField).
MAX_FIELD = 4096
KINDS = ("lrtop", "plain", "lightning", "hf")
_ENTRY_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_-]{0,62})-(\d{1,10})-[0-9a-f]{8}\.json$")
_TEMP_NAME = re.compile(r"^\.([A-Za-z0-9][A-Za-z0-9_-]{0,62})-(\d{1,10})-[0-9a-f]{8}\.json\.[0-9a-f]{8}\.tmp$")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def short_host() -> str:
    """The host as entries name it: the short hostname (`gpu7` for `gpu7.cluster.example`)."""
    return socket.gethostname().split(".")[0] or "localhost"


def registry_dir(environ=os.environ) -> str:
    """`$XDG_STATE_HOME/lrtop/runs` (XDG_STATE_HOME only when it is an absolute path), else
    `~/.local/state/lrtop/runs`."""
    base = environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "lrtop", "runs")


def open_registry(path: Optional[str] = None, create: bool = True) -> int:
    """The registry folder's descriptor, opened without following a link and checked (a folder, the user's own,
    writable by no one else). Missing folders on the way are created 0700. Raises OSError (UnsafeFolder: refused)."""
    path = path or registry_dir()
    if create:
        _make_private_dirs(path)
    try:
        fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeFolder(f"lrtop: refusing the run registry folder {path}: it is a symbolic link or not a "
                               "folder; remove it (lrtop recreates it) or set XDG_STATE_HOME; this run goes on "
                               "unlisted (lrtop attach RUN_DIR still reaches it)") from None
        raise
    st = os.fstat(fd)
    problem = None
    if st.st_uid != os.geteuid():
        problem = f"it belongs to {owner_name(st.st_uid)}, not to you"
    elif st.st_mode & 0o022:
        problem = f"others can write in it (mode {stat.S_IMODE(st.st_mode):04o}); run 'chmod go-w {path}'"
    if problem is not None:
        os.close(fd)
        raise UnsafeFolder(f"lrtop: refusing the run registry folder {path}: {problem} (or set XDG_STATE_HOME); "
                           "this run goes on unlisted (lrtop attach RUN_DIR still reaches it)")
    return fd


def _make_private_dirs(path: str) -> None:
    """Creates `path` and its missing parents, each 0700 (an existing parent is left as it is)."""
    missing = []
    p = path
    while p and not os.path.lexists(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass


def entry_name(host: str, pid: int) -> str:
    return f"{_safe_host(host)}-{pid}-{secrets.token_hex(4)}.json"


def _safe_host(host: str) -> str:
    """The host as a file name holds it: letters, digits, `-` and `_` (anything else becomes `_`)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", host)[:63].lstrip("-_")
    return cleaned or "host"


def _utc(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Registration:
    """This process's entry: written at once, its heartbeat refreshed by `beat()` (the service thread calls it each
    round; it writes every `HEARTBEAT_INTERVAL` s), removed by `remove()`. Never raises into the run: a write that
    fails (a full disk) is tried again at the next heartbeat; a registry folder lrtop refuses is one warning line."""

    def __init__(self, *, socket_path: str, log: str, run_dir: str, name: str, kind: str, world_size: int,
                 rank: int, start: float, slurm: Optional[dict] = None, warn: Callable[[str], None],
                 path: Optional[str] = None):
        self.path = path or registry_dir()
        self.host = short_host()
        self.entry: dict = {"registry": FORMAT, "host": self.host, "pid": os.getpid(), "socket": socket_path,
                            "log": log, "run_dir": run_dir, "name": name, "kind": kind, "world_size": world_size,
                            "rank": rank, "start": _utc(start), "heartbeat": time.time()}
        if slurm:
            self.entry["slurm"] = slurm
        self.name = entry_name(self.host, os.getpid())
        self._folder: Optional[int] = None
        self._last_beat = 0.0
        self._removed = False
        self._warn = warn
        self._warned_write = False
        # The service thread beats while the loop (or a signal handler on it) may remove: one at a time, so a beat
        # never writes through a descriptor `remove` closed, nor brings back a removed entry. Reentrant: a signal
        # handler may remove while its thread was removing already.
        self._lock = threading.RLock()
        try:
            self._folder = open_registry(self.path)
        except OSError as e:
            warn(f"{e}" if isinstance(e, UnsafeFolder) else
                 f"lrtop: cannot open the run registry folder {self.path} ({e.strerror or e}); this run is not "
                 "listed by lrtop ls (lrtop attach RUN_DIR still reaches it)")
            return
        self._write()

    @property
    def file(self) -> Optional[str]:
        """The entry's path while it is registered."""
        return None if self._folder is None or self._removed else os.path.join(self.path, self.name)

    def beat(self, now: Optional[float] = None) -> None:
        """The heartbeat: rewrites the entry with the time when the last one is `HEARTBEAT_INTERVAL` s old."""
        now = time.monotonic() if now is None else now
        if self._folder is None or self._removed or now - self._last_beat < HEARTBEAT_INTERVAL:
            return
        self._write()

    def _write(self) -> None:
        with self._lock:
            self._write_locked()

    def _write_locked(self) -> None:
        folder = self._folder
        if folder is None or self._removed:
            return
        self._last_beat = time.monotonic()
        self.entry["heartbeat"] = round(time.time(), 3)
        data = json.dumps(self.entry, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")
        if len(data) > MAX_ENTRY_BYTES:  # only paths of thousands of bytes: readers would skip it
            return
        temp = f".{self.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600, dir_fd=folder)
            try:
                os.fchmod(fd, 0o600)  # whatever the umask
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.rename(temp, self.name, src_dir_fd=folder, dst_dir_fd=folder)
        except OSError as e:
            try:
                os.unlink(temp, dir_fd=folder)
            except OSError:
                pass
            if not self._warned_write:
                self._warned_write = True
                self._warn(f"lrtop: cannot write this run's registry entry in {self.path} ({e.strerror or e}); "
                           "lrtop tries again at each heartbeat")

    def remove(self) -> None:
        """Removes the entry (the run ended); safe to call twice, from a signal handler or at exit. A process forked
        from the run (its atexit handlers run at its exit) leaves the run's entry alone."""
        if self._removed or os.getpid() != self.entry["pid"]:
            return
        self._removed = True
        with self._lock:
            folder, self._folder = self._folder, None
            if folder is None:
                return
            try:
                os.unlink(self.name, dir_fd=folder)
            except OSError:
                pass
            close_quietly(folder)


def valid_entry(obj: object) -> Optional[dict]:
    """`obj` when it is an entry of this format with the fields a viewer needs, each of its type; else None."""
    if not isinstance(obj, dict) or obj.get("registry") != FORMAT:
        return None
    host, pid, sock = obj.get("host"), obj.get("pid"), obj.get("socket")
    if not (_text(host) and isinstance(pid, int) and _count(pid) and pid > 0 and isinstance(sock, str) and
            _text(sock) and sock.startswith("/")):
        return None
    for key in ("log", "run_dir", "name", "kind", "start"):
        if key in obj and obj[key] is not None and not _text(obj[key]):
            return None
    for key in ("world_size", "rank"):
        if key in obj and obj[key] is not None and not _count(obj[key]):
            return None
    beat = obj.get("heartbeat")
    if not isinstance(beat, (int, float)) or isinstance(beat, bool) or beat != beat:
        return None
    return obj


def _text(v: object) -> bool:
    return isinstance(v, str) and 0 < len(v.encode("utf-8", "replace")) <= MAX_FIELD and \
        not any(ord(c) < 0x20 or ord(c) == 0x7F for c in v)


def _count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 53


def entries(path: Optional[str] = None, clean: bool = True, now: Optional[float] = None) -> list[dict]:
    """The live entries of the registry, oldest start first. With `clean`, entries of this host whose process is
    gone, or whose socket is gone while their heartbeat is stale, are removed (and temporaries a killed writer left).
    Links, non-regular files, files over `MAX_ENTRY_BYTES`, invalid entries and stale heartbeats are skipped.
    A registry that does not exist, or that lrtop refuses, lists nothing."""
    path = path or registry_dir()
    try:
        folder = open_registry(path, create=False)
    except OSError:
        return []
    now = time.time() if now is None else now
    here = short_host()
    found: list[dict] = []
    try:
        for name in os.listdir(folder):
            temp = _TEMP_NAME.match(name)
            if temp is not None:
                if clean and temp.group(1) == _safe_host(here) and process_gone(int(temp.group(2))):
                    _unlink(folder, name)
                continue
            if _ENTRY_NAME.match(name) is None:
                continue
            entry = _read(folder, name)
            if entry is None:
                continue
            stale = now - entry["heartbeat"] > STALE_AFTER
            if clean and entry["host"].split(".")[0] == here and \
                    (process_gone(entry["pid"]) or stale and not _is_socket(entry["socket"])):
                _unlink(folder, name)
                continue
            if not stale:
                found.append(entry)
    finally:
        os.close(folder)
    found.sort(key=lambda e: (str(e.get("start", "")), e["pid"], e.get("rank") or 0))
    return found


def _read(folder: int, name: str) -> Optional[dict]:
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0), dir_fd=folder)
    except OSError:
        return None  # a link (ELOOP), gone meanwhile
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY_BYTES:
            return None
        data = os.read(fd, MAX_ENTRY_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_ENTRY_BYTES:
        return None
    try:
        return valid_entry(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


def _unlink(folder: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=folder)
    except OSError:
        pass
