"""Frozen records that cross from the training thread to readers (GUI, CLI).

Everything in them is an owned copy: a reader may keep them as long as it likes and
never sees a half-updated model (``detach()`` and ``numpy()`` share
memory, so arrays here are copied once, at this boundary, and made read-only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


def frozen_copy(tensor: torch.Tensor) -> np.ndarray:
    """An owned, read-only float32 numpy copy of a tensor."""
    arr = tensor.detach().to("cpu", torch.float32, copy=True).numpy()
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True)
class StepReport:
    """One optimisation step."""

    step: int  # 1-based count of steps taken over the whole run
    epoch: int  # 0-based epoch the step belongs to
    batch: int  # 1-based batch index inside the epoch
    batches_per_epoch: int
    loss: float
    accuracy: float  # on this batch
    samples_per_s: float  # smoothed
    lr: float
    grad_norms: dict[str, float] = field(default_factory=dict)  # per layer with parameters


@dataclass(frozen=True)
class EpochReport:
    """The end of an epoch: training figures averaged over it, validation on the held-out split."""

    epoch: int  # 0-based
    step: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None


@dataclass(frozen=True)
class SettingChanged:
    """A hyperparameter changed while training ran; the loss curve marks it."""

    step: int  # the first step that uses the new value
    name: str  # "lr", "weight_decay" or "pace"
    value: float | None


@dataclass(frozen=True)
class Finished:
    """Training ended: ``reason`` is "completed", "stopped" or "failed" (with a message)."""

    step: int
    reason: str
    message: str = ""


@dataclass(frozen=True)
class LayerRecord:
    """One layer's statistics at one moment (``nnviz.core.layer_stats`` says how they are taken).

    Bands are percentiles at ``layer_stats.BAND_PERCENTS`` (min, 7, 16, 31, 50, 69, 84,
    93 percent and max, as TensorBoard's distributions draw them).
    """

    name: str  # the module's name, e.g. "fc1"
    weight_bands: tuple[float, ...]  # of the weight tensor's values
    gradient_bands: tuple[float, ...]  # of its gradient's values
    gradient_size_bands: tuple[float, ...]  # of |gradient|, for a log scale
    weight_histogram: np.ndarray  # counts in equal bins over weight_range (read-only)
    weight_range: tuple[float, float]
    gradient_histogram: np.ndarray  # counts in equal bins over gradient_range (read-only)
    gradient_range: tuple[float, float]
    # For the log scale: counts in equal bins of log10|gradient| over gradient_size_range
    # (log10 of the smallest and largest nonzero size; read-only), and how many entries
    # are exactly 0 and so have no logarithm. Counts and zeros add up to the entries.
    gradient_size_histogram: np.ndarray
    gradient_size_range: tuple[float, float]
    gradient_zeros: float
    gradient_norm: float  # over all the layer's parameters, as StepReport.grad_norms
    update_ratio: float | None  # ||update|| / ||parameters|| of the step; None if unknown
    dead_fraction: float | None  # of its ReLU units; None when no ReLU follows the layer


@dataclass(frozen=True)
class LayerStats:
    """Per-layer statistics, taken a few times a second on the training thread."""

    step: int  # the step whose gradients and update they describe
    epoch: int
    layers: tuple[LayerRecord, ...]


Event = StepReport | EpochReport | SettingChanged | Finished | LayerStats


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of the model taken between two steps."""

    step: int
    epoch: int
    optimizer_step: int
    weights: dict[str, np.ndarray]  # state dict as read-only float32 copies
    status: str  # "running", "paused", "stopped", "completed" or "failed"
    last_step: StepReport | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors to ``load_state_dict`` into a reader's own model copy."""
        return {k: torch.from_numpy(v.copy()) for k, v in self.weights.items()}
