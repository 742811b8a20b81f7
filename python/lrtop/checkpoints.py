"""A bridged run's checkpoints: the newest `keep` in memory (for `rollback`, on every rank), their files on rank 0
(checkpoint_file.py: checksums, written on a thread of its own), and the checks that a checkpoint may be taken
(finite weights) and that one fits the run it is loaded into.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Optional

import torch

from . import checkpoint_file as CF
from .checkpoint_file import CheckpointError

Written = Callable[[Optional[str], Optional[str]], None]


class Checkpoints:
    """In-memory checkpoints, newest last, and (with a `files` writer) their files on disk."""

    def __init__(self, keep: int, files: Optional[CF.FileWriter]):
        self.keep = max(1, keep)
        self._files = files
        self._kept: list[dict] = []
        # The run's version (bumped by every step and applied command) at the last checkpoint: a `ckpt` with
        # nothing changed since is that one.
        self.version = -1
        self.last_path: Optional[str] = None

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def latest(self) -> Optional[dict]:
        return self._kept[-1] if self._kept else None

    @property
    def files(self) -> list[str]:
        """The files on disk this run wrote, oldest first (the newest `keep`)."""
        return list(self._files.files) if self._files is not None else []

    @property
    def folder_path(self) -> Optional[str]:
        return self._files.folder_path if self._files is not None else None

    def unchanged_since_last(self, version: int) -> bool:
        return bool(self._kept) and self.version == version

    def keep_snapshot(self, snapshot: dict, version: int) -> None:
        self._kept.append(snapshot)
        del self._kept[:-self.keep]
        self.version = version
        self.last_path = None

    def write_now(self, snapshot: dict) -> Optional[str]:
        """Writes the file in order with the queued ones; returns its path once on disk (None without files)."""
        if self._files is None:
            return None
        name = file_name(snapshot)
        try:
            self.last_path = self._files.write_now(name, snapshot)
        except OSError as e:
            raise CheckpointError(f"kept in memory for rollback, but {os.path.join(self._files.folder_path, name)} "
                                  f"could not be written: {e.strerror or e}") from None
        return self.last_path

    def write_later(self, snapshot: dict, written: Written) -> Optional[str]:
        """Queues the file; `written(path, error)` is called on the writer's thread when it is on disk or failed.
        Returns None when queued, else why there is no file (kept in memory only)."""
        if self._files is None:
            return "kept in memory"
        files = self._files
        name = file_name(snapshot)

        def done(path: Optional[str], error: Optional[BaseException]) -> None:
            if error is None:
                self.last_path = path
                written(path, None)
            else:
                written(None, f"kept in memory for rollback, but {os.path.join(files.folder_path, name)} could not "
                              f"be written: {getattr(error, 'strerror', None) or error}")

        if not files.submit(name, snapshot, done):
            return (f"kept in memory for rollback; its file is not written: {files.MAX_WAITING} earlier checkpoints "
                    "are still being written (the disk is slow)")
        return None

    def close(self) -> None:
        """Writes (and answers) the files still queued."""
        if self._files is not None:
            self._files.close()

    def state_dict(self) -> dict:
        """What is on disk (the in-memory checkpoints themselves are what a state dict would copy)."""
        return {"files": self.files, "last_path": self.last_path, "in_memory": len(self._kept)}


def file_name(snapshot: dict) -> str:
    return f"step-{snapshot['lrtop']['step']:07d}.pt"


def nonfinite(model: Optional[torch.nn.Module], optimizer: torch.optim.Optimizer, group_names: list[str]) -> \
        Optional[str]:
    """The first weight (or optimizer state) holding NaN or infinity, by name; None when all are finite."""
    tensors: dict = {}
    if model is not None:
        tensors.update(model.state_dict())
    else:
        for gi, g in enumerate(optimizer.param_groups):
            for pi, p in enumerate(g["params"]):
                tensors[f"param {pi} of group {group_names[gi]}"] = p.detach()
    for pi, state in enumerate(optimizer.state.values()):
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer {key} of param {pi}"] = value
    return CF.nonfinite_tensor(tensors)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def scheduler_class(scheduler: Any) -> str:
    cls = type(scheduler)
    return getattr(cls, "_lrtop_base", cls).__name__


def check_fits(snap: dict, path: str, *, optimizer: torch.optim.Optimizer, model: Optional[torch.nn.Module],
               user_scheduler: Any) -> None:
    """Refuses a checkpoint (already checked for lrtop's layout) that is not of this run's shape, before anything
    changes: another optimizer type or settings, other groups or parameter counts, other weights, state that does
    not fit its parameter, values that are not finite, another kind of user scheduler."""
    def refuse(what: str) -> CheckpointError:
        return CheckpointError(f"lrtop: {path}: {what}; nothing loaded")

    meta, saved = snap["lrtop"], snap["optimizer"]
    mine = optimizer.state_dict()
    kind = meta.get("optimizer")
    if kind is not None and kind != type(optimizer).__name__:
        raise refuse(f"it is a checkpoint of a {kind} optimizer and this run steps a {type(optimizer).__name__}")
    if len(saved["param_groups"]) != len(mine["param_groups"]):
        raise refuse(f"it has {len(saved['param_groups'])} param groups and this run {len(mine['param_groups'])}")
    ids: dict = {}
    for i, (sg, mg) in enumerate(zip(saved["param_groups"], mine["param_groups"])):
        keys, my_keys = set(sg) - {"initial_lr", "name"}, set(mg) - {"initial_lr", "name"}
        if keys != my_keys:
            raise refuse(f"its param group {i} has the settings of another optimizer (differing in "
                         f"{', '.join(sorted(keys ^ my_keys))})")
        params = sg.get("params")
        if not (isinstance(params, list) and len(params) == len(mg["params"]) and all(_is_int(x) for x in params)):
            raise refuse(f"its param group {i} does not hold this run's {len(mg['params'])} parameters")
        for saved_id, my_id in zip(params, mg["params"]):
            ids[saved_id] = my_id
    by_id = dict(zip([x for g in mine["param_groups"] for x in g["params"]],
                     [p for g in optimizer.param_groups for p in g["params"]]))
    for key, state in saved["state"].items():
        if key not in ids or not isinstance(state, dict):
            raise refuse("its optimizer state names a parameter the run does not have")
        param = by_id[ids[key]]
        for name, value in state.items():
            if isinstance(value, torch.Tensor) and value.numel() > max(1, param.numel()):
                raise refuse(f"its optimizer state '{name}' does not fit parameter {key} "
                             f"({list(value.shape)} for {list(param.shape)})")
    weights = snap.get("model")
    if model is not None:
        if weights is None:
            raise refuse("it holds no model weights (saved without model=)")
        expected = model.state_dict()
        if set(weights) != set(expected):
            missing, extra = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
            raise refuse("its weights are not this model's (" + "; ".join(
                x for x in (f"missing {', '.join(missing[:3])}" if missing else "",
                            f"unexpected {', '.join(extra[:3])}" if extra else "") if x) + ")")
        for k, v in weights.items():
            if v.shape != expected[k].shape or v.dtype != expected[k].dtype:
                raise refuse(f"its weight {k} is {v.dtype} {list(v.shape)}, this model's "
                             f"{expected[k].dtype} {list(expected[k].shape)}")
    tensors = dict(weights or {})
    for pi, state in saved["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer {name} of param {pi}"] = value
    bad = CF.nonfinite_tensor(tensors)
    if bad is not None:
        raise refuse(f"its {bad} holds NaN or infinity")
    user = meta.get("scheduler")
    if user is not None and user_scheduler is not None and user != scheduler_class(user_scheduler):
        raise refuse(f"it was saved with a {user} schedule and this run has a {scheduler_class(user_scheduler)}")
    saved_schedule = snap["lr_control"]
    if user_scheduler is not None and saved_schedule["spec"] is None and saved_schedule["scheduler"] is not None \
            and set(saved_schedule["scheduler"]) != set(user_scheduler.state_dict()):
        raise refuse("its schedule's state is not this run's scheduler's")
