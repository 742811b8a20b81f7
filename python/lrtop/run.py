"""`lrtop.attach(...)`: the run log, the control socket and the steering of a PyTorch optimizer at step boundaries.

Who writes the LR follows the Swift trainer's rules (docs/steering.md): a manual `lr` is what the next scheduler step
continues from (PyTorch's chainable schedulers do this natively); `lr hold` undoes the scheduler's writes to a group;
`lr release` returns to a shadow copy of the schedule that no manual change touched; `sched SPEC` builds a new
PyTorch scheduler whose base LRs are the current ones; `warmup N` scales the LR the optimizer uses by k/N.
"""
from __future__ import annotations

import copy
import datetime as _dt
import json
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
from . import commands as C
from . import schedulers as SB
from .distributed import CommandChannel
from .rangetest import RangeTestMixin
from .runlog import RunLogWriter, number
from .server import ControlServer
from .slurm import slurm_job
from .specs import SpecError

GUARD_ACTIONS = ("pause", "rollback", "stop")
VIEWED_FLUSH_INTERVAL = 0.05


@dataclass
class _Pending:
    """A command to apply at the next step boundary: from a socket client (rank 0) or the run itself."""
    text: str
    id: object = None
    client: Any = None
    origin: str = "socket"  # "socket" | "guard" | "api"


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
        self.checkpoint_files: list[str] = []
        self._pending: list[_Pending] = []
        self._closed = False

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

        self.name = name or _default_name()
        self.run_dir = os.path.abspath(os.path.join(log_dir, self.name))
        self.log_path = os.path.join(self.run_dir, "run.jsonl")
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
        if self.rank == 0:
            os.makedirs(self.run_dir, exist_ok=True)
            self.writer = RunLogWriter(self.log_path, self.start)
            self.server = ControlServer(self._hello(), self._status, self._on_malformed, self._tick)
            self.writer.header(
                version=__version__,
                start_time=_dt.datetime.fromtimestamp(self.start, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                seed=self._seed, groups=self.group_names,
                steps_per_epoch=steps_per_epoch or 0, total_steps=total_steps, config=cfg,
                extra={"socket": self.server.path, "source": "pytorch", "framework": framework,
                       "world_size": self.world_size, **({"slurm": job} if (job := slurm_job()) else {})})
            if announce:
                print(f"lrtop: steer this run with: lrtop attach {self.run_dir}", file=sys.stderr, flush=True)

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
        if reason is None:
            reason = "stopped" if self.stop_reason == "stopped" else ("diverged" if self.stop_reason == "diverged"
                                                                      else "completed")
        self.state = "finished"
        if self.server is not None:
            self.server.broadcast(self._status())
            self.server.close()
        if self.writer is not None:
            self.writer.end(reason, self.step_count, self.epoch,
                            final_loss=None if math.isnan(self.last_loss) else self.last_loss,
                            best_eval_loss=self.best_eval_loss, best_accuracy=self.best_accuracy,
                            final_accuracy=self.final_accuracy, message=message)
            self.writer.close()
        self._closed_scheduler_routing = True

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close("interrupted")
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
        self._lrs_used = [float(g["lr"]) for g in groups]

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
            # While a viewer watches, its charts trail the loop by a tick at most (a write(2) each 0.1 s), not a second.
            self.writer.maybe_flush(VIEWED_FLUSH_INTERVAL if self.server is not None and self.server.has_clients else None)
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
        if self.rank == 0:
            accepted = []
            for p in self._pending:
                if p.origin == "guard":
                    accepted.append(p)
                    continue
                try:
                    C.parse(p.text)
                except C.CommandError as e:
                    self._reply(p, {"type": "ack", "id": p.id, "ok": False, "error": str(e)})
                    self._event("error", p.text, self.lrs, self.lrs, str(e))
                    continue
                self._reply(p, {"type": "ack", "id": p.id, "ok": True})
                accepted.append(p)
            self._pending = []
        else:
            accepted = []
        records = self.channel.exchange([{"text": p.text, "origin": p.origin,
                                          "reason": p.id if p.origin == "guard" else None} for p in accepted])
        if self.rank != 0:
            accepted = [_Pending(r["text"], r.get("reason"), None, r["origin"]) for r in records]
        for i, p in enumerate(accepted):
            if self.range_test is not None:  # a find-lr began in this batch: the rest waits for its end
                self.range_test.deferred.extend(accepted[i:])
                break
            self._apply_accepted(p)

    def _apply_accepted(self, p: _Pending) -> None:
        if p.origin == "guard":
            self._apply_guard(str(p.id))
        else:
            self._apply(p)

    def _reply(self, p: _Pending, obj: dict) -> None:
        if p.client is not None and self.server is not None:
            self.server.send(p.client, obj)

    def _event(self, kind: str, text: str, before: list[float], after: list[float], message: Optional[str]) -> None:
        if self.writer is not None:
            self.writer.event(self.step_count, kind, text, before, after, message)

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
            if command.is_risky(before):
                self.save_checkpoint(label=f"before '{p.text}'")
            note = self._perform(command)
            after = self.lrs
            self._event("command", p.text, before, after, note)
            msg = f"{p.text}: {_lr_change(before, after)}" + (f" ({note})" if note else "")
            self._reply(p, {"type": "result", "id": p.id, "ok": True, "step": self.step_count, "message": msg})
        except (C.CommandError, SpecError, ValueError, RuntimeError, OSError) as e:
            for g, lr in zip(self.optimizer.param_groups, before):
                g["lr"] = lr
            self._event("error", p.text, before, before, str(e))
            self._reply(p, {"type": "result", "id": p.id, "ok": False, "step": self.step_count, "error": str(e)})
        if self.server is not None:
            self.server.broadcast(self._status())

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
            self._group_indices(c.group)
        elif c.verb == "sched":
            SB.resolve(c.spec, self._remaining(), groups=len(self.group_names))

    def _perform(self, c: C.Command) -> Optional[str]:
        groups = self.optimizer.param_groups
        v = c.verb
        if v == "lr":
            idx = self._group_indices(c.group)
            kind = c.change.kind
            if kind == "set":
                for i in idx:
                    self._rebase(i, c.change.value)
                    groups[i]["lr"] = c.change.value
                    self.overridden[i] = True
            elif kind == "scale":
                scaled = [groups[i]["lr"] * c.change.value for i in idx]
                bad = [x for x in scaled if not math.isfinite(x)]
                if bad:
                    raise C.CommandError(f"scaling gives a non-finite LR ({bad[0]}); nothing changed")
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
            path = self.save_checkpoint(label="manual")
            return f"saved {path}" if path else "kept in memory"
        if v == "rollback":
            if not self.checkpoints:
                raise C.CommandError("no checkpoint to roll back to: 'ckpt' takes one")
            frm = self.step_count
            target = self.checkpoints[-1]
            self._restore(target)
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
        if action == "pause":
            if not self.paused:
                self._pause()
            self._event("guard", "guard", before, self.lrs, f"{reason}; paused ('resume' continues, 'rollback' undoes)")
        elif action == "stop":
            self.stop_reason = "diverged"
            self._event("guard", "guard", before, self.lrs, f"{reason}; stopped")
        elif action == "rollback":
            if not self.checkpoints:
                self._pause()
                self._event("guard", "guard", before, self.lrs, f"{reason}; no checkpoint to roll back to, paused")
            else:
                target = self.checkpoints[-1]
                self._restore(target, lr_factor=0.5)
                self._event("guard", "guard", before, self.lrs,
                            f"{reason}; rolled back to step {target['lrtop']['step']} and halved the LR")
        if self.server is not None:
            self.server.broadcast(self._status())

    def _run_eval(self) -> None:
        if self.eval_fn is None:
            raise C.CommandError("no evaluation function: pass eval_fn= to lrtop.attach")
        result = self.eval_fn()
        if isinstance(result, dict):
            self.eval(**result)

    # ------------------------------------------------------------------ checkpoints

    def _snapshot(self, label: str) -> dict:
        rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        np = sys.modules.get("numpy")
        if np is not None:
            rng["numpy"] = np.random.get_state()
        snap = {
            "lrtop": {"version": __version__, "step": self.step_count, "epoch": self.epoch, "label": label,
                      "spec": self.spec, "held": list(self.held), "overridden": list(self.overridden),
                      "warmup": [self.warmup_total, self.warmup_done], "lrs": self.lrs,
                      "base_lrs": list(self.base_lrs), "skipped_steps": self.skipped_steps},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "rng": rng,
        }
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

    def save_checkpoint(self, label: str = "manual") -> Optional[str]:
        """Keeps a checkpoint in memory (for `rollback`, on every rank) and writes it on rank 0 atomically:
        temporary file, fsync, rename, fsync of the folder. Returns the file's path on rank 0."""
        snap = self._snapshot(label)
        self.checkpoints.append(snap)
        del self.checkpoints[:-self.checkpoint_keep]
        if self.rank != 0:
            return None
        folder = os.path.join(self.run_dir, "checkpoints")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"step-{self.step_count:07d}.pt")
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            torch.save(snap, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self.checkpoint_files.append(path)
        if label != "manual":
            self._event("checkpoint", label, self.lrs, self.lrs, f"saved {path}")
        return path

    def load_checkpoint(self, path: str, lr: Optional[float] = None) -> None:
        """Resumes from a checkpoint file this package wrote. With `lr=`, the scheduler's saved state is overridden
        so that LR is the one that trains (not the one the scheduler remembered)."""
        snap = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(snap, dict) or "lrtop" not in snap:
            raise ValueError(f"lrtop: {path} is not a checkpoint written by lrtop")
        self._restore(snap, lr=lr)

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
            np.random.set_state(rng["numpy"])
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
