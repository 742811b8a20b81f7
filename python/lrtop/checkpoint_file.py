"""Checkpoint files: written atomically with a SHA-256 checksum beside them, read back only when the checksum
matches and only as tensors and plain data.

`step-0000400.pt` is an ordinary `torch.save` archive (so `torch.load(path, weights_only=True)` opens it too), and
`step-0000400.pt.sha256` holds its checksum in `sha256sum`'s format (`sha256sum -c` checks it). Writing: a temporary
created with O_EXCL|O_NOFOLLOW in the run's checked folder, hashed while torch writes it, fsync, rename, then the
checksum the same way, then an fsync of the folder. Reading: the checksum first (a file that is not what lrtop wrote
is refused before anything is unpickled), then `torch.load(weights_only=True)`, whose unpickler builds only tensors,
numbers, strings and containers (no code runs), then a check of the shape of what came back (`check_layout`).
"""
from __future__ import annotations

import collections
import errno
import hashlib
import io
import math
import os
import re
import threading
import time
from typing import IO, Any, Callable, Optional, cast

import torch

from .safefs import close_quietly, create_file, fsync_folder, process_gone

CHECKSUM_SUFFIX = ".sha256"
# A temporary carries its writer's pid, so a later process can tell a stale one (its writer is gone) from a live one.
_TEMP = re.compile(r"^(?P<name>.+)\.(?P<pid>\d+)\.tmp$")
# Temporaries without a pid (lrtop before checksums) are stale once this old.
LEGACY_TEMP_AGE = 600.0
MAX_CHECKSUM_FILE = 4096
# Steps and epochs every reader of the run log holds exactly (a JSON number, a Swift Int).
MAX_STEP = 2 ** 53


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message is one line naming the file and what is wrong."""


class _HashingWriter:
    """The file object torch.save writes into: every byte goes to the descriptor and into the checksum."""

    def __init__(self, fd: int):
        self.fd = fd
        self.sha = hashlib.sha256()

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        total = len(view)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        return total

    def flush(self) -> None:
        pass


def _unlink_quietly(folder: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=folder)
    except OSError:
        pass


def _create_temporary(folder: int, name: str) -> tuple[str, int]:
    tmp = f"{name}.{os.getpid()}.tmp"
    try:
        return tmp, create_file(folder, tmp, exclusive=True)
    except FileExistsError:
        _unlink_quietly(folder, tmp)  # ours, from a save this process did not finish; never a link (unlinked, not followed)
        return tmp, create_file(folder, tmp, exclusive=True)


def write(folder: int, folder_path: str, name: str, snapshot: dict) -> str:
    """Writes `snapshot` as `name` (and `name.sha256`) in the folder descriptor `folder`; returns the file's path.
    Nothing is left behind when it fails (a full disk, a signal's exception): the temporaries are removed."""
    temps: list[str] = []
    try:
        tmp, fd = _create_temporary(folder, name)
        temps.append(tmp)
        try:
            writer = _HashingWriter(fd)
            torch.save(snapshot, cast(IO[bytes], writer))
            os.fsync(fd)
        finally:
            os.close(fd)
        digest = writer.sha.hexdigest()
        sum_tmp, fd = _create_temporary(folder, name + CHECKSUM_SUFFIX)
        temps.append(sum_tmp)
        try:
            _HashingWriter(fd).write(f"{digest}  {name}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
        temps.remove(tmp)
        os.replace(sum_tmp, name + CHECKSUM_SUFFIX, src_dir_fd=folder, dst_dir_fd=folder)
        temps.remove(sum_tmp)
        fsync_folder(folder)
    finally:
        for t in temps:
            _unlink_quietly(folder, t)
    return os.path.join(folder_path, name)


def remove(folder: int, name: str) -> None:
    """Deletes a checkpoint and its checksum (pruning beyond `checkpoint_keep`)."""
    _unlink_quietly(folder, name)
    _unlink_quietly(folder, name + CHECKSUM_SUFFIX)


def clean_stale_temporaries(folder: int) -> list[str]:
    """Removes temporaries whose writer is gone (a process killed mid-checkpoint); returns their names."""
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    now = time.time()
    for n in names:
        m = _TEMP.match(n)
        stale = False
        if m is not None and (m.group("name").endswith(".pt") or m.group("name").endswith(".pt" + CHECKSUM_SUFFIX)):
            pid = int(m.group("pid"))
            stale = pid == os.getpid() or process_gone(pid)  # this process is not saving while it cleans
        elif n.endswith(".pt.tmp"):
            try:
                st = os.stat(n, dir_fd=folder, follow_symlinks=False)
                stale = now - st.st_mtime > LEGACY_TEMP_AGE
            except OSError:
                stale = False
        if stale:
            _unlink_quietly(folder, n)
            removed.append(n)
    return removed


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(e).__name__}: {first[:200]}" if first else type(e).__name__


def read(path: str) -> dict:
    """Reads a checkpoint lrtop wrote: its checksum first, then a weights-only load. Raises CheckpointError."""
    sum_path = path + CHECKSUM_SUFFIX
    try:
        with open(sum_path, "rb") as f:
            head = f.read(MAX_CHECKSUM_FILE + 1)
    except FileNotFoundError:
        raise CheckpointError(f"lrtop: {path}: no checksum beside it ({os.path.basename(sum_path)}): lrtop loads only "
                              "checkpoints it wrote and can verify; nothing loaded") from None
    except OSError as e:
        raise CheckpointError(f"lrtop: cannot read {sum_path}: {e.strerror or e}; nothing loaded") from None
    m = re.match(rb"^([0-9a-f]{64})  ", head)
    if len(head) > MAX_CHECKSUM_FILE or m is None:
        raise CheckpointError(f"lrtop: {sum_path} is not a checksum lrtop wrote; nothing loaded")
    expected = m.group(1).decode()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CheckpointError(f"lrtop: cannot read {path}: {e.strerror or e}; nothing loaded") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(f"lrtop: {path}: checksum mismatch: the file is not what lrtop wrote (damaged or "
                              "replaced); nothing loaded")
    try:
        snapshot = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # a weights-only unpickler's refusal, a damaged archive: one line, nothing loaded
        raise CheckpointError(f"lrtop: {path}: not a loadable checkpoint ({_one_line(e)}); nothing loaded") from None
    finally:
        del data
    check_layout(snapshot, path)
    return snapshot


# ------------------------------------------------------------------------------------------------ what comes back


def _bad(path: str, what: str) -> CheckpointError:
    return CheckpointError(f"lrtop: {path}: {what}; not a checkpoint lrtop wrote, nothing loaded")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _finite_numbers(xs: Any, n: Optional[int] = None) -> bool:
    return isinstance(xs, list) and (n is None or len(xs) == n) and \
        all(_is_number(x) and math.isfinite(x) for x in xs)


def check_layout(snap: Any, path: str) -> None:
    """The structure of lrtop's own snapshot (`Run._snapshot`), checked before any of it is applied: "lrtop" (the
    step, epoch, label, LRs, optimizer type), "lr_control" (`LRControl.state_dict()`), "optimizer", "model", "rng",
    and "scaler" when there was one."""
    if not isinstance(snap, dict) or not isinstance(snap.get("lrtop"), dict):
        raise _bad(path, "no 'lrtop' section")
    meta = snap["lrtop"]
    groups = meta.get("lrs")
    if not _finite_numbers(groups) or not groups:
        raise _bad(path, "its LRs are missing or not finite")
    n = len(groups)
    if not (_is_int(meta.get("step")) and 0 <= meta["step"] < MAX_STEP and _is_int(meta.get("epoch"))
            and 0 <= meta["epoch"] < MAX_STEP):
        raise _bad(path, f"its step or epoch is not a whole number from 0 to {MAX_STEP - 1}")
    if not isinstance(meta.get("label"), str):
        raise _bad(path, "'label' is not text")
    control = snap.get("lr_control")
    if not isinstance(control, dict):
        raise _bad(path, "no 'lr_control' section")
    for key in ("held", "overridden"):
        v = control.get(key)
        if not (isinstance(v, list) and len(v) == n and all(isinstance(x, bool) for x in v)):
            raise _bad(path, f"'{key}' is not one flag per param group")
    warm = control.get("warmup")
    if not (isinstance(warm, list) and len(warm) == 2 and all(_is_int(x) and x >= 0 for x in warm)):
        raise _bad(path, "'warmup' is not two whole numbers")
    if control.get("spec") is not None and not isinstance(control["spec"], str):
        raise _bad(path, "'spec' is not text")
    if control.get("spec_length") is not None and not (_is_int(control["spec_length"]) and control["spec_length"] > 0):
        raise _bad(path, "'spec_length' is not a whole number of steps")
    for key in ("scheduler", "shadow"):
        if control.get(key) is not None and not isinstance(control[key], dict):
            raise _bad(path, f"the {key} state is not a table")
    if control.get("shadow") is not None and not _finite_numbers(control.get("shadow_lrs"), n):
        raise _bad(path, "'shadow_lrs' is not one finite LR per param group")
    opt = snap.get("optimizer")
    if not (isinstance(opt, dict) and isinstance(opt.get("state"), dict) and isinstance(opt.get("param_groups"), list)
            and len(opt["param_groups"]) == n and all(isinstance(g, dict) for g in opt["param_groups"])):
        raise _bad(path, "the optimizer state is missing or not one entry per param group")
    model = snap.get("model")
    if model is not None and not (isinstance(model, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                                   for k, v in model.items())):
        raise _bad(path, "the model's weights are not a name -> tensor table")
    rng = snap.get("rng")
    if not (isinstance(rng, dict) and isinstance(rng.get("torch"), torch.Tensor) and rng["torch"].dtype == torch.uint8):
        raise _bad(path, "the random-number state is missing")
    if "scaler" in snap and not isinstance(snap["scaler"], dict):
        raise _bad(path, "the scaler state is not a table")


def nonfinite_tensor(tensors: dict) -> Optional[str]:
    """The name of the first floating-point tensor holding NaN or infinity, or None: one device sync for all."""
    names = [k for k, v in tensors.items() if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel()]
    if not names:
        return None
    flags = torch.stack([torch.isfinite(tensors[k]).all() for k in names])
    if bool(flags.all()):
        return None
    bad = (~flags).nonzero()
    return names[int(bad[0])] if bad.numel() else names[0]


def is_enospc(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


class FileWriter:
    """Writes checkpoint files on a thread of its own, one after another, so a step boundary never waits for the
    disk (torch.save and three fsyncs: tens of milliseconds for a small model, seconds for a large one, more when
    the disk is busy). At most `MAX_WAITING` files wait to be written; a checkpoint beyond that stays in memory only
    (the disk is behind: writing more would only queue memory). Keeps the newest `keep` files on disk, deleting
    older ones this run wrote."""

    MAX_WAITING = 2

    def __init__(self, open_folder: Callable[[], int], folder_path: str, keep: int):
        self._open_folder = open_folder
        self.folder_path = folder_path
        self.keep = keep
        self.files: list[str] = []
        self._folder: Optional[int] = None
        self._jobs: collections.deque = collections.deque()
        self._busy = False
        self._cond = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._closed = False

    def submit(self, name: str, snapshot: dict, done: Callable[[Optional[str], Optional[BaseException]], None]) -> bool:
        """Queues `snapshot` to be written as `name`; `done(path, error)` is called on the writer's thread when it is
        written (or failed). False when too many files wait already (nothing queued, `done` not called)."""
        with self._cond:
            if self._closed or len(self._jobs) >= self.MAX_WAITING:
                return False
            self._jobs.append((name, snapshot, done))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="lrtop-checkpoints", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return True

    def write_now(self, name: str, snapshot: dict) -> str:
        """Writes `snapshot` in order with the queued ones and returns when it is on disk (raises what failed)."""
        result: dict = {}
        finished = threading.Event()

        def done(path: Optional[str], error: Optional[BaseException]) -> None:
            result.update(path=path, error=error)
            finished.set()

        with self._cond:
            while not self._closed and len(self._jobs) >= self.MAX_WAITING:
                self._cond.wait()
        if not self.submit(name, snapshot, done):
            raise OSError("the checkpoint writer is closed")
        finished.wait()
        if result["error"] is not None:
            raise result["error"]
        return result["path"]

    def wait(self) -> None:
        """Returns once every queued file is written."""
        with self._cond:
            while self._jobs or self._busy:
                self._cond.wait()

    def close(self) -> None:
        """Writes what is queued, stops the thread, closes the folder."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        close_quietly(self._folder)
        self._folder = None

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if not self._jobs:
                    return
                name, snapshot, done = self._jobs.popleft()
                self._busy = True
            path: Optional[str] = None
            error: Optional[BaseException] = None
            try:
                if self._folder is None:
                    self._folder = self._open_folder()
                    clean_stale_temporaries(self._folder)
                path = write(self._folder, self.folder_path, name, snapshot)
                if path in self.files:
                    self.files.remove(path)
                self.files.append(path)
                while len(self.files) > self.keep:  # `checkpoint_keep` holds for the files too
                    remove(self._folder, os.path.basename(self.files.pop(0)))
            except BaseException as e:  # reported through `done`; the thread goes on with the next one
                error = e
            try:
                done(path, error)
            except Exception:
                pass
            with self._cond:
                self._busy = False
                self._cond.notify_all()
