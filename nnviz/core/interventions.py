"""Switching units off: what is switched off or clamped, and which unit matters most.

A *unit* is one index along a layer output's second dimension: a neuron of a dense
layer (N, F), a channel of a conv layer (N, C, H, W), whose whole map is then set.
An intervention forces a unit's output to a value; 0.0 is "switched off". The layers
after it see the changed value, because it is applied where the layer's output is
made (see ``nnviz.core.inspect.capture_activations``).

``knockout_effects`` answers "which filter's loss hurts this digit most": it switches
each unit of a layer off in turn, all in one batch (one copy of the input per unit),
and reports how much the chosen class's probability drops each time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from nnviz.core.errors import NnvizError

KNOCKOUT_BATCH = 256  # units per forward pass when ranking a wide layer


class Interventions(Mapping[str, Mapping[int, float]]):
    """Immutable: layer name -> {unit: value}. Changes return a new value, so a
    ``Session`` can use it in a cache key and panels can compare it with what they drew.

    As a mapping it has one entry per layer; ``rows()`` lists every unit.
    """

    __slots__ = ("_layers", "_hash")

    def __init__(self, layers: Mapping[str, Mapping[int, float]] | None = None) -> None:
        checked: dict[str, Mapping[int, float]] = {}
        for layer, units in (layers or {}).items():
            if units:
                checked[str(layer)] = MappingProxyType(
                    {_unit(u): _value(v) for u, v in units.items()}
                )
        self._layers = checked
        self._hash = hash(frozenset((k, frozenset(v.items())) for k, v in checked.items()))

    def __getitem__(self, layer: str) -> Mapping[int, float]:
        return self._layers[layer]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Interventions):
            return NotImplemented
        return self._hash == other._hash and self._layers == other._layers

    def __repr__(self) -> str:
        return f"Interventions({ {k: dict(v) for k, v in self._layers.items()} })"

    @property
    def unit_count(self) -> int:
        """How many units are switched off or clamped, over all layers."""
        return sum(len(units) for units in self._layers.values())

    def rows(self) -> list[tuple[str, int, float]]:
        """(layer, unit, value) of every intervention: layers in the order they were first
        changed, each layer's units in the order they were set."""
        return [(layer, u, v) for layer, units in self._layers.items() for u, v in units.items()]

    def value(self, layer: str, unit: int) -> float | None:
        """What ``unit`` of ``layer`` is forced to, or None when it is left alone."""
        units = self._layers.get(layer)
        return None if units is None else units.get(unit)

    def setting(self, layer: str, unit: int, value: float) -> Interventions:
        """These interventions with ``unit`` of ``layer`` forced to ``value``."""
        units = dict(self._layers.get(layer, {}))
        units.pop(_unit(unit), None)  # re-insert: the latest change is listed last
        units[_unit(unit)] = _value(value)
        return Interventions({**self._layers, layer: units})

    def without(self, layer: str, unit: int) -> Interventions:
        """These interventions with ``unit`` of ``layer`` left alone again."""
        units = {u: v for u, v in self._layers.get(layer, {}).items() if u != unit}
        return Interventions({**self._layers, layer: units})


def _unit(unit: Any) -> int:
    if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)) or unit < 0:
        raise NnvizError(f"a unit is a whole number from 0 up, not {unit!r}")
    return int(unit)


def _value(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise NnvizError(f"a unit can be clamped to a finite number, not {value!r}")
    return number


class UnitEdit:
    """Sets units of one layer's output: the same for every sample (one row of
    {unit: value}) or one row per sample of the batch (how knockouts run in one pass)."""

    def __init__(self, layer: str, rows: Sequence[Mapping[int, float]]) -> None:
        self.layer = layer
        self.rows = [dict(row) for row in rows]

    @property
    def units(self) -> set[int]:
        return {u for row in self.rows for u in row}

    def tensors(self, shape: Sequence[int], like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(mask, fill), each (rows, units, 1, ...) to broadcast over an output of ``shape``."""
        if len(shape) < 2:
            raise NnvizError(
                f"cannot switch off units of {self.layer}: its output of shape "
                f"{tuple(shape)} has no units (a batch and at least one more dimension)"
            )
        n = int(shape[1])
        if self.units and max(self.units) >= n:
            raise NnvizError(
                f"{self.layer} has {n} units (0 to {n - 1}); there is no unit {max(self.units)}"
            )
        if len(self.rows) not in (1, int(shape[0])):
            raise NnvizError(f"{len(self.rows)} rows of edits for a batch of {shape[0]}")
        mask = torch.zeros(len(self.rows), n, dtype=torch.bool)
        fill = torch.zeros(len(self.rows), n, dtype=torch.float64)
        for i, row in enumerate(self.rows):
            for unit, value in row.items():
                mask[i, unit], fill[i, unit] = True, value
        trailing = (1,) * (len(shape) - 2)
        return (
            mask.reshape(len(self.rows), n, *trailing).to(like.device),
            fill.reshape(len(self.rows), n, *trailing).to(like.device, like.dtype),
        )

    def __call__(self, output: Any) -> torch.Tensor:
        """The layer's output with the units set (a new tensor; ``output`` is untouched)."""
        if not isinstance(output, torch.Tensor):
            raise NnvizError(
                f"cannot switch off units of {self.layer}: it returns a "
                f"{type(output).__name__}, not a tensor"
            )
        mask, fill = self.tensors(output.shape, output)
        # where, not multiply-and-add: a switched-off unit is 0 even where it was inf.
        return torch.where(mask, fill, output)


def edits_for(interventions: Mapping[str, Mapping[int, float]] | None) -> dict[str, UnitEdit]:
    """One edit per layer, the same for every sample of a batch."""
    return {
        layer: UnitEdit(layer, [units]) for layer, units in (interventions or {}).items() if units
    }


@dataclass(frozen=True)
class Knockout:
    """What switching off each unit of ``layer`` alone does to the prediction.

    Kept as log-probabilities (float64): a confident model gives 99.99...% to its class,
    which float32 rounds to 1.0 for every unit; the logs still tell the units apart.
    """

    layer: str
    target_class: int
    baseline_log: np.ndarray  # (classes,) log-probabilities with no extra unit off
    log_probabilities: np.ndarray  # (units, classes): row u with unit u switched off

    @property
    def baseline(self) -> np.ndarray:
        """(classes,) probabilities with no extra unit off."""
        return np.exp(self.baseline_log)

    @property
    def probabilities(self) -> np.ndarray:
        """(units, classes): the probabilities with each unit switched off alone."""
        return np.exp(self.log_probabilities)

    @property
    def drops(self) -> np.ndarray:
        """How much the target class's probability falls when each unit is switched off."""
        return self.baseline[self.target_class] - self.probabilities[:, self.target_class]

    @property
    def loss_rises(self) -> np.ndarray:
        """How much the loss (-log of the target's probability) rises for each unit."""
        t = self.target_class
        return self.baseline_log[t] - self.log_probabilities[:, t]

    def ranked(self) -> list[int]:
        """Units from the one whose loss hurts the target class most to the least (the
        same order as ``drops``, told apart where the probabilities round alike)."""
        return [int(u) for u in np.argsort(-self.loss_rises, kind="stable")]


def knockout_effects(
    model: Any,
    x: torch.Tensor,
    layer: str,
    target_class: int,
    interventions: Mapping[str, Mapping[int, float]] | None = None,
) -> Knockout:
    """Switch each unit of ``layer`` off alone (on top of ``interventions``) and measure
    the target class's probability; units are run as a batch, not one pass each."""
    # inspect applies Interventions; imported here so each module can refer to the other.
    from nnviz.core.inspect import capture_activations, run_edited

    base = dict(interventions or {})
    acts = capture_activations(model, x, interventions=base)
    if layer not in acts:
        acts = {**capture_activations(model, x, [layer], base), **acts}
    output_name = list(acts)[-1]
    baseline = _log_softmax(acts[output_name])[0]
    if not 0 <= target_class < len(baseline):
        raise NnvizError(f"there is no class {target_class}: the model has {len(baseline)}")
    shape = acts[layer].shape
    if len(shape) < 2:
        raise NnvizError(f"{layer} has no units to switch off: its output is {tuple(shape)}")
    x = torch.as_tensor(x)
    x = x if x.dim() == 4 else x.unsqueeze(0)  # capture_activations checked it is one input
    log_probabilities = []
    edits = edits_for(base)
    kept = dict(base.get(layer, {}))
    for start in range(0, int(shape[1]), KNOCKOUT_BATCH):
        units = range(start, min(start + KNOCKOUT_BATCH, int(shape[1])))
        rows = [{**kept, u: 0.0} for u in units]
        batch_edits = {**edits, layer: UnitEdit(layer, rows)}
        xs = x.expand(len(units), *x.shape[1:])
        out = run_edited(model, xs, [output_name], batch_edits)[output_name]
        log_probabilities.append(_log_softmax(out))
    return Knockout(layer, int(target_class), baseline, np.concatenate(log_probabilities))


def _log_softmax(output: np.ndarray) -> np.ndarray:
    logits = torch.from_numpy(np.asarray(output, dtype=np.float64))
    return torch.log_softmax(logits.reshape(logits.shape[0], -1), dim=1).numpy()
