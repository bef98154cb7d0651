"""The training engine: a loop another thread can start, pause, step, steer and stop.

The GUI runs ``Trainer.run()`` (or iterates ``Trainer.steps()``) in a worker thread and
never waits on it: reports go into a queue it drains with ``poll()``, and the latest
consistent copy of the weights is always at ``latest_snapshot()``. Commands are plain
thread-safe method calls checked between steps, so a stop takes effect within one batch.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from nnviz.core import lean_optim
from nnviz.core.data import DataSplits
from nnviz.core.errors import NnvizError, TrainingError
from nnviz.core.evaluate import evaluate
from nnviz.core.layer_stats import LayerStatsCollector, probe_batch
from nnviz.core.models import resolve_device
from nnviz.core.snapshot import (
    EpochReport,
    Event,
    Finished,
    SettingChanged,
    Snapshot,
    StepReport,
    frozen_copy,
)

# Optimizers made here never import torch's compiler (60-80 MB, 1-2 s; see lean_optim).
lean_optim.keep_from_importing_dynamo()

OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta")
# Learning rates that work for these optimizers on MNIST when the user gives none.
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3, "adadelta": 1.0}


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (JSON-serialisable, stored in checkpoints)."""

    optimizer: str = "adam"
    lr: float | None = None  # None: the optimizer's default (DEFAULT_LR)
    momentum: float = 0.9  # SGD only
    batch_size: int = 64
    epochs: int = 5
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    steps_per_second: float | None = None  # a watchable pace; None = as fast as possible
    # How often readers get fresh weights: views follow training 3 times a second, which
    # reads as live and leaves the GIL to the training thread the rest of the time.
    snapshot_interval_s: float = 0.33
    # torch threads for the training thread. One is fastest for these small models
    # (OpenMP threads spin against each other on a busy 2-core machine: 2 threads ran
    # mlp-3b1b 12x slower than 1 there) and leaves a core for the window.
    num_threads: int | None = 1
    # How often the training thread takes per-layer statistics (distributions and layer
    # health, nnviz.core.layer_stats); None: never. Twice a second reads as live and
    # cost mlp-3b1b 0.4% and lenet 1.5% of their training time here.
    stats_interval_s: float | None = 0.5

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise NnvizError(
                f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
            )
        if self.lr is None:
            self.lr = DEFAULT_LR[self.optimizer]
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise NnvizError("the learning rate must be a positive number")
        if self.batch_size < 1 or self.epochs < 1:
            raise NnvizError("batch size and epochs must be at least 1")
        if self.weight_decay < 0:
            raise NnvizError("weight decay cannot be negative")
        if self.stats_interval_s is not None and not self.stats_interval_s > 0:
            raise NnvizError("the statistics interval must be a positive number of seconds")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def make_optimizer(config: TrainConfig, params: Any) -> torch.optim.Optimizer:
    """The optimizer the config names."""
    lr, wd = config.lr, config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=wd)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.Adadelta(params, lr=lr, weight_decay=wd)


class History:
    """Metric points of a run, in plain lists so they go straight into a checkpoint."""

    def __init__(self, data: dict[str, list] | None = None) -> None:
        data = data or {}
        self.step: list[int] = list(data.get("step", []))
        self.loss: list[float] = list(data.get("loss", []))
        self.accuracy: list[float] = list(data.get("accuracy", []))
        self.epochs: list[dict[str, Any]] = list(data.get("epochs", []))
        self.changes: list[dict[str, Any]] = list(data.get("changes", []))

    @property
    def last_step(self) -> int:
        return self.step[-1] if self.step else 0

    def to_dict(self) -> dict[str, list]:
        return {
            "step": list(self.step),
            "loss": list(self.loss),
            "accuracy": list(self.accuracy),
            "epochs": list(self.epochs),
            "changes": list(self.changes),
        }


def _failure_message(exc: BaseException, step: int) -> str:
    """What to tell the user when a step raised: out of memory gets a way out."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    out_of_memory = isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or (
        "memory" in text.lower() and "alloc" in text.lower()
    )
    if out_of_memory:
        return (
            f"ran out of memory at step {step} ({text}); try a smaller batch size or a "
            "smaller model"
        )
    return f"training failed at step {step}: {text}"


def _layer_of(param_name: str) -> str:
    return param_name.rsplit(".", 1)[0] if "." in param_name else param_name


class Trainer:
    """Trains one model on one data split; all public methods are safe from any thread."""

    def __init__(
        self,
        model: nn.Module,
        data: DataSplits,
        config: TrainConfig,
        *,
        history: History | None = None,
        listener: Callable[[Event], None] | None = None,
    ) -> None:
        if data.train is None or len(data.train) == 0:
            raise NnvizError(f"data source {data.source!r} has no training images")
        self.config = config
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        self.data = data
        self.history = history or History()
        self._listener = listener  # called on the training thread; must be quick
        self._lock = threading.Lock()
        self._events: deque[Event] = deque()
        self._snapshot: Snapshot | None = None
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared = paused
        self._running.set()
        self._wake = threading.Event()  # interrupts a paced sleep
        self._steps_allowed = 0  # single steps granted while paused
        self._held = False  # paused at the latest turn (training thread only)
        self._stats_wait_until = 0.0  # see hold_statistics (perf_counter time)
        self._pending: dict[str, float | None] = {}
        self._optimizer_steps = 0  # updates applied by this trainer (readers check freshness)
        self.status = "idle"
        self.finished: Finished | None = None  # how the run ended, once it has
        self.optimizer = make_optimizer(config, self.model.parameters())
        self._params = [p for p in self.model.parameters() if p.requires_grad]
        self._named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self._publish_snapshot(step=self.history.last_step, epoch=0)

    # ----- commands (any thread) -------------------------------------------------
    def pause(self) -> None:
        self._running.clear()
        self._wake.set()

    def resume(self) -> None:
        self._running.set()
        self._wake.set()

    def step_once(self) -> None:
        """While paused, take exactly one more step."""
        with self._lock:
            self._steps_allowed += 1
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()
        self._wake.set()

    def set_lr(self, lr: float) -> None:
        if not (lr > 0 and math.isfinite(lr)):
            raise NnvizError("the learning rate must be a positive number")
        with self._lock:
            self._pending["lr"] = float(lr)

    def set_weight_decay(self, wd: float) -> None:
        if not (wd >= 0 and math.isfinite(wd)):
            raise NnvizError("weight decay cannot be negative")
        with self._lock:
            self._pending["weight_decay"] = float(wd)

    def hold_statistics(self, seconds: float) -> None:
        """Collect no layer statistics for ``seconds``: whoever shows them is busy (a
        person is drawing, and the window takes no news meanwhile). Collecting them
        holds the GIL for about 3 ms of numpy work on small arrays, which the window's
        thread then waits out. The next collection comes as soon as the wait is over.
        """
        self._stats_wait_until = time.perf_counter() + seconds  # one float: no lock

    def set_pace(self, steps_per_second: float | None) -> None:
        """None or 0 trains as fast as possible."""
        with self._lock:
            self._pending["pace"] = steps_per_second or None
        self._wake.set()

    # ----- reading (any thread) ----------------------------------------------------
    def poll(self) -> list[Event]:
        """Take every report since the last poll (never blocks the trainer)."""
        out: list[Event] = []
        while True:
            try:
                out.append(self._events.popleft())
            except IndexError:
                return out

    def latest_snapshot(self) -> Snapshot:
        with self._lock:
            assert self._snapshot is not None
            return self._snapshot

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # ----- the loop (training thread) ------------------------------------------------
    def run(self) -> Finished:
        """Train to the end (or until stopped); returns how it ended."""
        for _ in self.steps():
            pass
        assert self.finished is not None
        return self.finished

    def steps(self) -> Iterator[StepReport]:
        """The training loop as a generator: yields after every step."""
        cfg = self.config
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        torch.manual_seed(cfg.seed)
        shuffle = torch.Generator().manual_seed(cfg.seed)
        # Batches are gathered from the dataset's uint8 array as they are needed: no copy
        # of the whole training set, and a quarter of the memory of floats.
        images = self.data.train.images
        labels = torch.from_numpy(self.data.train.labels.astype("int64"))
        n = len(labels)
        per_epoch = math.ceil(n / cfg.batch_size)
        step = self.history.last_step
        # A run trains `epochs` more epochs; steps and epochs count on from the history,
        # so a loaded model's curves continue where they ended.
        first_epoch = len(self.history.epochs)
        epoch = first_epoch
        # The weights before the latest update, restored if that update ruins the loss.
        backup = [p.detach().clone() for p in self._params]
        loss_fn = nn.CrossEntropyLoss()
        self.status = "running"
        self.finished = Finished(step, "completed")
        rate = 0.0
        # The rate is samples over the wall time between steps, so it includes a paced
        # run's waits (at 20 steps/s, batch 64: 1,280 samples/s, where the time of the
        # steps alone gave 7,100 and an epoch's end 7 s away that was 80 s away). Time
        # paused is left out: a step after a pause, or taken alone while paused, keeps
        # the rate as it was. The validation at an epoch's end counts, as the pace makes
        # up for it (a second at most) with the steps after. The first step has no time
        # before it (rate 0: not known yet).
        clock: float | None = None
        last_publish = 0.0
        stats, last_stats = None, -math.inf
        if cfg.stats_interval_s is not None:
            stats = LayerStatsCollector(self.model, probe_batch(self.data, self.device))
        next_step_at = time.perf_counter()
        try:
            for epoch in range(first_epoch, first_epoch + cfg.epochs):
                order = torch.randperm(n, generator=shuffle).numpy()
                sum_loss = sum_correct = seen = 0.0
                self.model.train()
                for b in range(per_epoch):
                    while True:
                        if not self._wait_turn(step, epoch):
                            self.finished = Finished(step, "stopped")
                            return
                        if self._held:
                            # A paced run goes on at its pace from now: it does not make
                            # up for the time paused with a burst of steps.
                            clock, next_step_at = None, time.perf_counter()
                        due = self._pace(next_step_at)
                        # Paused while waiting for the step's time: no step until resumed.
                        if self._held or not self.paused or self._stop.is_set():
                            break
                    next_step_at = due
                    if self._stop.is_set():
                        self.finished = Finished(step, "stopped")
                        return
                    self._apply_pending(step + 1)
                    idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                    x = torch.from_numpy(images[idx]).to(self.device, torch.float32)
                    x = x.div_(255).unsqueeze_(1)
                    y = labels[idx].to(self.device)
                    logits = self.model(x)
                    loss = loss_fn(logits, y)
                    loss_value = loss.item()
                    if not math.isfinite(loss_value):
                        self._restore(backup)
                        raise TrainingError(
                            f"loss became {'NaN' if math.isnan(loss_value) else 'infinite'} "
                            f"at step {step + 1}; try a lower learning rate"
                        )
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    norms = self._grad_norms()
                    if not all(math.isfinite(v) for v in norms.values()):
                        raise TrainingError(
                            f"gradients became infinite at step {step + 1}; "
                            "try a lower learning rate"
                        )
                    torch._foreach_copy_(backup, [p.detach() for p in self._params])
                    lean_optim.step(self.optimizer)
                    self._optimizer_steps += 1
                    step += 1
                    correct = (logits.argmax(1) == y).sum().item()
                    done_at = time.perf_counter()
                    if clock is not None:
                        inst = len(y) / max(done_at - clock, 1e-9)
                        rate = inst if rate == 0 else 0.9 * rate + 0.1 * inst
                    clock = done_at
                    sum_loss += loss_value * len(y)
                    sum_correct += correct
                    seen += len(y)
                    report = StepReport(
                        step=step,
                        epoch=epoch,
                        batch=b + 1,
                        batches_per_epoch=per_epoch,
                        loss=loss_value,
                        accuracy=correct / len(y),
                        samples_per_s=rate,
                        lr=float(self.optimizer.param_groups[0]["lr"]),
                        grad_norms=norms,
                    )
                    self.history.step.append(step)
                    self.history.loss.append(loss_value)
                    self.history.accuracy.append(report.accuracy)
                    self._emit(report)
                    now = time.perf_counter()
                    # Statistics a few times a second, never per step: the gradients of
                    # this step are still in .grad and `backup` holds the weights before it.
                    if stats is not None and (
                        self.paused
                        or now - last_stats >= cfg.stats_interval_s
                        and now >= self._stats_wait_until
                    ):
                        self._emit(stats.collect(step, epoch, backup))
                        last_stats = now
                    # A single step taken while paused is always shown at once.
                    if self.paused or now - last_publish >= cfg.snapshot_interval_s:
                        self._publish_snapshot(step, epoch, report)
                        last_publish = now
                    yield report
                self._end_epoch(epoch, step, sum_loss / max(seen, 1), sum_correct / max(seen, 1))
                self._publish_snapshot(step, epoch + 1)
            self.finished = Finished(step, "completed")
        except TrainingError as exc:
            self.finished = Finished(step, "failed", str(exc))
        except (RuntimeError, MemoryError) as exc:  # report it, keep the app alive
            self.finished = Finished(step, "failed", _failure_message(exc, step + 1))
        finally:
            self.model.eval()
            self.status = self.finished.reason
            self._publish_snapshot(step, epoch)
            self._emit(self.finished)

    # ----- helpers ---------------------------------------------------------------------
    def _wait_turn(self, step: int, epoch: int) -> bool:
        """Block while paused (publishing fresh weights first); False once stopped.
        Sets ``_held`` when the run was paused at this turn (a single step included)."""
        self._held = not self._running.is_set()
        if self._stop.is_set():
            return False
        while not self._running.is_set():
            with self._lock:
                if self._steps_allowed > 0:
                    self._steps_allowed -= 1
                    return not self._stop.is_set()
            if self.status != "paused":
                self.status = "paused"
                self._publish_snapshot(step, epoch)
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return False
        self.status = "running"
        return True

    def _pace(self, next_step_at: float) -> float:
        """Sleep until the next step is due at a watchable pace; returns when the step
        is due, or at once on a pause, a stop or a new pace. Returns when the step after
        is due."""
        pace = self.config.steps_per_second
        if not pace:
            return time.perf_counter()
        while (delay := next_step_at - time.perf_counter()) > 0:
            self._wake.wait(delay)
            self._wake.clear()
            with self._lock:
                new_pace = "pace" in self._pending
            if new_pace or self.paused or self._stop.is_set():
                break
        return max(next_step_at, time.perf_counter() - 1.0) + 1.0 / pace

    def _apply_pending(self, step: int) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for name, value in pending.items():
            if name == "pace":
                self.config.steps_per_second = value
            else:
                setattr(self.config, name, value)
                for group in self.optimizer.param_groups:
                    group[name] = value
            self.history.changes.append({"step": step, "name": name, "value": value})
            self._emit(SettingChanged(step, name, value))

    def _grad_norms(self) -> dict[str, float]:
        grads = [p.grad for p in self._params if p.grad is not None]
        if not grads:
            return {}
        values = torch.stack(torch._foreach_norm(grads)).tolist()
        per_layer: dict[str, float] = {}
        for (name, _), v in zip(self._named, values, strict=False):
            layer = _layer_of(name)
            per_layer[layer] = per_layer.get(layer, 0.0) + v * v
        return {k: math.sqrt(v) for k, v in per_layer.items()}

    def _restore(self, backup: list[torch.Tensor]) -> None:
        with torch.no_grad():
            torch._foreach_copy_([p.data for p in self._params], backup)

    def _end_epoch(self, epoch: int, step: int, train_loss: float, train_acc: float) -> None:
        val_loss = val_acc = None
        if self.data.val is not None and len(self.data.val):
            result = evaluate(self.model, self.data.val, device=self.device)
            val_loss, val_acc = result.loss, result.accuracy
        report = EpochReport(epoch, step, train_loss, train_acc, val_loss, val_acc)
        self.history.epochs.append(
            {
                "epoch": epoch,
                "step": step,
                "train_loss": train_loss,
                "train_accuracy": train_acc,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
            }
        )
        self.model.train()
        self._emit(report)

    def _emit(self, event: Event) -> None:
        self._events.append(event)
        if self._listener is not None:
            self._listener(event)

    def _publish_snapshot(self, step: int, epoch: int, last: StepReport | None = None) -> None:
        weights = {k: frozen_copy(v) for k, v in self.model.state_dict().items()}
        snap = Snapshot(
            step=step,
            epoch=epoch,
            optimizer_step=self._optimizer_steps,
            weights=weights,
            status=self.status,
            last_step=last,
        )
        with self._lock:
            self._snapshot = snap
