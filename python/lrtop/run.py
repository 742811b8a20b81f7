"""`lrtop.attach(...)`: the run log, the control socket and the steering of a PyTorch optimizer at step boundaries.

Who writes the LR follows the Swift trainer's rules (docs/steering.md): a manual `lr` is what the next scheduler step
continues from (PyTorch's chainable schedulers do this natively); `lr hold` undoes the scheduler's writes to a group;
`lr release` returns to a shadow copy of the schedule that no manual change touched; `sched SPEC` builds a new
PyTorch scheduler whose base LRs are the current ones; `warmup N` scales the LR the optimizer uses by k/N.
"""
from __future__ import annotations

import atexit
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

from . import __version__
from . import checkpoint_file as CF
from . import commands as C
from . import schedulers as SB
from .checkpoint_file import CheckpointError
from .distributed import CommandChannel
from .rangetest import RangeTestMixin
from .runlog import RunLogWriter, number
from .safefs import close_quietly, open_folder, open_run_folder
from .server import ControlServer
from .signals import SignalHandlers, name as signal_name
from .specs import SpecError

GUARD_ACTIONS = ("pause", "rollback", "stop")
# Commands one step boundary applies at most; the rest wait for the next boundaries (a flood never stalls a step).
MAX_COMMANDS_PER_BOUNDARY = 32
# Commands whose work is more than setting a few numbers: a boundary applies a few of them at most.
COSTLY_VERBS = frozenset(("ckpt", "rollback", "eval", "find-lr", "sched"))
MAX_COSTLY_PER_BOUNDARY = 4
# The guard's rollbacks in a row (each to the last checkpoint, LR halved) before it stops trying: pause with a viewer
# to decide, stop without one.
MAX_GUARD_ROLLBACKS = 3


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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
        run.close("interrupted", f"{signal_name(run._signal)}" if run._signal is not None else "KeyboardInterrupt")
    elif isinstance(last, BaseException):
        run.close("failed", f"{type(last).__name__}: {last}"[:500])
    else:
        run.close()


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


def _scalar(x) -> float:
    if x is None:
        return math.nan
    if isinstance(x, torch.Tensor):
        n = x.numel()
        return float(x.item()) if n == 1 else float(x.detach().float().mean().item()) if n else math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


_S = torch.optim.lr_scheduler
# Schedulers whose LR at step k is a formula of k (`_get_closed_form_lr`), exactly the classes, not subclasses.
_CLOSED_FORM = frozenset(c for c in (_S.StepLR, _S.MultiStepLR, _S.ExponentialLR, _S.CosineAnnealingLR, _S.LinearLR,
                                     _S.ConstantLR, _S.PolynomialLR) if hasattr(c, "_get_closed_form_lr"))


def _default_name() -> str:
    return _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def _routed_class(cls, run: "Run"):
    """A subclass whose `step()` routes to the run's active scheduler, so the framework's (or the user's) usual
    `scheduler.step()` keeps working after `sched SPEC` and honours `lr hold`. A class, not an instance attribute,
    so `state_dict()` stays plain."""
    ref = weakref.ref(run)
    base_step = cls.step
    plateau = issubclass(cls, torch.optim.lr_scheduler.ReduceLROnPlateau)

    def step(self, *args, **kwargs):
        r = ref()
        if r is None or r._closed_scheduler_routing:
            return base_step(self, *args, **kwargs)
        if not (args or kwargs or plateau) and self is r.scheduler and r.range_test is None and True not in r.held:
            base_step(self)  # the common case, `_scheduler_step` unrolled: once per step, so kept short
            if r.shadow is not None:
                r._shadow_owed += 1
            return None
        return r._scheduler_step(args, kwargs)

    return type(cls.__name__, (cls,), {"step": step, "_lrtop_base": cls, "__module__": cls.__module__})


class Run(RangeTestMixin):
    """One steered training run. Create it with `lrtop.attach`; call `step()` after each `optimizer.step()`."""

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler=None, model: Optional[torch.nn.Module] = None,
                 scaler=None, name: Optional[str] = None, log_dir: str = "runs", *, total_steps: Optional[int] = None,
                 steps_per_epoch: Optional[int] = None, batch_size: Optional[int] = None,
                 config: Optional[dict] = None, seed: Optional[int] = None,
                 eval_fn: Optional[Callable[[], Optional[dict]]] = None,
                 guard: str = "pause", guard_factor: float = 10.0, checkpoint_keep: int = 5,
                 framework: str = "plain", scheduler_stepped_externally: Optional[bool] = None,
                 announce: bool = True):
        if guard not in GUARD_ACTIONS + ("off",):
            raise ValueError(f"lrtop: guard must be one of pause, rollback, stop, off (got {guard!r})")
        self.optimizer = optimizer
        self.model = model
        self.scaler = scaler
        self.framework = framework
        self.total_steps = total_steps
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.eval_fn = eval_fn
        self.guard_action = guard
        self.guard_factor = guard_factor
        self.checkpoint_keep = max(1, checkpoint_keep)

        groups = optimizer.param_groups
        self.group_names = [str(g.get("name", "default" if len(groups) == 1 else i)) for i, g in enumerate(groups)]
        self.base_lrs = [float(g.get("initial_lr", g["lr"])) for g in groups]
        self.held = [False] * len(groups)
        self.overridden = [False] * len(groups)
        self.warmup_total = 0
        self.warmup_done = 0

        # Scheduling: the active scheduler, its lrtop spec (None: the user's own), and its planned twin.
        self.user_scheduler = scheduler
        self.scheduler = scheduler
        self.spec: Optional[str] = None
        self.external = scheduler is not None if scheduler_stepped_externally is None else scheduler_stepped_externally
        self._closed_scheduler_routing = False
        self._shadow_opt = SB.shadow_optimizer(optimizer)
        self.shadow = SB.twin(scheduler, optimizer, self._shadow_opt) if scheduler is not None else None
        # The shadow is stepped lazily: the loop only counts the steps it owes (`_shadow_owed`, written by the loop
        # alone) and the socket's service thread pays them off the loop's path; `_settle_shadow()` pays the rest
        # before anything reads or replaces the shadow. The lock keeps the two threads off it at once.
        self._shadow_lock = threading.Lock()
        self._shadow_owed = 0
        self._shadow_paid = 0
        if scheduler is not None and self.external:
            self._route(scheduler)

        # Counters.
        self.step_count = 0
        self.epoch = 0
        self.paused = False
        self.steps_while_paused = 0
        self.stop_reason: Optional[str] = None
        self.state = "running"
        self.last_loss = math.nan
        self.best_eval_loss: Optional[float] = None
        self.best_accuracy: Optional[float] = None
        self.final_accuracy: Optional[float] = None
        self.skipped_steps = 0
        self._last_scale = math.nan
        self._loss_ema: Optional[float] = None
        self._best_ema: Optional[float] = None
        self._first_losses: list[float] = []
        self._loss_floor = 0.0
        self._optimizer_steps = 0
        self._lrs_used: Optional[list[float]] = None
        self._warmup_restore: Optional[list[float]] = None
        self._last_step_time = time.perf_counter()
        self.checkpoints: list[dict] = []  # in memory, newest last
        self._pending: list[_Pending] = []
        self._closed = False
        # Bumped by every step and applied command: a `ckpt` with nothing changed since the last one reuses it.
        self._version = 0
        self._checkpoint_version = -1
        self._last_checkpoint_path: Optional[str] = None
        # The guard's rollbacks in a row (reset once the run gets past the step that diverged) and where it tripped.
        self._guard_rollbacks = 0
        self._guard_trip_step = 0

        # DDP: rank 0 logs and listens; every rank applies the same commands at the same step.
        dist = torch.distributed
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world_size = dist.get_world_size() if self.distributed else 1
        self.channel = CommandChannel(self.distributed)

        # The pre-hook counts the steps and reads the LRs they use; the post-hook, which puts the LR back after a
        # `warmup` step, is registered by the pre-hook only while a warmup runs (one hook call less per step).
        self._pre_hook = optimizer.register_step_pre_hook(self._pre_step)
        self._post_hook = None

        # The narrowest floating dtype the optimizer steps: an LR beyond its range overflows at optimizer.step().
        self._lr_limit = _lr_limit(optimizer)
        self._last_good_lrs = list(self.lrs)
        self._lr_overflow: Optional[str] = None

        self.name = name or _default_name()
        self._folder: Optional[int] = None
        self._files: Optional[CF.FileWriter] = None
        self.writer: Optional[RunLogWriter] = None
        self.server: Optional[ControlServer] = None
        self.start = time.time()
        cfg = {"optimizer": type(optimizer).__name__, "lr": "/".join(repr(x) for x in self.base_lrs),
               "framework": framework, "world_size": str(self.world_size)}
        if scheduler is not None:
            cfg["schedule"] = type(scheduler).__name__
        if batch_size:
            cfg["batch_size"] = str(batch_size)
        cfg.update({str(k): str(v) for k, v in (config or {}).items()})
        self._config = cfg
        self._seed = seed if seed is not None else torch.initial_seed()
        self._announce = announce
        # The run's folder: rank 0 opens it (refusing one that is not the user's own, or a link) and picks `name-2`
        # when `name` holds a run already; every rank gets the same name.
        suffix = 1
        if self.rank == 0:
            self.run_dir, self._folder, suffix = open_run_folder(log_dir, self.name)
        suffix = self.channel.agree(suffix)
        if suffix != 1:
            self.name = f"{self.name}-{suffix}"
        if self.rank != 0:
            self.run_dir = os.path.abspath(os.path.join(log_dir, self.name))
        self.log_path = os.path.join(self.run_dir, "run.jsonl")
        self._signal: Optional[int] = None
        self._checkpoint_requested = False
        self._signals: Optional[SignalHandlers] = None
        if self.rank == 0:
            assert self._folder is not None
            folder = self._folder
            self._files = CF.FileWriter(
                lambda: open_folder("checkpoints", parent=folder, path=os.path.join(self.run_dir, "checkpoints"),
                                    create=True, what="checkpoints folder"),
                os.path.join(self.run_dir, "checkpoints"), self.checkpoint_keep)
            self.writer = RunLogWriter(self._folder, "run.jsonl", self.log_path, self.start,
                                       on_trouble=self._log_trouble)
            try:
                self.server = ControlServer(self._hello(), self._status, self._on_malformed, self._tick, warn=_warn)
            except OSError as e:  # no socket (a path too long, a full /tmp): the run trains and logs without one
                _warn(f"lrtop: cannot open this run's control socket ({e.strerror or e}); it trains and logs, but "
                      "lrtop attach can only watch it")
            extra = {"source": "pytorch", "framework": framework, "world_size": self.world_size}
            if self.server is not None:
                extra = {"socket": self.server.path, **extra}
            self.writer.header(
                version=__version__,
                start_time=_dt.datetime.fromtimestamp(self.start, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                seed=self._seed, groups=self.group_names,
                steps_per_epoch=steps_per_epoch or 0, total_steps=total_steps, config=cfg, extra=extra)
            if announce:
                print(f"lrtop: steer this run with: lrtop attach {self.run_dir}", file=sys.stderr, flush=True)
            if suffix != 1:
                _warn(f"lrtop: {os.path.join(os.path.abspath(log_dir), name or '')} holds a run already; this one is "
                      f"{self.run_dir}")
        self._signals = SignalHandlers(note=self._note_signal, flush=self._flush_log, finish=self._finish_on_signal,
                                       warning=self._request_checkpoint, busy=self._writing_on_this_thread)
        self._exit_hook = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._exit_hook)

    # ------------------------------------------------------------------ public API

    @property
    def should_stop(self) -> bool:
        return self.stop_reason is not None

    @property
    def lrs(self) -> list[float]:
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def step(self, loss=None, *, epoch: Optional[int] = None, grad_norm=None, samples: Optional[int] = None,
             **metrics) -> None:
        """Call once per optimizer step, after `optimizer.step()` (and `scheduler.step()`): logs the step, checks the
        divergence guard, applies pending commands, and blocks here while the run is paused."""
        if self._closed:
            if self._signal is not None:
                return  # the run ended at a signal (its log says so) and the process goes on: nothing to steer
            raise RuntimeError("lrtop: step() after close()")
        # The hot path: a few attribute reads, the loss as a float, a tuple queued for the log (encoded by the
        # service thread), the guard's arithmetic, and a look at the command queue. Nothing is formatted here.
        now = time.perf_counter()
        elapsed = now - self._last_step_time
        self._last_step_time = now
        skipped = self._optimizer_steps == 0
        self._optimizer_steps = 0
        if self._post_hook is not None and self._warmup_restore is None and self.warmup_done >= self.warmup_total:
            self._post_hook.remove()  # not from inside the hook: torch is iterating over its hooks then
            self._post_hook = None
        scaler = self.scaler
        if skipped and scaler is not None:
            self.skipped_steps += 1
        lrs_used = self._lrs_used
        if lrs_used is None:
            lrs_used = self.lrs
        self._lrs_used = None
        if self.range_test is not None:
            self._range_test_step(_scalar(loss), elapsed, samples)
            return
        step = self.step_count = self.step_count + 1
        self._version += 1
        if self._guard_rollbacks and step > self._guard_trip_step:
            self._guard_rollbacks = 0  # past the step that diverged: the rollbacks helped
        if epoch is not None:
            self.epoch = int(epoch)
        elif self.steps_per_epoch:
            self.epoch = (step - 1) // self.steps_per_epoch
        if not self.external and self.scheduler is not None:
            self._scheduler_step((), {})
        loss_value = _scalar(loss)
        self.last_loss = loss_value
        writer = self.writer
        if writer is not None:
            n = samples if samples is not None else self.batch_size
            extra = {k: _number(v) for k, v in metrics.items()} if metrics else None
            if scaler is not None:
                self._last_scale = self._loss_scale()
                extra = extra or {}
                extra["loss_scale"] = _number(self._last_scale)
                extra["skipped_steps"] = self.skipped_steps
            writer.step(step, self.epoch, lrs_used, loss_value,
                        math.nan if grad_norm is None else _scalar(grad_norm),
                        (n / elapsed) if n and elapsed > 0 else math.nan, extra)
            if not (skipped and scaler is not None):
                # GradScaler already skipped this step's inf/NaN gradients: that is AMP working, not divergence.
                self._check_guard(loss_value)
        if self._lr_overflow is not None:
            self._report_lr_overflow()
        if self._checkpoint_requested:
            self._checkpoint_on_request()
        self._boundary()

    def eval(self, val_loss=None, val_acc=None, **metrics) -> None:
        """Logs an evaluation (and steps a ReduceLROnPlateau schedule on `val_loss`). During a find-lr sweep it
        measured the sweep's weights, not the run's: it goes to the sweep's sub-run log only."""
        loss, acc = _scalar(val_loss), _scalar(val_acc)
        test = self.range_test
        if test is not None:
            if test.writer is not None:
                test.writer.eval(test.curve.count, self.epoch, loss, acc,
                                 {k: _number(v) for k, v in metrics.items()} or None)
            return
        if not math.isnan(loss):
            self.best_eval_loss = loss if self.best_eval_loss is None else min(self.best_eval_loss, loss)
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) and not self.external:
                self._scheduler_step((loss,), {})
        if not math.isnan(acc):
            self.final_accuracy = acc
            self.best_accuracy = acc if self.best_accuracy is None else max(self.best_accuracy, acc)
        if self.writer is not None:
            self.writer.eval(self.step_count, self.epoch, loss, acc, {k: _number(v) for k, v in metrics.items()} or None)

    def command(self, text: str) -> None:
        """Queues a command as if typed in `lrtop attach` (applied at the next step boundary; on rank 0 only)."""
        if self.rank == 0:
            self._pending.append(_Pending(text, origin="api"))

    def close(self, reason: Optional[str] = None, message: Optional[str] = None) -> None:
        if self._closed:
            return
        if self.range_test is not None:
            self._finish_range_test(cut_short="cut short: the run ended")
        self._closed = True
        self._pre_hook.remove()
        if self._post_hook is not None:
            self._post_hook.remove()
        if self._signals is not None:
            self._signals.uninstall()
        atexit.unregister(self._exit_hook)
        if reason is None:
            reason = "stopped" if self.stop_reason == "stopped" else ("diverged" if self.stop_reason == "diverged"
                                                                      else "completed")
            if self._signal is not None:
                reason, message = "interrupted", message or signal_name(self._signal)
        self.state = "finished"
        if self._files is not None:
            self._files.close()  # the checkpoints being written are written (and answered) first
        if self.server is not None:
            self.server.broadcast(self._status())
            self.server.close()
        if self.writer is not None:
            trouble = self.writer.trouble_note
            if trouble is not None:
                message = f"{message}; {trouble}" if message else trouble
            self.writer.end(reason, self.step_count, self.epoch,
                            final_loss=None if math.isnan(self.last_loss) else self.last_loss,
                            best_eval_loss=self.best_eval_loss, best_accuracy=self.best_accuracy,
                            final_accuracy=self.final_accuracy, message=message)
            if not self.writer.close():
                _warn(f"lrtop: {self.writer.unwritten} records of {self.log_path} could not be written "
                      f"({self.writer.trouble}): the log ends early")
        close_quietly(self._folder)
        self._folder = None
        self._closed_scheduler_routing = True

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt) or self._signal is not None:
            self.close("interrupted", signal_name(self._signal) if self._signal is not None else "KeyboardInterrupt")
        else:
            self.close("failed", f"{exc_type.__name__}: {exc}"[:500])

    # ------------------------------------------------------------------ optimizer hooks

    def _pre_step(self, optimizer, args, kwargs) -> None:
        # GradScaler skips a step with inf/NaN gradients by not calling optimizer.step(): this hook does not run.
        self._optimizer_steps += 1
        groups = optimizer.param_groups
        if self.range_test is not None:
            lr = self.range_test.curve.next_lr
            if lr is not None:
                for g in groups:
                    g["lr"] = lr
                self._lrs_used = [lr] * len(groups)
            return
        if self.warmup_done < self.warmup_total:
            factor = (self.warmup_done + 1) / self.warmup_total
            self._warmup_restore = [g["lr"] for g in groups]
            for g in groups:
                g["lr"] = g["lr"] * factor
            if self._post_hook is None:
                self._post_hook = optimizer.register_step_post_hook(self._post_step)
        lrs = [float(g["lr"]) for g in groups]
        if not sum(lrs) <= self._lr_limit:  # also NaN: the step would raise, so the last good LR trains instead
            lrs = self._keep_lrs_in_range(groups, lrs)
        self._lrs_used = self._last_good_lrs = lrs

    def _keep_lrs_in_range(self, groups: list, lrs: list[float]) -> list[float]:
        """An LR the parameters' dtype cannot hold (a user's schedule that grew past float32, an exponential one
        stepped for long) would make `optimizer.step()` raise and the run die: that group trains at its last good
        LR this step, and the guard is told at the next boundary (an event, and pause, rollback or stop)."""
        bad = [i for i, x in enumerate(lrs) if not x <= self._lr_limit]
        if not bad:
            return lrs
        kept = list(lrs)
        for i in bad:
            kept[i] = self._last_good_lrs[i] if i < len(self._last_good_lrs) else self.base_lrs[i]
            groups[i]["lr"] = kept[i]
        if self._lr_overflow is None:
            i = bad[0]
            self._lr_overflow = (f"the LR of group {self.group_names[i]} reached {lrs[i]:.3g}, beyond what its "
                                 f"parameters' dtype holds ({self._lr_limit:.3g}); kept {kept[i]:.3g}")
        return kept

    def _post_step(self, optimizer, args, kwargs) -> None:
        if self._warmup_restore is not None:
            for g, lr in zip(optimizer.param_groups, self._warmup_restore):
                g["lr"] = lr
            self._warmup_restore = None
            self.warmup_done += 1

    # ------------------------------------------------------------------ scheduling

    def _route(self, scheduler) -> None:
        cls = type(scheduler)
        if not hasattr(cls, "_lrtop_base"):
            scheduler.__class__ = _routed_class(cls, self)

    @staticmethod
    def _raw_step(scheduler, args, kwargs) -> None:
        cls = getattr(type(scheduler), "_lrtop_base", type(scheduler))
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if not args and "metrics" not in kwargs:
                return  # a plateau schedule steps on a metric (run.eval / the framework's monitor)
            cls.step(scheduler, *args, **kwargs)
        else:
            cls.step(scheduler)

    def _scheduler_step(self, args, kwargs) -> None:
        if self.range_test is not None:
            return  # the sweep sets the LR; the schedule (put back at the sweep's end) stands still
        held = True in self.held
        pinned = self.lrs if held else None
        if self.scheduler is not None:
            self._raw_step(self.scheduler, args, kwargs)
        if self.shadow is not None:
            if args or kwargs:
                self._settle_shadow(then=(args, kwargs))
            else:
                self._shadow_owed += 1
        if held:
            for i, g in enumerate(self.optimizer.param_groups):
                if self.held[i]:
                    g["lr"] = pinned[i]

    def _settle_shadow(self, then=None) -> None:
        """Steps the shadow schedule the steps it is owed (and then once with `then`'s arguments). A schedule with
        a closed form (StepLR, CosineAnnealingLR, ...: nothing but the shadow ever changes its LR) jumps there."""
        with self._shadow_lock:
            shadow = self.shadow
            owed = self._shadow_owed - self._shadow_paid
            kind = getattr(type(shadow), "_lrtop_base", type(shadow))
            if owed > 0 and shadow is not None and kind in _CLOSED_FORM:
                shadow.last_epoch += owed
                shadow._step_count += owed
                lrs = [float(x) for x in shadow._get_closed_form_lr()]
                for g, lr in zip(self._shadow_opt.param_groups, lrs):
                    g["lr"] = lr
                shadow._last_lr = lrs
                self._shadow_paid += owed
            while self._shadow_paid < self._shadow_owed:
                self._shadow_paid += 1
                if shadow is not None:
                    self._raw_step(shadow, (), {})
            if then is not None and shadow is not None:
                self._raw_step(shadow, *then)

    def _tick(self) -> None:
        """The socket's service thread, about ten times a second: the log's flush and the shadow's steps."""
        if self.writer is not None:
            self.writer.maybe_flush()
        test = self.range_test
        if test is not None and test.writer is not None:
            test.writer.maybe_flush()
        if self._shadow_paid < self._shadow_owed:
            self._settle_shadow()

    def _remaining(self) -> Optional[int]:
        return None if self.total_steps is None else self.total_steps - self.step_count

    def _install_spec(self, spec: str, base_lrs: list[float]) -> None:
        """Builds `spec` over the optimizer (and its shadow) relative to `base_lrs`, and makes it the active one."""
        groups = self.optimizer.param_groups
        before = self.lrs
        for g, lr in zip(groups, base_lrs):
            g["lr"] = lr
        try:
            built = SB.build_spec(self.optimizer, spec, self._remaining())
        except Exception:
            for g, lr in zip(groups, before):
                g["lr"] = lr
            raise
        with self._shadow_lock:
            self._shadow_paid = self._shadow_owed  # the old shadow is replaced: what it was owed is moot
            for sg, lr in zip(self._shadow_opt.param_groups, base_lrs):
                sg["lr"] = lr
            shadow = SB.build_spec(self._shadow_opt, spec, self._remaining())
            self.shadow = shadow
        for i, g in enumerate(groups):
            if self.held[i]:
                g["lr"] = before[i]  # a held group keeps its LR through a scheduler switch
        if self.external:
            self._route(built)
        self.scheduler, self.shadow, self.spec = built, shadow, spec
        self._on_scheduler_replaced(built)

    def _on_scheduler_replaced(self, scheduler) -> None:
        """Framework integrations override this to hand the new scheduler to the trainer."""

    # ------------------------------------------------------------------ guard

    def _check_guard(self, loss: float) -> None:
        if self.guard_action == "off" or self.paused and self.guard_action == "pause":
            return
        reason = None
        if not math.isfinite(loss):
            reason = f"loss is {'NaN' if math.isnan(loss) else 'infinite'} at step {self.step_count}"
        else:
            if len(self._first_losses) < 10:
                self._first_losses.append(loss)
                self._loss_floor = 0.1 * (sum(self._first_losses) / len(self._first_losses))
            floor = self._loss_floor
            best = self._best_ema
            if self.guard_factor > 0 and best is not None and self.step_count > 10 and \
                    loss > self.guard_factor * max(best, floor):
                reason = (f"loss {loss:.4g} at step {self.step_count} is over {self.guard_factor:g}x "
                          f"the best smoothed loss {best:.4g}")
            else:
                self._loss_ema = loss if self._loss_ema is None else 0.9 * self._loss_ema + 0.1 * loss
                self._best_ema = self._loss_ema if best is None else min(best, self._loss_ema)
        if reason is not None:
            self._pending.insert(0, _Pending(f"guard {self.guard_action}", origin="guard", id=reason))

    # ------------------------------------------------------------------ step boundary

    def _boundary(self) -> None:
        """Exchanges and applies commands; blocks while paused (every rank polls together, so rank 0's socket
        and every rank's collective see a heartbeat at least every 0.1 s). The log is flushed by the socket's
        service thread, not here."""
        self._exchange_and_apply()
        # A find-lr sweep runs while paused (the TUI's `f` pauses first): the loop goes on for its steps, and the run
        # is held again at the sweep's last boundary.
        while self.paused and self.steps_while_paused == 0 and self.stop_reason is None and self.range_test is None:
            time.sleep(0.05)
            self._exchange_and_apply()
        if self.paused and self.steps_while_paused > 0:
            self.steps_while_paused -= 1

    def _exchange_and_apply(self) -> None:
        if self.range_test is not None:
            return  # commands wait in the socket for the sweep's end (its own exchange keeps DDP in step)
        if self.server is not None:
            for req in self.server.poll():
                self._pending.append(_Pending(req.text, req.id, req.client, "socket"))
        if not self._pending and not self.distributed:
            return
        accepted: list[_Pending] = []
        if self.rank == 0:
            # A bounded share per boundary: a flood of commands is spread over the next boundaries, so no step
            # waits for it (what waits is answered when it is taken).
            # At most a few costly commands (checkpoints, rollbacks, evaluations) per boundary. The `ckpt`s queued
            # right behind a `ckpt` are the same checkpoint: they are answered from the next boundaries on, without
            # another one (a burst of 300 is one checkpoint).
            taken = costly = 0
            lrs = self.lrs
            for p in self._pending[:MAX_COMMANDS_PER_BOUNDARY]:
                if p.same_as is not None:
                    taken += 1
                    self._answer_coalesced(p)
                    continue
                if accepted and _costly(accepted[-1], lrs):
                    costly += 1
                    if costly >= MAX_COSTLY_PER_BOUNDARY or accepted[-1].command.verb == "ckpt":
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
                if command.verb == "ckpt":
                    for q in self._pending[taken:]:
                        if q.origin in ("guard", "signal") or q.same_as is not None or not _is_ckpt(q.text):
                            break
                        q.same_as = p
            del self._pending[:taken]
        records = self.channel.exchange([{"text": p.text, "origin": p.origin,
                                          "reason": p.id if p.origin in ("guard", "signal") else None}
                                         for p in accepted])
        if self.rank != 0:
            accepted = [_Pending(r["text"], r.get("reason"), None, r["origin"]) for r in records]
        elif len(records) < len(accepted):  # more than one exchange carries: the rest goes at the next boundary
            self._pending[:0] = accepted[len(records):]
            accepted = accepted[:len(records)]
        for i, p in enumerate(accepted):
            if self.range_test is not None:  # a find-lr began in this batch: the rest waits for its end
                self.range_test.deferred.extend(accepted[i:])
                break
            self._apply_accepted(p)

    def _apply_accepted(self, p: _Pending) -> None:
        if p.origin == "guard":
            self._apply_guard(str(p.id))
        elif p.origin == "signal":
            self._automatic_checkpoint(f"signal {p.id}")
        else:
            self._apply(p)
            if self.server is not None:
                self.server.broadcast(self._status())  # after every applied command (protocol v1)

    def _reply(self, p: _Pending, obj: dict) -> None:
        if p.client is not None and self.server is not None:
            self.server.send(p.client, obj)

    def _event(self, kind: str, text: str, before: list[float], after: list[float], message: Optional[str],
               step: Optional[int] = None) -> None:
        if self.writer is not None:
            self.writer.event(self.step_count if step is None else step, kind, text, before, after, message)

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
            if command.verb == "find-lr":
                self._start_range_test(command, p)
                return  # its event and result come when the sweep ends
            if command.verb == "ckpt" and not (self.checkpoints and self._checkpoint_version == self._version):
                self._checkpoint_command(p, before)
                return  # its event and result come when the file is written
            if command.is_risky(before):
                self._automatic_checkpoint(f"before '{p.text}'")
            note = self._perform(command)
            if command.verb not in ("ckpt", "eval"):
                self._version += 1
            after = self.lrs
            self._event("command", p.text, before, after, note)
            msg = f"{p.text}: {_lr_change(before, after)}" + (f" ({note})" if note else "")
            self._reply(p, {"type": "result", "id": p.id, "ok": True, "step": self.step_count, "message": msg})
        except Exception as e:  # whatever a command raises is its answer, never the end of the run
            for g, lr in zip(self.optimizer.param_groups, before):
                g["lr"] = lr
            error = p.error = _one_line(e)
            self._event("error", p.text, before, before, error)
            self._reply(p, {"type": "result", "id": p.id, "ok": False, "step": self.step_count, "error": error})

    def _answer_coalesced(self, p: _Pending) -> None:
        """A `ckpt` that arrived right behind another: that one's checkpoint is its answer."""
        lead = p.same_as
        assert lead is not None
        self._reply(p, {"type": "ack", "id": p.id, "ok": True})
        lrs = self.lrs
        if lead.error is not None:
            self._event("error", p.text, lrs, lrs, f"{lead.error} (as the '{lead.text}' just before it)")
            self._reply(p, {"type": "result", "id": p.id, "ok": False, "step": self.step_count,
                            "error": f"{lead.error} (as the '{lead.text}' just before it)"})
            return
        note = f"the same checkpoint as the '{lead.text}' just before it"
        self._event("command", p.text, lrs, lrs, note)
        self._reply(p, {"type": "result", "id": p.id, "ok": True, "step": self.step_count,
                        "message": f"{p.text}: LR unchanged ({note})"})

    def _checkpoint_command(self, p: _Pending, lrs: list[float]) -> None:
        """`ckpt`: the checkpoint is kept now; its event and answer come when the file is written (or at once when
        there is no file to write)."""
        step = self.step_count

        def succeeded(note: str) -> None:
            self._event("command", p.text, lrs, lrs, note, step=step)
            self._reply(p, {"type": "result", "id": p.id, "ok": True, "step": step,
                            "message": f"{p.text}: LR unchanged ({note})"})

        def written(path: Optional[str], error: Optional[str]) -> None:
            if error is None:
                succeeded(f"saved {path}")
            else:
                p.error = error
                self._event("error", p.text, lrs, lrs, error, step=step)
                self._reply(p, {"type": "result", "id": p.id, "ok": False, "step": step, "error": error})

        note = self._checkpoint_in_background("manual", written)
        self._on_manual_checkpoint()
        if note is not None:
            succeeded(note)

    def _on_manual_checkpoint(self) -> None:
        """Framework integrations override this (HF also saves its own checkpoint)."""

    def _rebase(self, i: int, new_lr: float) -> None:
        """LambdaLR (HF's default schedules) recomputes the LR from its base each step, which would undo a manual
        change; rescaling its base makes the schedule continue from the new value, as chainable schedulers do."""
        lambdas = [s for s in [self.scheduler] + list(getattr(self.scheduler, "_schedulers", []) or [])
                   if isinstance(s, torch.optim.lr_scheduler.LambdaLR)]
        old = self.optimizer.param_groups[i]["lr"]
        for s in lambdas:
            if old > 0:
                s.base_lrs[i] = s.base_lrs[i] * new_lr / old
            else:
                s.base_lrs[i] = new_lr  # from zero: the ratio is unknown; restart the schedule's scale at new_lr

    def _group_indices(self, name: Optional[str]) -> list[int]:
        if name is None:
            return list(range(len(self.group_names)))
        if name in self.group_names:
            return [self.group_names.index(name)]
        idx = C.swift_int(name)
        if idx is not None and 0 <= idx < len(self.group_names):
            return [idx]
        raise C.CommandError(f"no param group '{name}': groups are {', '.join(self.group_names)}")

    def _precheck(self, c: C.Command) -> None:
        if c.verb in ("fork", "adopt", "drop"):
            raise C.CommandError(f"{c.verb} is not available on a bridged PyTorch run: use lrtop's own trainer, "
                                 "or restart with the LR you want")
        if c.verb == "lr":
            idx = self._group_indices(c.group)
            self._check_lr_range(c, idx)
        elif c.verb == "sched":
            SB.resolve(c.spec, self._remaining(), groups=len(self.group_names))

    def _check_lr_range(self, c: C.Command, idx: list[int]) -> None:
        """An LR the parameters' dtype cannot hold would make the next `optimizer.step()` raise: refused here."""
        if c.change.kind == "set" and not c.change.value <= self._lr_limit:
            raise C.CommandError(f"an LR of {c.change.value:.3g} is beyond what the parameters' dtype holds "
                                 f"({self._lr_limit:.3g}): the next step would overflow; nothing changed")
        if c.change.kind == "scale":
            groups = self.optimizer.param_groups
            bad = [x for x in (groups[i]["lr"] * c.change.value for i in idx) if not x <= self._lr_limit]
            if bad:
                raise C.CommandError(f"scaling gives an LR of {bad[0]:.3g}, beyond what the parameters' dtype "
                                     f"holds ({self._lr_limit:.3g}); nothing changed")

    def _perform(self, c: C.Command) -> Optional[str]:
        groups = self.optimizer.param_groups
        v = c.verb
        if v == "lr":
            idx = self._group_indices(c.group)
            kind = c.change.kind
            self._check_lr_range(c, idx)
            if kind == "set":
                for i in idx:
                    self._rebase(i, c.change.value)
                    groups[i]["lr"] = c.change.value
                    self.overridden[i] = True
            elif kind == "scale":
                scaled = [groups[i]["lr"] * c.change.value for i in idx]
                for i, x in zip(idx, scaled):
                    self._rebase(i, x)
                    groups[i]["lr"] = x
                    self.overridden[i] = True
            elif kind == "hold":
                for i in idx:
                    self.held[i] = True
                return "held until 'lr release'"
            elif kind == "release":
                self._settle_shadow()
                planned = [g["lr"] for g in self._shadow_opt.param_groups] if self.shadow is not None \
                    else (self.base_lrs if self.scheduler is None else None)
                for i in idx:
                    self.held[i] = False
                    self.overridden[i] = False
                    if planned is not None:
                        groups[i]["lr"] = planned[i]
                return "back to the schedule as planned" if planned is not None else \
                    "released (the schedule's planned LR is unknown: the scheduler could not be copied)"
            elif kind == "reset":
                if c.group is None:
                    self._reset_schedule()
                    return "base LR restored, schedule restarted"
                for i in idx:
                    groups[i]["lr"] = self.base_lrs[idx[0]]
                    self.overridden[i] = True
                return "base LR restored for this group; the schedule continues from it"
            return None
        if v == "sched":
            self._install_spec(c.spec, self.lrs)
            return f"now {SB.describe(self.scheduler, self._canonical())}, continuing from the current LR"
        if v == "warmup":
            self.warmup_total, self.warmup_done = c.count, 0
            return f"ramping the LR up over {c.count} steps"
        if v == "pause":
            if self.paused:
                raise C.CommandError("already paused: 'resume' continues, 'step' takes one step")
            self._pause()
            return None
        if v == "resume":
            if not self.paused:
                raise C.CommandError("not paused")
            self.paused = False
            self.steps_while_paused = 0
            self.state = "running"
            return None
        if v == "step":
            if not self.paused:
                raise C.CommandError("'step' works while paused: 'pause' first")
            self.steps_while_paused += c.count
            return None
        if v == "stop":
            self.stop_reason = "stopped"
            self.paused = False
            return None
        if v == "ckpt":
            last = self.checkpoints[-1]["lrtop"]  # taken by `_checkpoint_command` just before
            where = f"saved {self._last_checkpoint_path}" if self._last_checkpoint_path else "kept in memory"
            return f"nothing changed since the checkpoint at step {last['step']} ({last['label']}): {where}"
        if v == "rollback":
            if not self.checkpoints:
                raise C.CommandError("no checkpoint to roll back to: 'ckpt' takes one")
            frm = self.step_count
            target = self.checkpoints[-1]
            self._restore_or_keep(target, "rollback")
            return f"rolled back from step {frm} to step {target['lrtop']['step']} ({target['lrtop']['label']})"
        if v == "eval":
            self._run_eval()
            return None
        raise C.CommandError(f"unknown command '{v}'")

    def _canonical(self) -> Optional[str]:
        if self.spec is None:
            return None
        try:
            return SB.resolve(self.spec, self.total_steps, len(self.group_names)).spec
        except SpecError:
            return self.spec

    def _pause(self) -> None:
        self.paused = True
        self.steps_while_paused = 0
        self.state = "paused"
        if self.writer is not None:
            self.writer.flush()

    def _reset_schedule(self) -> None:
        groups = self.optimizer.param_groups
        self.held = [False] * len(groups)
        self.overridden = [False] * len(groups)
        self.warmup_total = self.warmup_done = 0
        if self.spec is not None:
            self._install_spec(self.spec, self.base_lrs)
            return
        for g, lr in zip(groups, self.base_lrs):
            g["lr"] = lr
            g["initial_lr"] = lr
        if self.user_scheduler is not None:
            # Restart the user's own scheduler from its first step.
            sched = self.user_scheduler
            cls = getattr(type(sched), "_lrtop_base", type(sched))
            fresh_state = self._fresh_state(sched)
            if fresh_state is not None:
                cls.load_state_dict(sched, fresh_state)
            for g, lr in zip(groups, self.base_lrs):
                g["lr"] = lr
            self.scheduler = sched
            with self._shadow_lock:
                self._shadow_paid = self._shadow_owed
                self.shadow = SB.twin(sched, self.optimizer, self._shadow_opt)
                for sg, lr in zip(self._shadow_opt.param_groups, self.base_lrs):
                    sg["lr"] = lr
            self._on_scheduler_replaced(sched)

    def _fresh_state(self, sched) -> Optional[dict]:
        state = dict(sched.state_dict())
        if "last_epoch" in state:
            state["last_epoch"] = 0
            state["_step_count"] = 1
            state["base_lrs"] = list(self.base_lrs)
            state["_last_lr"] = list(self.base_lrs)
            return state
        return None

    def _apply_guard(self, reason: str) -> None:
        before = self.lrs
        action = self.guard_action
        if action == "rollback" and self.checkpoints and self._guard_rollbacks >= MAX_GUARD_ROLLBACKS:
            # Halving and rolling back again has not helped: someone has to decide (or, with no one to ask, stop).
            tried = f"{self._guard_rollbacks} rollbacks in a row, each halving the LR, did not help"
            self._guard_rollbacks = 0
            if self.server is not None and self.server.has_clients:
                self._guard_pause(f"{reason}; {tried}", before)
            else:
                self.stop_reason = "diverged"
                self._event("guard", "guard", before, self.lrs, f"{reason}; {tried}; stopped (no viewer attached)")
                _warn(f"lrtop: {self.name}: {reason}; {tried}: stopped")
        elif action == "pause":
            self._guard_pause(reason, before)
        elif action == "stop":
            self.stop_reason = "diverged"
            self._event("guard", "guard", before, self.lrs, f"{reason}; stopped")
        elif action == "rollback":
            if not self.checkpoints:
                self._guard_pause(f"{reason}; no checkpoint to roll back to", before)
            else:
                target = self.checkpoints[-1]
                tripped_at = self.step_count
                self._restore_or_keep(target, "the guard's rollback", lr_factor=0.5)
                self._guard_rollbacks += 1
                self._guard_trip_step = max(self._guard_trip_step, tripped_at)
                self._event("guard", "guard", before, self.lrs,
                            f"{reason}; rolled back to step {target['lrtop']['step']} and halved the LR")
        if self.server is not None:
            self.server.broadcast(self._status())

    def _guard_pause(self, reason: str, before: list[float]) -> None:
        """Pauses for the guard and says so on stderr too: with no viewer attached, nothing else would tell."""
        if not self.paused:
            self._pause()
        self._event("guard", "guard", before, self.lrs, f"{reason}; paused ('resume' continues, 'rollback' undoes)")
        if self.rank == 0:
            _warn(f"lrtop: {self.name} paused at step {self.step_count}: {reason}; decide with: lrtop attach "
                  f"{self.run_dir} ('resume', 'rollback', 'lr ...' or 'stop')")

    def _report_lr_overflow(self) -> None:
        reason, self._lr_overflow = self._lr_overflow, None
        if self.writer is None:
            return
        if self.guard_action == "off":
            self._event("guard", "guard", self.lrs, self.lrs, f"{reason} (the guard is off: training goes on)")
        else:
            self._pending.insert(0, _Pending(f"guard {self.guard_action}", origin="guard",
                                             id=f"{reason} at step {self.step_count}"))

    def _run_eval(self) -> None:
        if self.eval_fn is None:
            raise C.CommandError("no evaluation function: pass eval_fn= to lrtop.attach")
        try:
            result = self.eval_fn()
        except Exception as e:  # the user's evaluation failed: the answer says why, the run goes on
            raise C.CommandError(f"eval failed: {_one_line(e)}; the run goes on") from None
        if isinstance(result, dict):
            self.eval(**result)

    # ------------------------------------------------------------------ signals

    def _note_signal(self, signum: int) -> None:
        self._signal = signum

    def _flush_log(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def _finish_on_signal(self, signum: int) -> None:
        self.close("interrupted", signal_name(signum))

    def _request_checkpoint(self) -> None:
        self._checkpoint_requested = True

    def _checkpoint_on_request(self) -> None:
        """SIGUSR1 (Slurm's warning before the time limit): a checkpoint on every rank at this boundary."""
        self._checkpoint_requested = False
        if self.rank == 0:
            self._pending.insert(0, _Pending("ckpt", origin="signal", id="SIGUSR1"))

    def _writing_on_this_thread(self) -> bool:
        return self.writer is not None and self.writer.flushing_thread == threading.get_ident()

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
        meta = {"version": __version__, "step": self.step_count, "epoch": self.epoch, "label": label,
                "spec": self.spec, "held": list(self.held), "overridden": list(self.overridden),
                "warmup": [self.warmup_total, self.warmup_done], "lrs": self.lrs,
                "base_lrs": list(self.base_lrs), "skipped_steps": self.skipped_steps,
                "optimizer": type(self.optimizer).__name__}
        if self.user_scheduler is not None:
            meta["scheduler"] = _class_name(self.user_scheduler)
        snap = {"lrtop": meta, "optimizer": copy.deepcopy(self.optimizer.state_dict()), "rng": rng}
        if self.model is not None:
            snap["model"] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.scheduler is not None:
            snap["scheduler"] = copy.deepcopy(self.scheduler.state_dict())
        self._settle_shadow()
        if self.shadow is not None:
            snap["shadow"] = copy.deepcopy(self.shadow.state_dict())
            snap["shadow_lrs"] = [g["lr"] for g in self._shadow_opt.param_groups]
        if self.scaler is not None:
            snap["scaler"] = copy.deepcopy(self.scaler.state_dict())
        return snap

    def _nonfinite_weights(self) -> Optional[str]:
        """The first weight (or optimizer state) holding NaN or infinity, by name; None when all are finite."""
        tensors: dict = {}
        if self.model is not None:
            tensors.update(self.model.state_dict())
        else:
            for gi, g in enumerate(self.optimizer.param_groups):
                for pi, p in enumerate(g["params"]):
                    tensors[f"param {pi} of group {self.group_names[gi]}"] = p.detach()
        for pi, state in enumerate(self.optimizer.state.values()):
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer {key} of param {pi}"] = value
        return CF.nonfinite_tensor(tensors)

    def save_checkpoint(self, label: str = "manual") -> Optional[str]:
        """Keeps a checkpoint in memory (for `rollback`, on every rank) and writes it on rank 0 atomically, with its
        checksum: `RUN_DIR/checkpoints/step-NNNNNNN.pt` and `.pt.sha256`. Returns the file's path on rank 0 once it
        is on disk. Weights that hold NaN or infinity are refused (CheckpointError; nothing kept), so a rollback
        always finds finite ones; a file that cannot be written (a full disk) raises CheckpointError after the
        in-memory copy is kept. (The `ckpt` command writes the file on a thread of its own instead: the step
        boundary does not wait for the disk.)"""
        snap = self._keep_checkpoint(label)
        if self._files is None:
            return None
        name = _checkpoint_name(snap)
        try:
            path = self._files.write_now(name, snap)
        except OSError as e:
            raise CheckpointError(f"kept in memory for rollback, but {os.path.join(self._files.folder_path, name)} "
                                  f"could not be written: {e.strerror or e}") from None
        self._last_checkpoint_path = path
        if label != "manual":
            self._event("checkpoint", label, self.lrs, self.lrs, f"saved {path}")
        return path

    @property
    def checkpoint_files(self) -> list[str]:
        """The checkpoint files on disk this run wrote, oldest first (the newest `checkpoint_keep`)."""
        return list(self._files.files) if self._files is not None else []

    def _keep_checkpoint(self, label: str) -> dict:
        """The in-memory checkpoint (every rank): refused when the weights are not finite."""
        bad = self._nonfinite_weights()
        if bad is not None:
            raise CheckpointError(f"not saved: the weights hold NaN or infinity ({bad}); rollback keeps the last "
                                  "finite checkpoint")
        snap = self._snapshot(label)
        self.checkpoints.append(snap)
        del self.checkpoints[:-self.checkpoint_keep]
        self._checkpoint_version = self._version
        self._last_checkpoint_path = None
        return snap

    def _checkpoint_in_background(self, label: str,
                                  written: Callable[[Optional[str], Optional[str]], None]) -> Optional[str]:
        """Keeps a checkpoint in memory now and queues its file; `written(path, error)` is called (on the writer's
        thread) once it is on disk or failed. Returns None when the file is queued, else why it is not (in memory
        only: a run without files, a rank other than 0, a disk too slow to keep up)."""
        snap = self._keep_checkpoint(label)
        if self._files is None:
            return "kept in memory"
        name = _checkpoint_name(snap)

        def done(path: Optional[str], error: Optional[BaseException]) -> None:
            if error is None:
                self._last_checkpoint_path = path
                written(path, None)
            else:
                written(None, f"kept in memory for rollback, but {os.path.join(self._files.folder_path, name)} "
                              f"could not be written: {getattr(error, 'strerror', None) or error}")

        if not self._files.submit(name, snap, done):
            return (f"kept in memory for rollback; its file is not written: {self._files.MAX_WAITING} earlier "
                    "checkpoints are still being written (the disk is slow)")
        return None

    def _automatic_checkpoint(self, label: str) -> None:
        """The checkpoint before a risky command (or at SIGUSR1): one that cannot be taken is an event, and the
        command still applies."""
        step, lrs = self.step_count, self.lrs

        def written(path: Optional[str], error: Optional[str]) -> None:
            self._event("checkpoint", label, lrs, lrs, f"saved {path}" if error is None else error, step=step)

        try:
            note = self._checkpoint_in_background(label, written)
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
        snap = CF.read(path)
        self._check_fits(snap, path)
        self._restore_or_keep(snap, f"loading {path}", lr=lr)
        _clean_stale_temporaries(os.path.dirname(os.path.abspath(path)))

    def _check_fits(self, snap: dict, path: str) -> None:
        """Refuses a checkpoint of another run's shape before anything changes."""
        def refuse(what: str) -> CheckpointError:
            return CheckpointError(f"lrtop: {path}: {what}; nothing loaded")

        meta, saved = snap["lrtop"], snap["optimizer"]
        mine = self.optimizer.state_dict()
        kind = meta.get("optimizer")
        if kind is not None and kind != type(self.optimizer).__name__:
            raise refuse(f"it is a checkpoint of a {kind} optimizer and this run steps a {type(self.optimizer).__name__}")
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
                         [p for g in self.optimizer.param_groups for p in g["params"]]))
        for key, state in saved["state"].items():
            if key not in ids or not isinstance(state, dict):
                raise refuse("its optimizer state names a parameter the run does not have")
            param = by_id[ids[key]]
            for name, value in state.items():
                if isinstance(value, torch.Tensor) and value.numel() > max(1, param.numel()):
                    raise refuse(f"its optimizer state '{name}' does not fit parameter {key} "
                                 f"({list(value.shape)} for {list(param.shape)})")
        model = snap.get("model")
        if self.model is not None:
            if model is None:
                raise refuse("it holds no model weights (saved without model=)")
            expected = self.model.state_dict()
            if set(model) != set(expected):
                missing, extra = sorted(set(expected) - set(model)), sorted(set(model) - set(expected))
                raise refuse("its weights are not this model's (" + "; ".join(
                    x for x in (f"missing {', '.join(missing[:3])}" if missing else "",
                                f"unexpected {', '.join(extra[:3])}" if extra else "") if x) + ")")
            for k, v in model.items():
                if v.shape != expected[k].shape or v.dtype != expected[k].dtype:
                    raise refuse(f"its weight {k} is {v.dtype} {list(v.shape)}, this model's "
                                 f"{expected[k].dtype} {list(expected[k].shape)}")
        tensors = dict(model or {})
        for pi, state in saved["state"].items():
            for name, value in state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer {name} of param {pi}"] = value
        bad = CF.nonfinite_tensor(tensors)
        if bad is not None:
            raise refuse(f"its {bad} holds NaN or infinity")
        user = meta.get("scheduler")
        if user is not None and self.user_scheduler is not None and user != _class_name(self.user_scheduler):
            raise refuse(f"it was saved with a {user} schedule and this run has a {_class_name(self.user_scheduler)}")
        if self.scheduler is not None and meta.get("spec") is None and "scheduler" in snap and \
                self.scheduler is self.user_scheduler and set(snap["scheduler"]) != set(self.scheduler.state_dict()):
            raise refuse("its schedule's state is not this run's scheduler's")

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
        if self.model is not None and "model" in snap:
            self.model.load_state_dict(snap["model"])
        self.optimizer.load_state_dict(copy.deepcopy(snap["optimizer"]))
        if meta["spec"] != self.spec and meta["spec"] is not None:
            self._install_spec(meta["spec"], meta["lrs"])
        elif meta["spec"] is None and self.user_scheduler is not None and self.scheduler is not self.user_scheduler:
            self.scheduler = self.user_scheduler
            self.spec = None
            self._on_scheduler_replaced(self.scheduler)
        if self.scheduler is not None and "scheduler" in snap:
            cls = getattr(type(self.scheduler), "_lrtop_base", type(self.scheduler))
            cls.load_state_dict(self.scheduler, copy.deepcopy(snap["scheduler"]))
        if self.shadow is not None and "shadow" in snap:
            with self._shadow_lock:
                self._shadow_paid = self._shadow_owed
                cls = getattr(type(self.shadow), "_lrtop_base", type(self.shadow))
                cls.load_state_dict(self.shadow, copy.deepcopy(snap["shadow"]))
                for g, x in zip(self._shadow_opt.param_groups, snap["shadow_lrs"]):
                    g["lr"] = x
        if self.scaler is not None and "scaler" in snap:
            self.scaler.load_state_dict(snap["scaler"])
        rng = snap["rng"]
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        np = sys.modules.get("numpy")
        if np is not None and "numpy" in rng:
            kind, keys, pos, has_gauss, cached = rng["numpy"]
            np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        self.held = list(meta["held"])
        self.overridden = list(meta["overridden"])
        self.warmup_total, self.warmup_done = meta["warmup"]
        self.step_count = meta["step"]
        self.epoch = meta["epoch"]
        self._loss_ema = self._best_ema = None
        groups = self.optimizer.param_groups
        for g, x in zip(groups, meta["lrs"]):
            g["lr"] = x
        if lr_factor is not None or lr is not None:
            new = [x * lr_factor if lr_factor is not None else lr for x in meta["lrs"]]
            self._override_lrs(new)

    def _override_lrs(self, new: list[float]) -> None:
        """Sets the LRs and rescales the scheduler's remembered base LRs to match, so a restored scheduler does not
        silently put its saved LR back (the common resume-with-a-new-LR trap)."""
        groups = self.optimizer.param_groups
        old = [g["lr"] for g in groups]
        ratios = [n / o if o else 1.0 for n, o in zip(new, old)]
        for g, x, r in zip(groups, new, ratios):
            g["lr"] = x
            if "initial_lr" in g:
                g["initial_lr"] = g["initial_lr"] * r
        scheds = [self.scheduler] + list(getattr(self.scheduler, "_schedulers", []) or [])
        for s in scheds:
            if s is None:
                continue
            if hasattr(s, "base_lrs"):
                s.base_lrs = [b * r for b, r in zip(s.base_lrs, ratios)]
            if hasattr(s, "_last_lr"):
                s._last_lr = list(new)
            for attr in ("max_lrs", "min_lrs"):
                if isinstance(getattr(s, attr, None), list) and len(getattr(s, attr)) == len(new) \
                        and not isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    setattr(s, attr, [b * r for b, r in zip(getattr(s, attr), ratios)])
        self.overridden = [True] * len(groups)

    # ------------------------------------------------------------------ status

    def _loss_scale(self) -> float:
        try:
            return float(self.scaler.get_scale()) if self.scaler is not None and self.scaler.is_enabled() else math.nan
        except Exception:
            return math.nan

    def _hello(self) -> dict:
        return {"type": "hello", "protocol": 1, "run": self.name, "log": self.log_path, "pid": os.getpid(),
                "framework": self.framework, "world_size": self.world_size}

    def _status(self) -> dict:
        # The scale read at the last step: reading it here could synchronise the GPU from the socket's thread.
        scale = self._last_scale if self.scaler is not None else None
        return {"type": "status", "state": self.state, "step": self.step_count, "epoch": self.epoch,
                "total_steps": self.total_steps, "lr": self.lrs, "groups": self.group_names,
                "hold": any(self.held), "override": any(self.overridden),
                "scheduler": SB.describe(self.scheduler, self._canonical()),
                "loss_scale": None if scale is None or math.isnan(scale) else scale,
                "skipped_steps": self.skipped_steps, "checkpoints": len(self.checkpoints)}


def _number(v) -> object:
    return number(_scalar(v))


def _is_ckpt(text: str) -> bool:
    return text.strip(" \t").lower() in ("ckpt", "checkpoint")


def _costly(p: "_Pending", lrs: list[float]) -> bool:
    """Whether applying `p` takes more than setting a few numbers (a checkpoint, a rollback, an evaluation)."""
    c = p.command
    return c is not None and (c.verb in COSTLY_VERBS or c.is_risky(lrs))


def _checkpoint_name(snap: dict) -> str:
    return f"step-{snap['lrtop']['step']:07d}.pt"


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


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _class_name(obj: object) -> str:
    cls = type(obj)
    return getattr(cls, "_lrtop_base", cls).__name__


def _one_line(e: BaseException) -> str:
    """An exception as one line: lrtop's own errors as they are, others with their type."""
    if isinstance(e, (C.CommandError, SpecError, CheckpointError)):
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:300]}" if lines else type(e).__name__


def _lr_change(before: list[float], after: list[float]) -> str:
    if before == after:
        return "LR unchanged"
    if len(set(before)) == 1 and len(set(after)) == 1:
        return f"all groups {before[0]:.2e} -> {after[0]:.2e}"
    return ", ".join(f"{b:.2e} -> {a:.2e}" for b, a in zip(before, after))


def attach(optimizer: torch.optim.Optimizer, scheduler=None, model: Optional[torch.nn.Module] = None, scaler=None,
           name: Optional[str] = None, log_dir: str = "runs", **options) -> Run:
    """Starts logging and steering `optimizer`'s run. Call `run.step(loss=...)` after every `optimizer.step()`.

    Options: total_steps, steps_per_epoch, batch_size, config (dict), seed, eval_fn (returns a dict of eval metrics),
    guard ('pause' | 'rollback' | 'stop' | 'off'), guard_factor, checkpoint_keep.
    """
    return Run(optimizer, scheduler, model, scaler, name, log_dir, **options)
