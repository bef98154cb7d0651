"""Weight snapshots kept over a training run, within a memory budget the user sets.

The store keeps every snapshot it is given until it outgrows its budget; then it
thins on a logarithmic grid of steps. Counting from the first stored step ``s0``, a
snapshot at step ``s`` falls in bucket ``floor(density * ln(1 + s - s0))``: buckets are
under one step wide at the start of the run and grow in proportion to the step, so
the early steps, where the weights change fastest, stay dense and later ones thin
out. Thinning keeps the first snapshot of every bucket, plus always the run's first
snapshot, the newest (the live weights) and a pinned one (the step the user is
looking at). It lowers ``density`` until the store fits and keeps it for later
thinnings, so the grid only grows coarser (until the user raises the budget).

Snapshot arrays are owned, read-only copies (``nnviz.core.snapshot``): the store keeps
references and never copies them. In a ``.nnviz`` file the store is a set of extra
tensors: ``history/index`` (one ``(step, epoch)`` row per snapshot) and
``history/step_000100/fc1.weight`` for each array.
"""

from __future__ import annotations

import bisect
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from nnviz.core.errors import ModelFileError

DEFAULT_BUDGET_BYTES = 256_000_000  # 256 MB: about 2,000 lenet snapshots, 150 of the wide cnn
PREFIX = "history/"
INDEX_NAME = PREFIX + "index"
_STEP_NAME = re.compile(r"history/step_(\d+)/(.+)")
# Thinning starts this fine (buckets of 1/256 of an e-fold of steps) and coarsens by
# this factor per try: small enough that a full store loses a few snapshots, not half.
_START_DENSITY = 256.0
_COARSEN = 0.8
_MIN_DENSITY = 1e-3  # coarser than this, every bucket is the whole run


@dataclass(frozen=True)
class SavedWeights:
    """The weights as they were at one step."""

    step: int
    epoch: int
    weights: dict[str, np.ndarray]  # state dict as read-only float32 arrays
    nbytes: int


def _nbytes(weights: Mapping[str, np.ndarray]) -> int:
    return sum(int(a.nbytes) for a in weights.values())


class WeightHistory:
    """Snapshots by step, thinned to stay within ``budget_bytes``."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self._entries: list[SavedWeights] = []  # sorted by step
        self._steps: list[int] = []  # the same order, for bisect
        self._bytes = 0
        self._budget = self._check_budget(budget_bytes)
        self._density: float | None = None  # None: not thinned yet in this run
        self.pinned: int | None = None  # a step thinning must keep

    # ----- filling -----------------------------------------------------------------------
    def add(self, step: int, epoch: int, weights: Mapping[str, np.ndarray]) -> None:
        """Record the weights at ``step`` (kept by reference); a step seen before is replaced."""
        entry = SavedWeights(int(step), int(epoch), dict(weights), _nbytes(weights))
        i = bisect.bisect_left(self._steps, entry.step)
        if i < len(self._steps) and self._steps[i] == entry.step:
            self._bytes -= self._entries[i].nbytes
            self._entries[i] = entry
        else:
            self._entries.insert(i, entry)
            self._steps.insert(i, entry.step)
        self._bytes += entry.nbytes
        self._thin()

    def clear(self) -> None:
        self._entries.clear()
        self._steps.clear()
        self._bytes = 0
        self._density = None
        self.pinned = None

    # ----- budget ------------------------------------------------------------------------
    @property
    def budget_bytes(self) -> int:
        return self._budget

    @budget_bytes.setter
    def budget_bytes(self, value: int) -> None:
        """A smaller budget thins the store at once; a larger one lets the grid grow fine again."""
        value = self._check_budget(value)
        if value > self._budget:
            self._density = None  # what was thinned stays gone; new snapshots fill the room
        self._budget = value
        self._thin()

    @staticmethod
    def _check_budget(value: int) -> int:
        value = int(value)
        if value <= 0:
            raise ValueError("the history's memory budget must be more than 0 bytes")
        return value

    @property
    def bytes_used(self) -> int:
        return self._bytes

    @property
    def over_budget(self) -> bool:
        """True when even the snapshots that are always kept exceed the budget."""
        return self._bytes > self._budget

    # ----- reading -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def steps(self) -> list[int]:
        """The stored steps, oldest first."""
        return list(self._steps)

    def __contains__(self, step: object) -> bool:
        if not isinstance(step, (int, np.integer)):
            return False
        i = bisect.bisect_left(self._steps, step)
        return i < len(self._steps) and self._steps[i] == step

    def entry(self, step: int) -> SavedWeights:
        """The snapshot saved at exactly ``step``; KeyError if none was kept."""
        i = bisect.bisect_left(self._steps, step)
        if i == len(self._steps) or self._steps[i] != step:
            raise KeyError(f"no weights were kept at step {step}")
        return self._entries[i]

    def at(self, step: int) -> dict[str, np.ndarray]:
        """The weights saved at exactly ``step``; KeyError if none were kept."""
        return self.entry(step).weights

    def nearest(self, step: int) -> SavedWeights:
        """The stored snapshot closest to ``step`` (the earlier one on a tie)."""
        if not self._entries:
            raise KeyError("the history is empty")
        i = bisect.bisect_left(self._steps, step)
        if i == 0:
            return self._entries[0]
        if i == len(self._steps):
            return self._entries[-1]
        before, after = self._entries[i - 1], self._entries[i]
        return before if step - before.step <= after.step - step else after

    @property
    def newest(self) -> SavedWeights | None:
        return self._entries[-1] if self._entries else None

    # ----- thinning ----------------------------------------------------------------------
    def _thin(self) -> None:
        if self._bytes <= self._budget or len(self._entries) <= 2:
            return
        density = self._density or _START_DENSITY
        while True:
            kept = self._on_grid(density)
            used = sum(e.nbytes for e in kept)
            if used <= self._budget or density < _MIN_DENSITY:
                break
            density *= _COARSEN
        self._density = density
        self._entries = kept
        self._steps = [e.step for e in kept]
        self._bytes = used

    def _on_grid(self, density: float) -> list[SavedWeights]:
        """The first snapshot of every bucket, and the first, newest and pinned ones."""
        first, last = self._entries[0], self._entries[-1]
        kept: list[SavedWeights] = []
        bucket = None
        for e in self._entries:
            b = math.floor(density * math.log1p(e.step - first.step))
            if b != bucket or e is last or e.step == self.pinned:
                kept.append(e)
                bucket = b
        return kept

    # ----- in a .nnviz file --------------------------------------------------------------
    def to_tensors(self) -> dict[str, torch.Tensor]:
        """The store as checkpoint extras; the tensors share the store's read-only memory.

        They are for ``save_checkpoint``, which copies what it writes: never write to them.
        """
        if not self._entries:
            return {}
        out = {INDEX_NAME: torch.tensor([[e.step, e.epoch] for e in self._entries])}
        with warnings.catch_warnings():
            # Read-only arrays on purpose: the checkpoint writer copies, so no second copy.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            for e in self._entries:
                for key, array in e.weights.items():
                    out[f"{PREFIX}step_{e.step:06d}/{key}"] = torch.from_numpy(array)
        return out

    @classmethod
    def from_tensors(
        cls,
        tensors: Mapping[str, torch.Tensor],
        *,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        expected: Mapping[str, tuple[int, ...]] | None = None,
    ) -> WeightHistory:
        """Rebuild a store from checkpoint extras (other extras are ignored).

        ``expected`` maps state-dict keys to shapes: a snapshot that does not fit the
        model raises ``ModelFileError``, naming the step and what is wrong.
        """
        epochs: dict[int, int] = {}
        index = tensors.get(INDEX_NAME)
        if index is not None:
            if index.dim() != 2 or index.shape[1] != 2:
                raise ModelFileError(
                    f"the saved weight history's index has shape {tuple(index.shape)}, "
                    "not (snapshots, 2)"
                )
            epochs = {int(s): int(e) for s, e in index.tolist()}
        by_step: dict[int, dict[str, np.ndarray]] = {}
        for name, tensor in tensors.items():
            if not name.startswith(PREFIX) or name == INDEX_NAME:
                continue
            match = _STEP_NAME.fullmatch(name)
            if match is None:
                raise ModelFileError(f"the saved weight history has a tensor named {name!r}")
            array = tensor.detach().to("cpu", torch.float32).numpy()
            array.flags.writeable = False
            by_step.setdefault(int(match[1]), {})[match[2]] = array
        missing = sorted(set(epochs) - set(by_step))
        if missing:
            raise ModelFileError(f"the saved weight history has no weights for step {missing[0]}")
        history = cls(budget_bytes)
        for step in sorted(by_step):
            weights = by_step[step]
            if expected is not None:
                _check_fits(step, weights, expected)
            history.add(step, epochs.get(step, 0), weights)
        return history


def has_saved_history(tensors: Mapping[str, object]) -> bool:
    """True when checkpoint extras hold a weight history."""
    return any(name.startswith(PREFIX) for name in tensors)


def _check_fits(
    step: int, weights: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]]
) -> None:
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = [k for k in sorted(set(expected) & set(weights)) if weights[k].shape != expected[k]]
    problems = (
        ([f"missing {', '.join(missing)}"] if missing else [])
        + ([f"unexpected {', '.join(unexpected)}"] if unexpected else [])
        + [f"{k} has shape {weights[k].shape}, the model needs {expected[k]}" for k in wrong]
    )
    if problems:
        raise ModelFileError(
            f"the saved weights at step {step} do not fit the model: {'; '.join(problems)}"
        )
