"""`lrtop.attach(...)`: a PyTorch run logged in lrtop's format and steered from `lrtop attach` at step boundaries.

`Run` is a façade over the concerns it composes, the way Lightning's callbacks sit over fabric:

- `LRControl` (lrcontrol.py): who writes the LR (the schedule, manual changes, hold, release, warmup, `sched`);
- `DivergenceGuard` (guard.py): when a loss means the run diverged;
- `Checkpoints` (checkpoints.py, checkpoint_file.py): what a rollback returns to, and its files;
- the run log (runlog.py), the control socket (server.py), DDP's command exchange (distributed.py), signals
  (signals.py), the find-lr mode (rangetest.py);
- what `lrtop runs` reads without the log: the run registry's entry (registry.py), the status's figures
  (livefigures.py), the threads' stacks (stacks.py).

The training loop calls `run.step()` once per optimizer step: it logs the step, checks the guard, applies the
commands that arrived (a bounded share per boundary), and blocks there while the run is paused.
"""
from __future__ import annotations

import atexit
import collections
import copy
import datetime as _dt
import functools
import math
import os
import random
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from . import checkpoint_file as CF
from . import commands as C
from ._version import __version__
from .checkpoint_file import CheckpointError
from .checkpoints import (SHARDED_NOTE, Checkpoints, check_fits, is_sharded, load_sharded_state, nonfinite,
                          scheduler_class, sharded_state)
from .devicevalues import Deferred, DeviceValues, gpu_stats, ready
from .distributed import CommandChannel
from .engines import unwrap as unwrap_engine
from .guard import DivergenceGuard, GuardAction
from .livefigures import LogFigures, StepClock
from .lrcontrol import LRControl
from .rangetest import RangeTester, RangeTestResult
from .registry import Registration, short_host
from .metrics import metric_values
from .runlog import RunLogWriter, number, numbers
from .schedulers import shadow_optimizer
from .safefs import close_quietly, open_folder, open_run_folder
from .server import ControlServer
from .signals import SignalHandlers, name as signal_name
from .slurm import slurm_job
from .specs import SpecError

# Commands one step boundary applies at most; the rest wait for the next boundaries (a flood never stalls a step).
MAX_COMMANDS_PER_BOUNDARY = 32
# Commands whose work is more than setting a few numbers: a boundary applies a few of them at most.
COSTLY_VERBS = frozenset(("ckpt", "rollback", "eval", "find-lr", "sched"))
MAX_COSTLY_PER_BOUNDARY = 4
# Commands taken from the socket and waiting for their boundary, at most (the server holds as many more).
MAX_WAITING_COMMANDS = 1024
# The GPU's memory is looked at this often (seconds); past this share of the device at its peak, an event warns.
GPU_STATS_INTERVAL = 1.0
GPU_MEMORY_WARNING = 0.9
GPU_MEMORY_REARM = 0.8
# While a viewer watches, the log is flushed this often (its charts trail the loop by a service tick, not a second).
VIEWED_FLUSH_INTERVAL = 0.05


@dataclass
class _Pending:
    """A command to apply at the next step boundary: from a socket client (rank 0) or the run itself."""
    text: str
    id: object = None
    client: Any = None
    origin: str = "socket"  # "socket" | "guard" | "api" | "signal"
    acked: bool = False
    command: Optional[C.Command] = None  # parsed on rank 0
    same_as: Optional["_Pending"] = None  # a `ckpt` right behind this one: answered by its checkpoint
    error: Optional[str] = None  # why it failed, when it did
    at: Optional[int] = None  # the guard's: the step whose loss diverged (its rollback returns to before it)


class Run:
    """One steered training run. Create it with `lrtop.attach`; call `step()` after each `optimizer.step()`."""

    def __init__(self, optimizer: Optional[torch.optim.Optimizer], scheduler: Any = None, *, lr: Optional[float] = None,
                 model: Optional[torch.nn.Module] = None, scaler: Any = None, name: Optional[str] = None,
                 log_dir: str = "runs", total_steps: Optional[int] = None, steps_per_epoch: Optional[int] = None,
                 batch_size: Optional[int] = None, config: Optional[dict] = None, seed: Optional[int] = None,
                 eval_fn: Optional[Callable[[], Optional[dict]]] = None, guard: GuardAction = "pause",
                 guard_factor: float = 10.0, checkpoint_keep: int = 5, announce: bool = True,
                 epoch_base: Optional[int] = None, framework: str = "plain",
                 scheduler_stepped_externally: Optional[bool] = None):
        # accelerate's wrappers: what they wrap is steered (engines.py); DeepSpeed's engine is refused, with why.
        optimizer, scheduler, engine = unwrap_engine(optimizer, scheduler)
        # A loop without torch.optim (it updates the weights itself with a float LR): the LR lives here, in the one
        # group of a stand-in optimizer that is never stepped; the loop reports it (`step(lr=)`) and reads `run.lr`.
        self._manual = optimizer is None and lr is not None
        if self._manual:
            if not (isinstance(lr, (int, float)) and C.float32_finite(float(lr)) and lr >= 0):
                raise ValueError(f"lrtop.attach: lr={lr!r} is not an LR (a number >= 0)")
            # Marked as stepped, as the shadow schedule's optimizer is: PyTorch's scheduler order check stays quiet.
            optimizer = shadow_optimizer(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=float(lr)))
        elif not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(_not_an_optimizer(optimizer))
        elif lr is not None:
            raise TypeError("lrtop.attach: lr= is for a loop without torch.optim; with an optimizer, lrtop reads "
                            "and sets the LR in its param groups")
        assert optimizer is not None
        if epoch_base not in (None, 0, 1):
            raise ValueError(f"lrtop: epoch_base={epoch_base!r}: the script numbers its epochs from 0 or 1")
        # How the script numbers epochs (0 or 1; None: learnt from the first `step(epoch=...)`). Records are 0-based.
        self._epoch_base: Optional[int] = epoch_base
        self._script_epoch: Optional[int] = None
        self._epoch_steps = 0
        self._guard = DivergenceGuard(guard, guard_factor)
        # The step's values: floats now, or device values that arrive a window later (devicevalues.py); the losses
        # the guard has not seen yet wait here, in step order, as (step, loss, skipped by GradScaler).
        self._values = DeviceValues()
        self._unchecked: collections.deque = collections.deque()
        self._guard_queued = False  # a trip waits for its boundary: the losses behind it are not judged again
        # What rank 0 adds to the next step record: the exchange's step times per rank, the GPU's memory.
        self._window_metrics: Optional[dict] = None
        self._gpu = torch.cuda.is_available() and torch.cuda.is_initialized()
        self._gpu_checked = 0.0
        self._gpu_stats: Optional[dict] = None
        self._gpu_warned = False
        self._sweeps = RangeTester(self)
        self._optimizer = optimizer
        self._model = model
        self._scaler = scaler
        self._framework = framework
        self._total_steps = total_steps
        self._steps_per_epoch = steps_per_epoch
        self._batch_size = batch_size
        self._eval_fn = eval_fn
        self._announce = announce
        groups = optimizer.param_groups
        self._group_names = [str(g.get("name", "default" if len(groups) == 1 else i)) for i, g in enumerate(groups)]
        self._lr = LRControl(optimizer, scheduler, stepped_externally=scheduler_stepped_externally,
                             remaining=self._remaining, on_replaced=self._on_scheduler_replaced)

        self._step = 0
        self._epoch = 0
        self._paused = False
        # Why the run is paused, in one line (the status's `reason`): the guard's reason, a viewer, the script.
        self._pause_reason: Optional[str] = None
        self._applying_origin = "socket"
        self._steps_while_paused = 0
        self._stop_reason: Optional[str] = None
        self._stopped_by: Optional[str] = None
        # The status's `ended` once the run has closed: its end reason in a few words.
        self._ended: Optional[str] = None
        self._state = "running"
        self._last_loss: Any = math.nan
        self._best_eval_loss: Optional[float] = None
        self._best_accuracy: Optional[float] = None
        self._final_accuracy: Optional[float] = None
        self._skipped_steps = 0
        self._last_scale: Any = math.nan
        self._shown_scale: Optional[float] = None
        self._optimizer_steps = 0
        self._lrs_used: Optional[list[float]] = None
        self._warmup_restore: Optional[list[float]] = None
        self._last_step_time = time.perf_counter()
        self._pending: list[_Pending] = []
        self._closed = False
        # Bumped by every step and applied command: a `ckpt` with nothing changed since the last one reuses it.
        self._version = 0

        # DDP: rank 0 logs and takes commands; every rank applies the same commands at the same step, and serves its
        # own status and stacks (`_open_rank_socket`).
        dist = torch.distributed
        self._distributed = dist.is_available() and dist.is_initialized()
        self._rank = dist.get_rank() if self._distributed else 0
        self._world_size = dist.get_world_size() if self._distributed else 1
        self._channel = CommandChannel(self._distributed)

        self._post_hook: Any = None
        # The narrowest floating dtype the optimizer steps: an LR beyond its range overflows at optimizer.step().
        self._lr_limit = _lr_limit(optimizer)
        # The groups' LR tensors (None: floats everywhere): kept as the groups' LRs, written in place.
        tensors = [g["lr"] if isinstance(g["lr"], torch.Tensor) else None for g in optimizer.param_groups]
        self._lr_tensors: Optional[list[Optional[torch.Tensor]]] = \
            tensors if any(t is not None for t in tensors) else None
        self._last_good_lrs = self.lrs
        self._lr_overflow: Optional[str] = None

        self._name = name or _default_name()
        self._folder: Optional[int] = None
        self._writer: Optional[RunLogWriter] = None
        self._server: Optional[ControlServer] = None
        # DDP ranks other than 0: a server of their own (status, stacks; commands refused: they go to the job).
        self._rank_server: Optional[ControlServer] = None
        self._registration: Optional[Registration] = None
        # The status's figures: the log's records as they are encoded, and the loop's step times as the service
        # thread sees them (livefigures.py): nothing added to the step.
        self._figures = LogFigures()
        self._clock = StepClock()
        self._start = time.time()
        cfg = {"optimizer": type(optimizer).__name__, "lr": "/".join(repr(x) for x in self._lr.base_lrs),
               "framework": framework, "world_size": str(self._world_size)}
        if engine is not None:
            cfg["engine"] = engine
        if scheduler is not None:
            cfg["schedule"] = type(scheduler).__name__
        if batch_size:
            cfg["batch_size"] = str(batch_size)
        cfg.update({str(k): str(v) for k, v in (config or {}).items()})
        self._config = cfg
        self._seed = seed if seed is not None else torch.initial_seed()
        # The run's folder: rank 0 opens it (refusing one that is not the user's own, or a link) and picks `name-2`
        # when `name` holds a run already; every rank gets the same name.
        suffix, refused = 1, None
        if self._rank == 0:
            try:
                self._run_dir, self._folder, suffix = open_run_folder(log_dir, self._name)
            except OSError as e:
                refused, suffix = e, 0  # the other ranks are told (0), so none waits for a run that will not start
        suffix = self._channel.agree(suffix)
        if refused is not None:
            raise refused
        if suffix == 0:
            raise RuntimeError(f"lrtop: rank 0 could not open the run folder {os.path.join(log_dir, self._name)} "
                               "(its error says why)")
        if suffix != 1:
            self._name = f"{self._name}-{suffix}"
        if self._rank != 0:
            self._run_dir = os.path.abspath(os.path.join(log_dir, self._name))
        self._log_path = os.path.join(self._run_dir, "run.jsonl")
        files: Optional[CF.FileWriter] = None
        # FSDP2 (`fully_shard`): each rank holds its shards; snapshots go through torch.distributed.checkpoint's
        # state dicts, sharded, never gathered, and stay in memory (a file on rank 0 would hold its shard only).
        self._sharded = is_sharded(model, optimizer)
        if self._rank == 0 and not self._sharded:
            folder = self._folder
            checkpoints_path = os.path.join(self._run_dir, "checkpoints")
            files = CF.FileWriter(lambda: open_folder("checkpoints", parent=folder, path=checkpoints_path,
                                                      create=True, what="checkpoints folder"),
                                  checkpoints_path, max(1, checkpoint_keep))
        self._checkpoints = Checkpoints(checkpoint_keep, files, no_file_note=SHARDED_NOTE if self._sharded else None)
        self._signal: Optional[int] = None
        self._checkpoint_requested = False
        if self._rank == 0:
            try:
                self._open_log_and_socket(log_dir, name, suffix)
            except BaseException:
                if self._server is not None:
                    self._server.close()
                if self._registration is not None:
                    self._registration.remove()
                close_quietly(self._folder)
                raise
        else:
            self._open_rank_socket()
        if guard == "rollback":
            # The guard's first rollback has somewhere to go: the state at attach, in memory (no file).
            try:
                self._keep_checkpoint("start")
            except CheckpointError:
                pass  # weights that are not finite at attach: the guard pauses instead, saying there is none
        # Last, once nothing above can fail: the pre-hook counts the steps and reads the LRs they use; the post-hook,
        # which puts the LR back after a `warmup` step, is registered by the pre-hook only while a warmup runs (one
        # hook call less per step).
        self._pre_hook = optimizer.register_step_pre_hook(self._pre_step)
        self._signals = SignalHandlers(note=self._note_signal, flush=self.flush, finish=self._finish_on_signal,
                                       warning=self._request_checkpoint, busy=self._writing_on_this_thread)
        self._exit_hook = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._exit_hook)

    def _open_log_and_socket(self, log_dir: str, name: Optional[str], suffix: int) -> None:
        assert self._folder is not None
        self._writer = RunLogWriter(self._folder, "run.jsonl", self._log_path, self._start,
                                    on_trouble=self._log_trouble, on_encoded=self._figures.observe)
        try:
            self._server = ControlServer(self._hello(), self._status, self._on_malformed, self._tick, warn=_warn,
                                         records=self._writer)
        except OSError as e:  # no socket (a path too long, a full /tmp): the run trains and logs without one
            _warn(f"lrtop: cannot open this run's control socket ({e.strerror or e}); it trains and logs, but "
                  "lrtop attach can only watch it")
        extra: dict = {"source": "pytorch", "framework": self._framework, "world_size": self._world_size}
        job = slurm_job()
        if job:
            extra["slurm"] = job
        if self._server is not None:
            extra = {"socket": self._server.path, **extra}
        if self._epoch_base is not None:
            extra["epoch_base"] = self._epoch_base
        self._writer.header(
            version=__version__,
            start_time=_dt.datetime.fromtimestamp(self._start, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            seed=self._seed, groups=self._group_names, steps_per_epoch=self._steps_per_epoch or 0,
            total_steps=self._total_steps, config=self._config, extra=extra)
        self._register(job)
        if self._announce:
            print(f"lrtop: steer this run with: lrtop attach {self._run_dir}", file=sys.stderr, flush=True)
        if suffix != 1:
            _warn(f"lrtop: {os.path.join(os.path.abspath(log_dir), name or '')} holds a run already; this one is "
                  f"{self._run_dir}")

    def _open_rank_socket(self) -> None:
        """A DDP rank other than 0: a server of its own, for what only this rank can tell (its step, its step times,
        its threads' stacks) while rank 0's socket steers the job; registered with its rank. Without one (a socket
        that cannot be opened) the rank trains as before."""
        refusal = (f"rank {self._rank} takes no commands: send them to the job (rank 0's socket, lrtop attach "
                   f"{self._run_dir})")
        try:
            self._rank_server = ControlServer(self._hello(), self._status, lambda error: None, self._every_round,
                                              warn=_warn, rank=self._rank, refuse_commands=refusal)
        except OSError as e:
            _warn(f"lrtop: rank {self._rank}: cannot open its socket ({e.strerror or e}); lrtop runs shows this "
                  "rank through rank 0's figures only")
            return
        self._register(slurm_job())

    def _register(self, job: Optional[dict]) -> None:
        """The registry entry (docs/registry.md) of this process's socket; none without a socket."""
        server = self._server or self._rank_server
        if server is None:
            return
        kind = self._framework if self._framework in ("plain", "lightning", "hf") else "plain"
        self._registration = Registration(socket_path=server.path, log=self._log_path, run_dir=self._run_dir,
                                          name=self._name, kind=kind, world_size=self._world_size, rank=self._rank,
                                          start=self._start, slurm=job, warn=_warn)

    # ------------------------------------------------------------------ what a user reads

    @property
    def name(self) -> str:
        """The run's name: its folder's (`NAME-2` when `NAME` held a run already)."""
        return self._name

    @property
    def run_dir(self) -> str:
        return self._run_dir

    @property
    def log_path(self) -> str:
        return self._log_path

    @property
    def socket_path(self) -> Optional[str]:
        """The control socket `lrtop attach` connects to (rank 0; None elsewhere or without one)."""
        return self._server.path if self._server is not None else None

    @property
    def step_count(self) -> int:
        """Optimizer steps taken (a rollback returns to the checkpoint's; a find-lr sweep's are not counted)."""
        return self._step

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def state(self) -> str:
        """`running`, `paused` or `finished`."""
        return self._state

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def should_stop(self) -> bool:
        return self._stop_reason is not None

    @property
    def lrs(self) -> list[float]:
        return [float(g["lr"]) for g in self._optimizer.param_groups]

    @property
    def lr(self) -> float:
        """The LR in force now (the first group's): what a loop without torch.optim trains its next step with."""
        return float(self._optimizer.param_groups[0]["lr"])

    @property
    def group_names(self) -> list[str]:
        return list(self._group_names)

    @property
    def scheduler(self) -> Any:
        """The scheduler in force: the user's, or the one `sched SPEC` built."""
        return self._lr.scheduler

    @property
    def scheduler_spec(self) -> Optional[str]:
        """The spec of the schedule `sched SPEC` installed (None: the user's own scheduler, or none)."""
        return self._lr.spec

    @property
    def skipped_steps(self) -> int:
        """Steps a GradScaler skipped (inf/NaN gradients)."""
        return self._skipped_steps

    @property
    def best_eval_loss(self) -> Optional[float]:
        return self._best_eval_loss

    @property
    def checkpoint_count(self) -> int:
        """Checkpoints kept in memory for `rollback`."""
        return len(self._checkpoints)

    @property
    def checkpoint_files(self) -> list[str]:
        """The checkpoint files on disk this run wrote, oldest first (the newest `checkpoint_keep`)."""
        return self._checkpoints.files

    @property
    def last_find_lr(self) -> Optional[RangeTestResult]:
        """The last find-lr sweep's curve, suggestions, sub-run folder and summary, for scripts."""
        return self._sweeps.last

    @property
    def finding_lr(self) -> bool:
        """Whether a find-lr sweep runs now."""
        return self._sweeps.current is not None

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._world_size

    # ------------------------------------------------------------------ what a user calls

    def step(self, loss: Any = None, *, epoch: Optional[int] = None, grad_norm: Any = None,
             samples: Optional[int] = None, lr: Optional[float] = None, **metrics: Any) -> None:
        """Call once per optimizer step, after `optimizer.step()` (and `scheduler.step()`): logs the step, checks the
        divergence guard, applies pending commands, and blocks here while the run is paused. `lr=`: a loop without
        torch.optim (`lrtop.attach(lr=...)`) says the LR this step trained with; it reads `run.lr` for the next."""
        if lr is not None:
            self._manual_lr(lr)
        if self._closed:
            if self._signal is not None:
                return  # the run ended at a signal (its log says so) and the process goes on: nothing to steer
            raise RuntimeError("lrtop: step() after close()")
        # The hot path: a few attribute reads, the loss as a float, a tuple queued for the log (encoded by the
        # service thread), the guard's arithmetic, and a look at the command queue. Nothing is formatted here.
        now = time.perf_counter()
        elapsed = now - self._last_step_time
        self._last_step_time = now
        if self._distributed:
            self._channel.count_step(elapsed, now)
        skipped = self._optimizer_steps == 0
        self._optimizer_steps = 0
        control = self._lr
        if self._post_hook is not None and self._warmup_restore is None and \
                control.warmup_done >= control.warmup_total:
            self._post_hook.remove()  # not from inside the hook: torch is iterating over its hooks then
            self._post_hook = None
        scaler = self._scaler
        if skipped and scaler is not None:
            self._skipped_steps += 1
        lrs_used = self._lrs_used
        if lrs_used is None:
            lrs_used = self.lrs
        self._lrs_used = None
        if epoch is not None:
            # Steps into the script's epoch as its data loader counts them: find-lr's steps and the steps a rollback
            # undid drew batches too, so lrtop's own step count does not say where in the epoch the loop is.
            if epoch != self._script_epoch:
                self._script_epoch, self._epoch_steps = epoch, 0
            self._epoch_steps += 1
        sweeps = self._sweeps
        if sweeps.current is not None:
            sweeps.step(_scalar(loss), elapsed, samples)
            return
        step = self._step = self._step + 1
        self._version += 1
        if epoch is not None:
            if self._epoch_base is None:
                self._learn_epoch_base(int(epoch))
            self._epoch = max(0, int(epoch) - self._epoch_base)  # type: ignore[operator]
        elif self._steps_per_epoch:
            self._epoch = (step - 1) // self._steps_per_epoch
        if not control.external and control.scheduler is not None:
            control.step()
        writer = self._writer
        if writer is not None:
            # No host-device sync here: a device tensor's value is a `Deferred` that arrives a window later; the
            # record is queued with it and written once it has (devicevalues.py).
            values = self._values
            loss_value = self._last_loss = values.value(loss)
            n = samples if samples is not None else self._batch_size
            extra = metric_values(metrics, values.value) if metrics else None
            if self._window_metrics is not None:  # the last exchange's step times, the GPU's memory
                extra = {**(extra or {}), **self._window_metrics}
                self._window_metrics = None
            if scaler is not None:
                self._last_scale = self._loss_scale(values)
                extra = extra or {}
                extra["loss_scale"] = _json_value(self._last_scale)
                extra["skipped_steps"] = self._skipped_steps
            writer.step(step, self._epoch, lrs_used, loss_value, values.value(grad_norm),
                        (n / elapsed) if n and elapsed > 0 else math.nan, extra)
            # GradScaler already skipped this step's inf/NaN gradients: that is AMP working, not divergence.
            unchecked = self._unchecked
            if unchecked or type(loss_value) is Deferred:
                unchecked.append((step, loss_value, skipped and scaler is not None))
            elif not (skipped and scaler is not None):
                self._check_guard(float(loss_value), step)
            values.end_step(now)
            if self._gpu and now - self._gpu_checked >= GPU_STATS_INTERVAL:
                self._gpu_checked = now
                self._check_gpu()
        if self._lr_overflow is not None:
            self._report_lr_overflow()
        if self._checkpoint_requested:
            self._checkpoint_on_request()
        self._boundary()

    def eval(self, val_loss: Any = None, val_acc: Any = None, **metrics: Any) -> None:
        """Logs an evaluation (and steps a ReduceLROnPlateau schedule on `val_loss`). During a find-lr sweep it
        measured the sweep's weights, not the run's: it goes to the sweep's sub-run log only."""
        loss, acc = _scalar(val_loss), _scalar(val_acc)
        test = self._sweeps.current
        if test is not None:
            if test.writer is not None:
                test.writer.eval(test.curve.count, self._epoch, loss, acc,
                                 metric_values(metrics))
            return
        if not math.isnan(loss):
            self._best_eval_loss = loss if self._best_eval_loss is None else min(self._best_eval_loss, loss)
            if isinstance(self._lr.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) and not self._lr.external:
                self._lr.step((loss,), {})
        if not math.isnan(acc):
            self._final_accuracy = acc
            self._best_accuracy = acc if self._best_accuracy is None else max(self._best_accuracy, acc)
        if self._writer is not None:
            self._writer.eval(self._step, self._epoch, loss, acc, metric_values(metrics))

    def log(self, metrics: dict, step: Optional[int] = None) -> None:
        """Logs metrics at any cadence, as a `metrics` record (docs/runlog.md "Metrics"): `{"acc": 0.7, "grad/attn":
        g}`, numbers or tensors (a tensor on a device is read off the loop, without waiting for it). `step`: the step
        they belong to (default: the last step taken). During a find-lr sweep they go to the sweep's sub-run log."""
        test = self._sweeps.current
        if test is not None:  # a sweep's sub-run (off the steady state): a device tensor is read when it is written
            values = metric_values(metrics)
            if values is not None and test.writer is not None:
                test.writer.metrics(test.curve.count if step is None else int(step), values)
            return
        # The run's log: a device tensor becomes a `Deferred` (devicevalues.py), the record held until it arrives.
        values = metric_values(metrics, self._values.value)
        if values is not None and self._writer is not None:
            self._writer.metrics(self._step if step is None else int(step), values)

    def command(self, text: str) -> None:
        """Queues a command as if typed in `lrtop attach` (applied at the next step boundary; on rank 0 only)."""
        if self._rank == 0:
            self._pending.append(_Pending(text, origin="api"))

    def flush(self) -> None:
        """Writes the queued log records now (the socket's service thread does it at least once a second)."""
        if self._writer is not None:
            self._writer.flush()

    def close(self, reason: Optional[str] = None, message: Optional[str] = None) -> None:
        """Ends the run: its end record (`completed`, `stopped`, `diverged`, `interrupted` or `failed`), the socket
        removed, the checkpoint files still being written written."""
        if self._closed:
            return
        if self._sweeps.current is not None:
            self._sweeps.finish(cut_short="cut short: the run ended")
        self._closed = True
        self._pre_hook.remove()
        if self._post_hook is not None:
            self._post_hook.remove()
        self._signals.uninstall()
        atexit.unregister(self._exit_hook)
        if reason is None:
            reason = self._stop_reason if self._stop_reason in ("stopped", "diverged") else "completed"
            if self._signal is not None:
                reason, message = "interrupted", message or signal_name(self._signal)
        self._state = "finished"
        self._values.flush(wait=True)  # the last device values: off the steady state, waiting is allowed
        self._checkpoints.close()  # the checkpoints being written are written (and answered) first
        if self._writer is not None:
            trouble = self._writer.trouble_note
            if trouble is not None:
                message = f"{message}; {trouble}" if message else trouble
            self._writer.end(reason, self._step, self._epoch,
                             final_loss=None if math.isnan(float(self._last_loss)) else float(self._last_loss),
                             best_eval_loss=self._best_eval_loss, best_accuracy=self._best_accuracy,
                             final_accuracy=self._final_accuracy, message=message)
        self._ended = _end_words(reason, message, self._stopped_by)
        for server in (self._server, self._rank_server):
            if server is not None:  # after the end record, so that viewers are sent it before the socket closes
                server.broadcast(self._status())
                server.close()
        if self._registration is not None:
            self._registration.remove()
        if self._writer is not None:
            if not self._writer.close():
                _warn(f"lrtop: {self._writer.unwritten} records of {self._log_path} could not be written "
                      f"({self._writer.trouble}): the log ends early")
        close_quietly(self._folder)
        self._folder = None
        self._lr.detached = True

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt) or self._signal is not None:
            self.close("interrupted", signal_name(self._signal) if self._signal is not None else "KeyboardInterrupt")
        else:
            self.close("failed", f"{exc_type.__name__}: {exc}"[:500])

    # ------------------------------------------------------------------ optimizer hooks

    def _pre_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        # GradScaler skips a step with inf/NaN gradients by not calling optimizer.step(): this hook does not run.
        self._optimizer_steps += 1
        groups = optimizer.param_groups
        sweep = self._sweeps.current
        if sweep is not None:
            lr = sweep.curve.next_lr
            if lr is not None:
                for g in groups:
                    g["lr"] = lr
                self._lrs_used = [lr] * len(groups)
                if self._lr_tensors is not None:
                    self._write_tensor_lrs(groups, self._lrs_used)
            return
        control = self._lr
        control.ramp_factor = None
        if control.warmup_done < control.warmup_total:
            factor = control.ramp_factor = (control.warmup_done + 1) / control.warmup_total
            self._warmup_restore = [float(g["lr"]) for g in groups]
            for g in groups:
                g["lr"] = g["lr"] * factor
            if self._post_hook is None:
                self._post_hook = optimizer.register_step_post_hook(self._post_step)
        lrs = [float(g["lr"]) for g in groups]
        if not sum(lrs) <= self._lr_limit:  # also NaN: the step would raise, so the last good LR trains instead
            lrs = self._keep_lrs_in_range(groups, lrs)
        self._lrs_used = self._last_good_lrs = lrs
        if self._lr_tensors is not None:
            self._write_tensor_lrs(groups, lrs)

    def _write_tensor_lrs(self, groups: list, lrs: list[float]) -> None:
        """A group whose LR was a tensor (`lr=torch.tensor(1e-3)`, what a compiled `optimizer.step` needs so that a
        new LR does not recompile it) gets its own tensor back, written in place (`fill_`), wherever lrtop or a
        schedule wrote a float since; a tensor left in place (a torch schedule fills it itself) is kept."""
        assert self._lr_tensors is not None
        for g, t, lr in zip(groups, self._lr_tensors, lrs):
            if t is not None and g["lr"] is not t:
                t.fill_(lr)
                g["lr"] = t

    def _keep_lrs_in_range(self, groups: list, lrs: list[float]) -> list[float]:
        """An LR the parameters' dtype cannot hold (a user's schedule that grew past float32, an exponential one
        stepped for long) would make `optimizer.step()` raise and the run die: that group trains at its last good
        LR this step, and the guard is told at the next boundary (an event, and pause, rollback or stop)."""
        bad = [i for i, x in enumerate(lrs) if not x <= self._lr_limit]
        if not bad:
            return lrs
        kept = list(lrs)
        for i in bad:
            kept[i] = self._last_good_lrs[i] if i < len(self._last_good_lrs) else self._lr.base_lrs[i]
            groups[i]["lr"] = kept[i]
        if self._lr_overflow is None:
            i = bad[0]
            self._lr_overflow = (f"the LR of group {self._group_names[i]} reached {lrs[i]:.3g}, beyond what its "
                                 f"parameters' dtype holds ({self._lr_limit:.3g}); kept {kept[i]:.3g}")
        return kept

    def _post_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self._warmup_restore is not None:
            for g, lr in zip(optimizer.param_groups, self._warmup_restore):
                g["lr"] = lr
            self._warmup_restore = None
            self._lr.warmup_step_done()

    # ------------------------------------------------------------------ around the loop

    def _tick(self) -> None:
        """The socket's service thread, about ten times a second: the logs' flush and the shadow's steps."""
        if self._writer is not None:
            # While a viewer watches, its charts trail the loop by a tick at most (a write(2) each 0.1 s), not a second.
            viewed = self._server is not None and self._server.has_clients
            self._writer.maybe_flush(VIEWED_FLUSH_INTERVAL if viewed else None)
        test = self._sweeps.current
        if test is not None and test.writer is not None:
            test.writer.maybe_flush()
        self._lr.tick()
        self._every_round()

    def _every_round(self) -> None:
        """Every rank's service thread, each round: the step clock's sample and the registry's heartbeat."""
        self._clock.sample(self._step, self._last_step_time)
        if self._registration is not None:
            self._registration.beat()

    def _remaining(self) -> Optional[int]:
        return None if self._total_steps is None else self._total_steps - self._step

    def _on_scheduler_replaced(self, scheduler: Any) -> None:
        """Framework integrations override this to hand the new scheduler to the trainer."""

    def _on_manual_checkpoint(self) -> None:
        """Framework integrations override this (HF also saves its own checkpoint)."""

    # ------------------------------------------------------------------ guard

    def _check_guard(self, loss: float, step: int) -> None:
        guard = self._guard
        if guard.action == "off" or self._paused and guard.action == "pause" or self._guard_queued or \
                self._stop_reason is not None:
            return  # a trip waiting for its boundary (the exchange, K steps at most) is answered once
        reason = guard.check(loss, step)
        if reason is not None:
            self._guard_queued = True
            self._pending.insert(0, _Pending(f"guard {guard.action}", origin="guard", id=reason, at=step))

    def _check_arrived_losses(self) -> None:
        """The guard on the device losses that arrived since the last boundary, in step order (a trip is seen one
        window after its step at most, plus the steps the GPU runs behind: docs/bridge.md "Cost per step")."""
        unchecked = self._unchecked
        while unchecked and ready(unchecked[0][1]):
            step, loss, skipped = unchecked.popleft()
            if not skipped:
                self._check_guard(float(loss), step)

    def _apply_guard(self, reason: str, at: Optional[int] = None) -> None:
        self._guard_queued = False
        before = self.lrs
        guard = self._guard
        diverged_at = self._step if at is None else at
        # The last snapshot taken before the divergence: one taken since (the guard sees a device loss a window
        # late) may hold the diverged weights.
        target = self._checkpoints.before(diverged_at)
        if guard.action == "rollback" and target is not None and guard.exhausted:
            # Halving and rolling back again has not helped: someone has to decide (or, with no one to ask, stop).
            tried = f"{guard.rollbacks} rollbacks in a row, each halving the LR, did not help"
            guard.rollbacks = 0
            if self._server is not None and self._server.has_clients:
                self._guard_pause(f"{reason}; {tried}", before)
            else:
                self._stop_reason = "diverged"
                self._event("guard", "guard", before, self.lrs, f"{reason}; {tried}; stopped (no viewer attached)")
                _warn(f"lrtop: {self._name}: {reason}; {tried}: stopped")
        elif guard.action == "pause":
            self._guard_pause(reason, before)
        elif guard.action == "stop":
            self._stop_reason = "diverged"
            self._event("guard", "guard", before, self.lrs, f"{reason}; stopped")
        elif guard.action == "rollback":
            if target is None:
                self._guard_pause(f"{reason}; no checkpoint to roll back to", before)
            else:
                self._restore_or_keep(target, "the guard's rollback", lr_factor=0.5)
                guard.rolled_back(diverged_at)
                to = target['lrtop']['step']
                self._event("guard", "guard", before, self.lrs, f"{reason}; rolled back to step {to} and halved the LR",
                            result={"rolled_back_to": to})
        if self._server is not None:
            self._server.broadcast(self._status())

    def _guard_pause(self, reason: str, before: list[float]) -> None:
        """Pauses for the guard and says so on stderr too: with no viewer attached, nothing else would tell."""
        if not self._paused:
            self._pause(reason)
        else:
            self._pause_reason = reason
        self._event("guard", "guard", before, self.lrs, f"{reason}; paused ('resume' continues, 'rollback' undoes)",
                    result={"paused": True})
        if self._rank == 0:
            _warn(f"lrtop: {self._name} paused at step {self._step}: {reason}; decide with: lrtop attach "
                  f"{self._run_dir} ('resume', 'rollback', 'lr ...' or 'stop')")

    def _report_lr_overflow(self) -> None:
        reason, self._lr_overflow = self._lr_overflow, None
        if self._writer is None:
            return
        if self._guard.action == "off":
            self._event("guard", "guard", self.lrs, self.lrs, f"{reason} (the guard is off: training goes on)")
        else:
            self._pending.insert(0, _Pending(f"guard {self._guard.action}", origin="guard",
                                             id=f"{reason} at step {self._step}"))

    # ------------------------------------------------------------------ step boundary

    def _boundary(self) -> None:
        """Exchanges and applies commands; blocks while paused (every rank polls together, so rank 0's socket
        and every rank's collective see a heartbeat at least every 0.1 s). The log is flushed by the socket's
        service thread, not here."""
        self._exchange_and_apply()
        # A find-lr sweep runs while paused (the TUI's `f` pauses first): the loop goes on for its steps, and the run
        # is held again at the sweep's last boundary.
        while self._paused and self._steps_while_paused == 0 and self._stop_reason is None and \
                self._sweeps.current is None:
            time.sleep(0.05)
            self._exchange_and_apply(every_rank_here=True)
        if self._paused and self._steps_while_paused > 0:
            self._steps_while_paused -= 1

    def _exchange_and_apply(self, every_rank_here: bool = False) -> None:
        """Takes the commands that arrived and, under DDP at the steps the ranks exchange (`every_rank_here`: every
        rank is paused here and polls together), agrees them with every rank; then applies them."""
        if self._unchecked:
            self._check_arrived_losses()
        if self._sweeps.current is not None:
            return  # commands wait in the socket for the sweep's end (its own exchange keeps DDP in step)
        if self._server is not None:
            # What waits here is bounded as what waits in the server is: beyond, the server refuses at once.
            for req in self._server.poll(room=MAX_WAITING_COMMANDS - len(self._pending)):
                self._pending.append(_Pending(req.text, req.id, req.client, "socket"))
        if not self._distributed:
            if not self._pending:
                return
        elif not (every_rank_here or self._channel.due(self._step)):
            return  # no collective at this step: what is pending waits for the exchange (K steps at most)
        accepted = self._take_share() if self._rank == 0 else []
        records = self._channel.exchange([{"text": p.text, "origin": p.origin,
                                           "reason": p.id if p.origin in ("guard", "signal") else None, "at": p.at}
                                          for p in accepted], self._step)
        if self._distributed and self._rank == 0:
            self._note_ranks()
        if self._rank != 0:
            accepted = [_Pending(r["text"], r.get("reason"), None, r["origin"], at=r.get("at")) for r in records]
        elif len(records) < len(accepted):  # more than one exchange carries: the rest goes at the next boundary
            self._pending[:0] = accepted[len(records):]
            accepted = accepted[:len(records)]
        for i, p in enumerate(accepted):
            if self._sweeps.current is not None:  # a find-lr began in this batch: the rest waits for its end
                self._sweeps.current.deferred.extend(accepted[i:])
                break
            self._apply_accepted(p)

    def _take_share(self) -> list[_Pending]:
        """Rank 0: the commands this boundary applies, parsed and acknowledged; the rest wait, in order. At most
        `MAX_COMMANDS_PER_BOUNDARY`, of which `MAX_COSTLY_PER_BOUNDARY` costly ones. The `ckpt`s queued right behind
        a `ckpt` are the same checkpoint: they are answered from the next boundaries on, without another one."""
        accepted: list[_Pending] = []
        taken = costly = 0
        lrs = self.lrs
        for p in self._pending[:MAX_COMMANDS_PER_BOUNDARY]:
            if p.same_as is not None:
                taken += 1
                self._answer_coalesced(p)
                continue
            if accepted and _costly(accepted[-1], lrs):
                costly += 1
                last = accepted[-1].command
                if costly >= MAX_COSTLY_PER_BOUNDARY or isinstance(last, C.Checkpoint):
                    break
            taken += 1
            if p.origin in ("guard", "signal"):
                accepted.append(p)
                continue
            try:
                command = C.parse(p.text)
            except C.CommandError as e:
                self._reply(p, {"type": "ack", "id": p.id, "ok": False, "error": str(e)})
                self._event("error", p.text, lrs, lrs, str(e))
                continue
            if not p.acked:
                self._reply(p, {"type": "ack", "id": p.id, "ok": True})
                p.acked = True
            p.command = command
            accepted.append(p)
            if isinstance(command, C.Checkpoint):
                for q in self._pending[taken:]:
                    if q.origin in ("guard", "signal") or q.same_as is not None or not _is_ckpt(q.text):
                        break
                    q.same_as = p
        del self._pending[:taken]
        return accepted

    def _apply_accepted(self, p: _Pending) -> None:
        if p.origin == "guard":
            self._apply_guard(str(p.id), p.at)
        elif p.origin == "signal":
            self._automatic_checkpoint(f"signal {p.id}")
        else:
            self._applying_origin = p.origin
            self._apply(p)
            if self._server is not None:
                self._server.broadcast(self._status())  # after every applied command (protocol v1)

    def _reply(self, p: _Pending, obj: dict) -> None:
        if p.client is not None and self._server is not None:
            self._server.send(p.client, obj)

    def _event(self, kind: str, text: str, before: list[float], after: list[float], message: Optional[str],
               step: Optional[int] = None, command: Optional[C.Command] = None,
               result: Optional[dict] = None) -> None:
        if self._writer is not None:
            # Under DDP what every rank applied (at this step, exchanged) says on how many ranks.
            ranks = self._world_size if self._distributed and kind in ("command", "guard", "checkpoint") else None
            self._writer.event(self._step if step is None else step, kind, text, before, after, message,
                               command=None if command is None else command.to_record(), result=result,
                               ranks=ranks)

    def _answer(self, p: _Pending, command: C.Command, before: list[float], after: list[float],
                note: Optional[str], result: Optional[dict] = None, step: Optional[int] = None) -> None:
        """An applied command: its `command` event and its answer carry the same typed data (the command's record,
        every group's LR before and after, and `result`), so a viewer words every answer from fields, the same way
        for a live run, `watch` and `attach` (docs/bridge.md, "The socket protocol"); `message` is the detail."""
        step = self._step if step is None else step
        self._event("command", p.text, before, after, note, step=step, command=command, result=result)
        reply: dict = {"type": "result", "id": p.id, "ok": True, "step": step, "command": command.to_record(),
                       "lrs_before": numbers(before), "lrs_after": numbers(after)}
        if result:
            reply["result"] = result
        # The note only (protocol D): the viewer words the command and its LRs from the fields above, so a message
        # that repeated them showed them twice (`lr 0.0500→0.0100 · all groups 5.00e-02 -> 1.00e-02`).
        if note:
            reply["message"] = note
        self._reply(p, reply)

    def _refusal(self, p: _Pending, command: Optional[C.Command], lrs: list[float], error: str,
                 step: Optional[int] = None) -> None:
        """A command that could not apply: an `error` event and a `result` with `ok: false`, nothing changed."""
        step = self._step if step is None else step
        self._event("error", p.text, lrs, lrs, error, step=step, command=command)
        reply: dict = {"type": "result", "id": p.id, "ok": False, "step": step}
        if command is not None:
            reply["command"] = command.to_record()
        reply["error"] = error
        self._reply(p, reply)

    def _manual_lr(self, lr: float) -> None:
        if not self._manual:
            raise TypeError("lrtop: step(lr=) is for a loop without torch.optim (lrtop.attach(lr=...)); with an "
                            "optimizer, lrtop reads the LR from its param groups")
        self._optimizer.param_groups[0]["lr"] = float(lr)

    def _learn_epoch_base(self, first: int) -> None:
        """The script's first `step(epoch=e)`: e == 1 means it numbers epochs from 1 (pytorch/examples do), else
        from 0. Said once in the log (an `info` event with the value as data) and in the status from then on."""
        self._epoch_base = 1 if first == 1 else 0
        message = f"the script numbers epochs from {self._epoch_base}"
        self._event("info", "epochs", self.lrs, self.lrs, message,
                    result={"epoch_base": self._epoch_base})

    def _on_malformed(self, error: str) -> None:
        self._event("error", "socket", self.lrs, self.lrs, f"refused a socket message: {error}")

    def _apply(self, p: _Pending) -> None:
        before = self.lrs
        try:
            command = C.parse(p.text)
        except C.CommandError as e:  # parsed on rank 0 already; other ranks re-validate what they receive
            self._event("error", p.text, before, before, str(e))
            return
        try:
            self._precheck(command)
            if isinstance(command, C.FindLR):
                self._sweeps.start(command, p)
                return  # its event and result come when the sweep ends
            if isinstance(command, C.Checkpoint) and not self._checkpoints.unchanged_since_last(self._version):
                self._checkpoint_command(p, command, before)
                return  # its event and result come when the file is written
            if command.is_risky(before):
                self._automatic_checkpoint(f"before '{p.text}'")
            note, result = self._perform(command)
            if command.verb not in ("ckpt", "eval"):
                self._version += 1
            self._answer(p, command, before, self.lrs, note, result)
        except Exception as e:  # whatever a command raises is its answer, never the end of the run
            for g, lr in zip(self._optimizer.param_groups, before):
                g["lr"] = lr
            error = p.error = _one_line(e)
            self._refusal(p, command, before, error)

    def _group_indices(self, name: Optional[str]) -> list[int]:
        if name is None:
            return list(range(len(self._group_names)))
        if name in self._group_names:
            return [self._group_names.index(name)]
        idx = C.swift_int(name)
        if idx is not None and 0 <= idx < len(self._group_names):
            return [idx]
        raise C.CommandError(f"no param group '{name}': groups are {', '.join(self._group_names)}")

    def _precheck(self, c: C.Command) -> None:
        """Throws for what can be known to fail before anything changes, so a command that cannot apply does not
        even take its safety checkpoint."""
        if isinstance(c, (C.Fork, C.Adopt, C.Drop)):
            raise C.CommandError(f"{c.verb} is not available on a bridged PyTorch run: use lrtop's own trainer, "
                                 "or restart with the LR you want")
        if isinstance(c, C.Pace):
            raise C.CommandError("pace is for a run lrtop trains itself: a PyTorch run goes at its own speed "
                                 "('pause' and 'step N' hold it where you want)")
        if self._manual and isinstance(c, (C.Warmup, C.FindLR)):
            raise C.CommandError(f"{c.verb} needs a torch.optim optimizer (lrtop sets the LR inside "
                                 "optimizer.step()): this loop sets its LR itself; 'lr', 'sched' and the rest work "
                                 "through run.lr")
        if isinstance(c, C.LR):
            idx = self._group_indices(c.group)
            self._check_lr_range(c, idx)
            if c.change.kind in ("set", "scale") and not self._manual:
                refusal = self._lr.override_refusal(idx, self._step)
                if refusal is not None:
                    raise C.CommandError(refusal)
        elif isinstance(c, C.Sched):
            self._lr.check(c.spec)

    def _check_lr_range(self, c: C.LR, idx: list[int]) -> None:
        """An LR the parameters' dtype cannot hold would make the next `optimizer.step()` raise: refused here."""
        value = c.change.value
        if value is None:
            return
        if c.change.kind == "set" and not value <= self._lr_limit:
            raise C.CommandError(f"an LR of {value:.3g} is beyond what the parameters' dtype holds "
                                 f"({self._lr_limit:.3g}): the next step would overflow; nothing changed")
        if c.change.kind == "scale":
            groups = self._optimizer.param_groups
            bad = [x for x in (groups[i]["lr"] * value for i in idx) if not x <= self._lr_limit]
            if bad:
                raise C.CommandError(f"scaling gives an LR of {bad[0]:.3g}, beyond what the parameters' dtype "
                                     f"holds ({self._lr_limit:.3g}); nothing changed")

    def _perform(self, c: C.Command) -> tuple[Optional[str], Optional[dict]]:
        """Applies a command; returns a note for its event (what it did beyond the LR change) and its outcome as
        data (the event's `result`: docs/runlog.md), or raises a CommandError a person can act on."""
        lr = self._lr
        if isinstance(c, C.LR):
            idx = self._group_indices(c.group)
            kind, value = c.change.kind, c.change.value
            if kind == "set" and value is not None:
                return lr.set(idx, value), None
            if kind == "scale" and value is not None:
                return lr.scale(idx, value), None
            if kind == "hold":
                return lr.hold(idx), None
            if kind == "release":
                return lr.release(idx), None
            if kind == "reset":
                return lr.reset(None if c.group is None else idx), None
            return None, None
        if isinstance(c, C.Sched):
            # A framework steps the new schedule itself, at the step interval (its callback hands it over).
            note = lr.switch(c.spec, steps_taken=self._step if self._framework == "plain" else None)
            return note, {"scheduler": lr.describe()}
        if isinstance(c, C.Warmup):
            return lr.start_warmup(c.count), None
        if isinstance(c, C.Pause):
            if self._paused:
                raise C.CommandError("already paused: 'resume' continues, 'step' takes one step")
            self._pause("paused by the script" if self._applying_origin == "api" else "paused by a viewer")
            return None, None
        if isinstance(c, C.Resume):
            if not self._paused:
                raise C.CommandError("not paused")
            self._paused = False
            self._pause_reason = None
            self._steps_while_paused = 0
            self._state = "running"
            return None, None
        if isinstance(c, C.Step):
            if not self._paused:
                raise C.CommandError("'step' works while paused: 'pause' first")
            self._steps_while_paused += c.count
            return None, None
        if isinstance(c, C.Stop):
            self._stop_reason = "stopped"
            self._stopped_by = "the script" if self._applying_origin == "api" else "a viewer"
            self._paused = False
            self._pause_reason = None
            return None, None
        if isinstance(c, C.Checkpoint):
            last = self._checkpoints.latest
            assert last is not None  # a `ckpt` with nothing changed since the last checkpoint comes here
            where = f"saved {self._checkpoints.last_path}" if self._checkpoints.last_path else "kept in memory"
            return (f"nothing changed since the checkpoint at step {last['lrtop']['step']} "
                    f"({last['lrtop']['label']}): {where}"), None
        if isinstance(c, C.Rollback):
            target = self._checkpoints.latest
            if target is None:
                raise C.CommandError("no checkpoint to roll back to: 'ckpt' takes one")
            frm = self._step
            self._restore_or_keep(target, "rollback")
            to = target['lrtop']['step']
            return f"rolled back from step {frm} to step {to} ({target['lrtop']['label']})", {"rolled_back_to": to}
        if isinstance(c, C.Eval):
            self._run_eval()
            return None, None
        raise C.CommandError(f"unknown command '{c.verb}'")

    def _pause(self, reason: str) -> None:
        self._pause_reason = reason
        self._paused = True
        self._steps_while_paused = 0
        self._state = "paused"
        self._values.flush(wait=True)  # the records up to the pause are in the log while it waits
        if self._writer is not None:
            self._writer.flush()

    def _run_eval(self) -> None:
        if self._eval_fn is None:
            raise C.CommandError("no evaluation function: pass eval_fn= to lrtop.attach")
        try:
            result = self._eval_fn()
        except Exception as e:  # the user's evaluation failed: the answer says why, the run goes on
            raise C.CommandError(f"eval failed: {_one_line(e)}; the run goes on") from None
        if isinstance(result, dict):
            self.eval(**result)

    # ------------------------------------------------------------------ signals

    def _note_signal(self, signum: int) -> None:
        self._signal = signum

    def _finish_on_signal(self, signum: int) -> None:
        self.close("interrupted", signal_name(signum))

    def _request_checkpoint(self) -> None:
        self._checkpoint_requested = True

    def _checkpoint_on_request(self) -> None:
        """SIGUSR1 (Slurm's warning before the time limit): a checkpoint on every rank at this boundary."""
        self._checkpoint_requested = False
        if self._rank == 0:
            self._pending.insert(0, _Pending("ckpt", origin="signal", id="SIGUSR1"))

    def _writing_on_this_thread(self) -> bool:
        return self._writer is not None and self._writer.flushing_thread == threading.get_ident()

    def _log_trouble(self, message: str) -> None:
        """A failed (or recovered) log write: one line on stderr and an event (written once the log takes it)."""
        _warn(f"lrtop: {message}")
        self._event("info", "log", self.lrs, self.lrs, message)

    # ------------------------------------------------------------------ checkpoints

    def _snapshot(self, label: str) -> dict:
        """Everything a rollback puts back, as tensors and plain data only (so the file form loads with
        `weights_only=True`: numpy's RNG state is stored as a list)."""
        rng: dict = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        np = sys.modules.get("numpy")
        if np is not None:
            kind, keys, pos, has_gauss, cached = np.random.get_state()
            rng["numpy"] = [str(kind), [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]
        meta = {"version": __version__, "step": self._step, "epoch": self._epoch, "label": label, "lrs": self.lrs,
                "skipped_steps": self._skipped_steps, "optimizer": type(self._optimizer).__name__}
        if self._lr.user_scheduler is not None:
            meta["scheduler"] = scheduler_class(self._lr.user_scheduler)
        snap = {"lrtop": meta, "lr_control": self._lr.state_dict(),
                "rng": rng}
        if self._sharded:
            model_state, optimizer_state = sharded_state(self._model, self._optimizer)
            snap["optimizer"] = copy.deepcopy(optimizer_state)
            if model_state is not None:
                snap["model"] = model_state
            return snap
        snap["optimizer"] = copy.deepcopy(self._optimizer.state_dict())
        if self._model is not None:
            snap["model"] = {k: v.detach().clone() for k, v in self._model.state_dict().items()}
        if self._scaler is not None:
            snap["scaler"] = copy.deepcopy(self._scaler.state_dict())
        return snap

    def _keep_checkpoint(self, label: str) -> dict:
        """The in-memory checkpoint (every rank): refused when the weights are not finite."""
        bad = nonfinite(self._model, self._optimizer, self._group_names)
        if bad is not None:
            raise CheckpointError(f"not saved: the weights hold NaN or infinity ({bad}); rollback keeps the last "
                                  "finite checkpoint")
        snap = self._snapshot(label)
        self._checkpoints.keep_snapshot(snap, self._version)
        return snap

    def save_checkpoint(self, label: str = "manual") -> Optional[str]:
        """Keeps a checkpoint in memory (for `rollback`, on every rank) and writes it on rank 0 atomically, with its
        checksum: `RUN_DIR/checkpoints/step-NNNNNNN.pt` and `.pt.sha256`. Returns the file's path on rank 0 once it
        is on disk. Weights that hold NaN or infinity are refused (CheckpointError; nothing kept), so a rollback
        always finds finite ones; a file that cannot be written (a full disk) raises CheckpointError after the
        in-memory copy is kept. (The `ckpt` command writes the file on a thread of its own instead: the step
        boundary does not wait for the disk.)"""
        path = self._checkpoints.write_now(self._keep_checkpoint(label))
        if path is not None and label != "manual":
            self._event("checkpoint", label, self.lrs, self.lrs, f"saved {path}")
        return path

    def _checkpoint_command(self, p: _Pending, command: C.Command, lrs: list[float]) -> None:
        """`ckpt`: the checkpoint is kept now; its event and answer come when the file is written (or at once when
        there is no file to write)."""
        step = self._step

        def succeeded(note: str) -> None:
            self._answer(p, command, lrs, lrs, note, step=step)

        def written(path: Optional[str], error: Optional[str]) -> None:
            if error is None:
                succeeded(f"saved {path}")
            else:
                p.error = error
                self._refusal(p, command, lrs, error, step=step)

        note = self._checkpoints.write_later(self._keep_checkpoint("manual"), written)
        self._on_manual_checkpoint()
        if note is not None:
            succeeded(note)

    def _answer_coalesced(self, p: _Pending) -> None:
        """A `ckpt` that arrived right behind another: that one's checkpoint is its answer."""
        lead = p.same_as
        assert lead is not None
        self._reply(p, {"type": "ack", "id": p.id, "ok": True})
        lrs = self.lrs
        if lead.error is not None:
            self._refusal(p, C.Checkpoint(), lrs, f"{lead.error} (as the '{lead.text}' just before it)")
            return
        self._answer(p, C.Checkpoint(), lrs, lrs, f"the same checkpoint as the '{lead.text}' just before it")

    def _automatic_checkpoint(self, label: str) -> None:
        """The checkpoint before a risky command (or at SIGUSR1): one that cannot be taken is an event, and the
        command still applies."""
        step, lrs = self._step, self.lrs

        def written(path: Optional[str], error: Optional[str]) -> None:
            self._event("checkpoint", label, lrs, lrs, f"saved {path}" if error is None else error, step=step)

        try:
            note = self._checkpoints.write_later(self._keep_checkpoint(label), written)
        except CheckpointError as e:
            self._event("checkpoint", label, lrs, lrs, f"not taken: {_one_line(e)}")
            return
        if note is not None:
            self._event("checkpoint", label, lrs, lrs, note)

    def load_checkpoint(self, path: str, lr: Optional[float] = None) -> None:
        """Resumes from a checkpoint file this package wrote. With `lr=`, the scheduler's saved state is overridden
        so that LR is the one that trains (not the one the scheduler remembered).

        The file is trusted only as far as it is checked: its checksum must match, it is loaded with
        `weights_only=True` (tensors and plain data; no code runs), and it must fit this run (the same optimizer
        type, param groups, model weights by name and shape, finite values). Anything else raises CheckpointError
        with one line, and the model, optimizer and schedule are as they were."""
        if lr is not None and not (C.float32_finite(lr) and 0 <= lr <= self._lr_limit):
            raise CheckpointError(f"lrtop: lr={lr!r} is not an LR the optimizer can step with; nothing loaded")
        if self._sharded:
            raise CheckpointError(f"lrtop: {path}: an FSDP2 run's checkpoints are kept in memory, sharded; resume an "
                                  "FSDP2 run with torch.distributed.checkpoint; nothing loaded")
        snap = CF.read(path)
        check_fits(snap, path, optimizer=self._optimizer, model=self._model, user_scheduler=self._lr.user_scheduler)
        self._restore_or_keep(snap, f"loading {path}", lr=lr)
        _clean_stale_temporaries(os.path.dirname(os.path.abspath(path)))

    def _restore_or_keep(self, snap: dict, what: str, lr_factor: Optional[float] = None,
                         lr: Optional[float] = None) -> None:
        """Restores `snap`, or, when anything in it fails to apply, puts back the state from before (a copy taken
        first) and raises CheckpointError: a failed load or rollback leaves the run as it was."""
        backup = self._snapshot("before " + what)
        try:
            self._restore(snap, lr_factor=lr_factor, lr=lr)
        except Exception as e:
            self._restore(backup)
            raise CheckpointError(f"{what} failed ({_one_line(e)}); the model, optimizer and schedule are as they "
                                  "were") from None

    def _restore(self, snap: dict, lr_factor: Optional[float] = None, lr: Optional[float] = None) -> None:
        meta = snap["lrtop"]
        if self._sharded:
            load_sharded_state(self._model, self._optimizer, snap.get("model"), copy.deepcopy(snap["optimizer"]))
        else:
            if self._model is not None and "model" in snap:
                self._model.load_state_dict(snap["model"])
            self._optimizer.load_state_dict(copy.deepcopy(snap["optimizer"]))
        self._lr.load_state_dict(snap["lr_control"], meta["lrs"])
        if self._scaler is not None and "scaler" in snap:
            self._scaler.load_state_dict(snap["scaler"])
        rng = snap["rng"]
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        np = sys.modules.get("numpy")
        if np is not None and "numpy" in rng:
            kind, keys, pos, has_gauss, cached = rng["numpy"]
            np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        self._step = meta["step"]
        self._epoch = meta["epoch"]
        self._guard.restart()
        self._unchecked.clear()  # losses of the steps undone: logged, not judged
        if lr_factor is not None:
            self._lr.override([x * lr_factor for x in meta["lrs"]])
        elif lr is not None:
            self._lr.override([lr] * len(meta["lrs"]))

    # ------------------------------------------------------------------ status

    def _loss_scale(self, values: DeviceValues) -> Any:
        """GradScaler's scale as a step value, without `get_scale()` (which syncs): its scale tensor, copied on its
        device when deferred, as `update()` changes it in place."""
        try:
            scaler = self._scaler
            if scaler is None or not scaler.is_enabled():
                return math.nan
            scale = scaler._get_scale_async()
            if scale is None:
                return float(scaler.get_scale())  # before the first step: the initial scale, a float
            return values.value(scale if scale.device.type == "cpu" and not values.defer_cpu else scale.clone())
        except Exception:
            return math.nan

    def _hello(self) -> dict:
        return {"type": "hello", "protocol": 1, "run": self._name, "log": self._log_path, "pid": os.getpid(),
                "framework": self._framework, "world_size": self._world_size, "host": short_host(),
                "rank": self._rank}

    def _status(self) -> dict:
        # The scale read at the last step: reading it here could synchronise the GPU from the socket's thread.
        scale = self._last_scale if self._scaler is not None else None
        if type(scale) is Deferred:  # not arrived yet: the one before it
            scale = float(scale) if scale.ready() else self._shown_scale
        self._shown_scale = scale
        return {"type": "status", "state": self._state, "step": self._step, "epoch": self._epoch,
                "total_steps": self._total_steps, "lr": self.lrs, "groups": self._group_names,
                "hold": any(self._lr.held), "override": any(self._lr.overridden), "scheduler": self._lr.describe(),
                "loss_scale": None if scale is None or math.isnan(scale) else scale,
                "skipped_steps": self._skipped_steps, "checkpoints": len(self._checkpoints),
                **self._status_extras(), **self._device_status(), **self._live_figures()}

    def _live_figures(self) -> dict:
        """The status's figures of protocol E (livefigures.py): the smoothed loss and its trend, the last validation
        figures, the rates and the ETA from the log's records (rank 0), and on every rank the age of the last step
        (from now: a stalled loop's grows) and the median step time."""
        if self._writer is not None:
            self._writer.encode_queued()  # the records up to now (encoded once: the file and the push get them)
        out = self._figures.figures()
        rate, total = out["steps_per_s"], self._total_steps
        out["eta_s"] = max(0.0, (total - self._step) / rate) if rate and total is not None else None
        out["step_age"] = max(0.0, time.perf_counter() - self._last_step_time)
        out["step_time"] = self._clock.median()
        out["ended"] = self._ended
        out["rank"] = self._rank
        return out

    def _status_extras(self) -> dict:
        """The status's fields of docs/bridge.md's protocol beyond version 1's: why the run is paused, the find-lr
        sweep's progress, how the script numbers epochs."""
        extras: dict = {"reason": self._pause_reason if self._paused else None}
        test = self._sweeps.current
        if test is not None:
            extras["find_lr"] = {"step": test.curve.count, "steps": test.curve.settings.steps,
                                 "subrun": test.folder}
        if self._epoch_base is not None:
            extras["epoch_base"] = self._epoch_base
        if self._script_epoch is not None:
            extras["epoch_step"] = self._epoch_steps
        return extras

    def _device_status(self) -> dict:
        """The status's per-rank step times (DDP: protocol B's `ranks`) and the GPU's memory, when there are any."""
        out: dict = {}
        ranks = self._channel.ranks
        if ranks is not None and self._world_size > 1 and self._rank == 0:
            out["ranks"] = ranks
        if self._gpu_stats is not None:
            out["gpu"] = self._gpu_stats
        return out

    def _note_ranks(self) -> None:
        """Rank 0 after an exchange: every rank's step time over the window goes into the next step record."""
        ranks = self._channel.ranks
        if ranks is None:
            return
        metrics = self._window_metrics if self._window_metrics is not None else {}
        for r in ranks:  # the window's mean step time per rank (none in a window without steps: while paused)
            if r["step_time_mean"] is not None:
                metrics[f"step_time/rank{r['rank']}"] = r["step_time_mean"]
        self._window_metrics = metrics

    def _check_gpu(self) -> None:
        """Rank 0, once a second: the GPU's memory (peak since the last look) into the next step record and the
        status, and an event when the peak passes 90% of the device (once, until it drops below 80%)."""
        stats = gpu_stats()
        if stats is None:
            return
        self._gpu_stats = stats
        metrics = self._window_metrics if self._window_metrics is not None else {}
        metrics.update((k, stats[k]) for k in ("gpu_mem_peak", "gpu_mem_reserved", "gpu_mem_total", "gpu_util")
                       if k in stats)
        self._window_metrics = metrics
        share = stats["gpu_mem_peak"] / stats["gpu_mem_total"] if stats["gpu_mem_total"] else 0.0
        if share > GPU_MEMORY_WARNING and not self._gpu_warned:
            self._gpu_warned = True
            self._event("info", "gpu memory", self.lrs, self.lrs,
                        f"the GPU's memory peaked at {share:.0%} of its {stats['gpu_mem_total'] / 2**30:.1f} GiB "
                        "since the last look: close to running out")
        elif share < GPU_MEMORY_REARM:
            self._gpu_warned = False


def attach(optimizer: Optional[torch.optim.Optimizer] = None, scheduler: Any = None, *, lr: Optional[float] = None,
           model: Optional[torch.nn.Module] = None,
           scaler: Any = None, name: Optional[str] = None, log_dir: str = "runs", total_steps: Optional[int] = None,
           steps_per_epoch: Optional[int] = None, batch_size: Optional[int] = None, config: Optional[dict] = None,
           seed: Optional[int] = None, eval_fn: Optional[Callable[[], Optional[dict]]] = None,
           guard: GuardAction = "pause", guard_factor: float = 10.0, checkpoint_keep: int = 5,
           announce: bool = True, epoch_base: Optional[int] = None) -> Run:
    """Starts logging and steering `optimizer`'s run. Call `run.step(loss=...)` after every `optimizer.step()`.

    A loop without torch.optim (it updates the weights with a float LR of its own): `attach(lr=20.0, ...)`, then
    `run.step(loss=..., lr=lr)` each step and `lr = run.lr` after it, so `lr X` and `sched` from a viewer reach it.

    scheduler: the LR scheduler the loop steps (optional); model: what `rollback` and `find-lr` put back; scaler: a
    GradScaler (its loss scale and skipped steps are logged); name / log_dir: the run's folder, `log_dir/name`
    (`name-2` when taken; default name: the start time); total_steps: the run's length (the default length of
    `sched cosine` etc.); steps_per_epoch, batch_size (samples/s); config: a dict written into the log's header;
    seed; eval_fn: what the `eval` command calls (returns a dict such as {"val_loss": 0.3}); guard: 'pause',
    'rollback', 'stop' or 'off' at divergence, guard_factor: how many times the best smoothed loss is divergence;
    checkpoint_keep: checkpoints kept in memory and on disk; announce: print how to attach; epoch_base: how the
    script numbers the epochs it passes to `step(epoch=...)`, 0 or 1 (default: learnt from the first one; the log's
    records count from 0 and its header or an event says which numbering the script uses).
    """
    return Run(optimizer, scheduler, lr=lr, model=model, scaler=scaler, name=name, log_dir=log_dir, total_steps=total_steps,
               steps_per_epoch=steps_per_epoch, batch_size=batch_size, config=config, seed=seed, eval_fn=eval_fn,
               guard=guard, guard_factor=guard_factor, checkpoint_keep=checkpoint_keep, announce=announce,
               epoch_base=epoch_base)


# ---------------------------------------------------------------------------------------------------------- helpers


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _not_an_optimizer(x: Any) -> str:
    what = "None" if x is None else f"a {type(x).__module__}.{type(x).__qualname__}"
    return (f"lrtop.attach needs the run's torch.optim.Optimizer as its first argument (got {what}); a loop that "
            "sets the LR itself, without torch.optim, passes it instead: lrtop.attach(lr=..., model=model), then "
            "run.step(loss=..., lr=lr) and lr = run.lr")


def _default_name() -> str:
    return _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def _lr_limit(optimizer: torch.optim.Optimizer) -> float:
    """The largest LR `optimizer.step()` can apply: the largest value of the narrowest floating dtype it steps
    (float32: 3.4e38; float16: 65504), as PyTorch converts the LR to the parameters' dtype."""
    limit = C.FLOAT32_MAX
    for g in optimizer.param_groups:
        for p in g["params"]:
            if isinstance(p, torch.Tensor) and p.is_floating_point():
                limit = min(limit, float(torch.finfo(p.dtype).max))
    return limit


def _close_at_exit(ref: "weakref.ref[Run]") -> None:
    """At interpreter exit, a run nobody closed gets its end record: `interrupted` after a signal or Ctrl-C,
    `failed` after an uncaught exception, else as `close()` decides."""
    run = ref()
    if run is None or run._closed:
        return
    last = getattr(sys, "last_value", None)
    if run._signal is not None or isinstance(last, KeyboardInterrupt):
        run.close("interrupted", signal_name(run._signal) if run._signal is not None else "KeyboardInterrupt")
    elif isinstance(last, BaseException):
        run.close("failed", f"{type(last).__name__}: {last}"[:500])
    else:
        run.close()


def _scalar(x: Any) -> float:
    if x is None:
        return math.nan
    if isinstance(x, torch.Tensor):
        n = x.numel()
        return float(x.item()) if n == 1 else float(x.detach().float().mean().item()) if n else math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _number(v: Any) -> object:
    return number(_scalar(v))


def _json_value(v: Any) -> Any:
    """A step value as queued for the log: a `Deferred` as it is (resolved when written), a float in JSON form."""
    return v if type(v) is Deferred else number(v)


def _end_words(reason: str, message: Optional[str], stopped_by: Optional[str]) -> str:
    """The status's `ended`: the end record's reason in a few words ("completed", "stopped by a viewer", "SIGTERM",
    "error: ValueError: ...")."""
    if reason == "stopped":
        return f"stopped by {stopped_by}" if stopped_by else "stopped"
    first = (message or "").splitlines()[0] if message else ""  # one line: a viewer shows it in a table's cell
    if reason == "interrupted":
        return (first or "interrupted").split(";")[0][:120]
    if reason == "failed":
        return f"error: {first or 'the script raised'}"[:200]
    if reason == "diverged":
        return "diverged (the guard stopped it)"
    return reason


def _is_ckpt(text: str) -> bool:
    return text.strip(" \t").lower() in ("ckpt", "checkpoint")


def _costly(p: _Pending, lrs: list[float]) -> bool:
    """Whether applying `p` takes more than setting a few numbers (a checkpoint, a rollback, an evaluation)."""
    c = p.command
    return c is not None and (c.verb in COSTLY_VERBS or c.is_risky(lrs))


def _clean_stale_temporaries(folder: str) -> None:
    """Removes what a process killed mid-checkpoint left in the folder a run resumes from (when it is the user's own
    and private: nothing is removed from a folder others can write)."""
    try:
        fd = open_folder(folder, path=folder, what="checkpoints folder")
    except OSError:
        return
    try:
        CF.clean_stale_temporaries(fd)
    finally:
        close_quietly(fd)


def _one_line(e: BaseException) -> str:
    """An exception as one line: lrtop's own errors as they are, others with their type."""
    if isinstance(e, (C.CommandError, SpecError, CheckpointError)):
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:300]}" if lines else type(e).__name__
