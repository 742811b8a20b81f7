"""Where lrtop writes: folders that are the user's own, files created inside them without following links.

A run folder lives where the user points it, often a shared directory. Another local user who can create or replace
entries there could make lrtop append the log to their file or overwrite one with a checkpoint by planting a
symbolic link. So every folder lrtop writes in is opened once, without following a link in its last component, and
checked through the open descriptor: a directory, owned by this user, writable by nobody else. Every file is then
created relative to that descriptor with O_NOFOLLOW (temporaries with O_EXCL too), so nothing renamed or linked into
the path afterwards can redirect a write.
"""
from __future__ import annotations

import errno
import os
import pwd
import stat
from typing import Optional

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# New folders: readable by others as the user's umask allows, never writable by them.
FOLDER_MODE = 0o755
FILE_MODE = 0o644


class UnsafeFolder(PermissionError):
    """A folder lrtop refuses to write in; the message names the folder, its owner and mode, and what to do."""


def owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def check_private(path: str, st: os.stat_result, what: str = "run folder") -> None:
    """Refuses a folder that is not a directory, not this user's, or writable by its group or others."""
    me = os.geteuid()
    mode = stat.S_IMODE(st.st_mode)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeFolder(f"lrtop: {path} is not a folder; choose another name or log_dir")
    if st.st_uid != me:
        raise UnsafeFolder(f"lrtop: refusing the {what} {path}: it belongs to {owner_name(st.st_uid)} (mode "
                           f"{mode:04o}), not to you ({owner_name(me)}); choose another name or log_dir")
    if mode & 0o022:
        raise UnsafeFolder(f"lrtop: refusing the {what} {path}: others can write in it (mode {mode:04o}, owner "
                           f"{owner_name(st.st_uid)}); run 'chmod go-w {path}' or choose another log_dir")


def open_folder(name: str, *, parent: Optional[int] = None, path: Optional[str] = None, create: bool = False,
                what: str = "run folder") -> int:
    """Opens the folder `name` (relative to the folder descriptor `parent`, or a path) without following a link,
    creating it (mode 0755) when asked, and checks it is private; returns its descriptor."""
    shown = path or name
    if create:
        try:
            os.mkdir(name, FOLDER_MODE, dir_fd=parent)
        except FileExistsError:
            pass
    try:
        fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=parent)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafeFolder(f"lrtop: refusing the {what} {shown}: it is a symbolic link or not a folder; lrtop "
                               "never writes through a link: give the real folder") from None
        raise
    try:
        check_private(shown, os.fstat(fd), what)
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_file(folder: int, name: str, *, exclusive: bool = True, append: bool = False) -> int:
    """Creates `name` in the folder descriptor `folder` for writing, never through a link (O_NOFOLLOW); with
    `exclusive` (the default) it must not exist yet (O_EXCL)."""
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | _CLOEXEC
    if exclusive:
        flags |= os.O_EXCL
    if append:
        flags |= os.O_APPEND
    return os.open(name, flags, FILE_MODE, dir_fd=folder)


def holds_a_run(folder: int) -> bool:
    """Whether a run already wrote here (its log or checkpoints): a second run must not append or overwrite."""
    try:
        names = set(os.listdir(folder))
    except OSError:
        return True
    return "run.jsonl" in names or "checkpoints" in names


def process_gone(pid: int) -> bool:
    """Whether no process has this pid (a leftover of its is stale); False when it lives or cannot be told."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def fsync_folder(folder: int) -> None:
    try:
        os.fsync(folder)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself is atomic


def close_quietly(fd: Optional[int]) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


MAX_NAME_SUFFIX = 1000


def open_run_folder(log_dir: str, name: str, suffix: Optional[int] = None) -> tuple[str, int, int]:
    """Opens the run folder `log_dir/name`, created if needed, as (path, descriptor, suffix). A folder that holds a
    run already (its `run.jsonl` or `checkpoints/`) is left alone: the run goes to `name-2`, `name-3`, ... as the
    first free one (the suffix; 1 for `name` itself). With `suffix` given (another DDP rank's choice), that one."""
    full = os.path.abspath(os.path.join(log_dir, name))
    parent, leaf = os.path.split(full)
    if not leaf:
        raise ValueError(f"lrtop: the run name {name!r} names no folder")
    os.makedirs(parent, exist_ok=True)
    parent_fd = os.open(parent, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        candidates = [suffix] if suffix is not None else range(1, MAX_NAME_SUFFIX + 1)
        for n in candidates:
            cand = leaf if n == 1 else f"{leaf}-{n}"
            path = os.path.join(parent, cand)
            fd = open_folder(cand, parent=parent_fd, path=path, create=True)
            if suffix is None and holds_a_run(fd):
                os.close(fd)
                continue
            return path, fd, n
    finally:
        os.close(parent_fd)
    raise FileExistsError(f"lrtop: {full} and {MAX_NAME_SUFFIX - 1} numbered folders beside it hold runs already; "
                          "choose another name")
