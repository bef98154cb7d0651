"""What the network diagram draws and where: columns, neuron positions, strongest edges.

Numpy only (no Qt), so the geometry and the choice of edges can be tested on their own.
View units: the digit is ``IMAGE_SIZE`` wide at the left, the dense columns follow
``COLUMN_GAP`` apart, each centred on y = 0 and at most ``COLUMN_HEIGHT`` tall; y grows
downwards (the view is inverted) so neuron 0 and the digit's first row are at the top.

Wide layers: up to ``MAX_SHOWN`` neurons are all drawn, squeezed into the column; a wider
layer shows its first ``MAX_SHOWN`` (the panel notes "+ N more"). The first ones, not
the most active, so neurons stay put as the digit or the weights change; edges come
from drawn neurons only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnviz.core.inspect import Summary

MAX_SHOWN = 128
IMAGE_SIZE, COLUMN_HEIGHT, COLUMN_GAP = 5.0, 10.0, 3.0
EDGE_BUCKETS = 3  # weak, medium, strong: |w| relative to the layer's largest |w|
SOFTMAX = "softmax"  # ``shown_as`` of the output column: lit by probabilities


@dataclass(frozen=True)
class Column:
    """One dense layer as drawn: its neurons lit by the output of layer ``shown_as``."""

    layer: str  # the dense layer, e.g. "fc1"
    shown_as: str  # the layer after it that lights it ("sigmoid1"), or SOFTMAX
    units: int
    x: float
    y: np.ndarray  # y of each drawn neuron: the first len(y) of ``units``
    size: float  # circle diameter

    @property
    def xy(self) -> np.ndarray:
        return np.column_stack([np.full(len(self.y), self.x), self.y])


@dataclass(frozen=True)
class Layout:
    """The whole diagram: the digit's rectangle and pixel centres, then the columns."""

    columns: tuple[Column, ...]
    image_rect: tuple[float, float, float, float]  # x, y, width, height
    pixels: np.ndarray  # (x, y) of each input pixel, row-major

    @property
    def right(self) -> float:
        return self.columns[-1].x

    def column(self, layer: str) -> Column:
        return self.columns[self.index_of(layer)]

    def index_of(self, layer: str) -> int:
        return next(j for j, c in enumerate(self.columns) if c.layer == layer)

    def view_rect(
        self, width_px: float, height_px: float, label_px: float
    ) -> tuple[float, float, float, float]:
        """The view's (x, y, width, height): everything, and ``label_px`` pixels at the
        right for the class labels (text keeps its size in pixels as the view scales)."""
        out = self.columns[-1]
        left, right, height = -0.3, out.x + out.size, COLUMN_HEIGHT + 1.6
        w, h = max(width_px, 1.0), max(height_px, 1.0)
        per_unit = min(max(w - label_px, 1.0) / (right - left), h / height)
        return left, -height / 2 - 0.1, w / per_unit, height

    def sources(self, j: int) -> tuple[str, np.ndarray]:
        """Name and (x, y) of what feeds column ``j``: "input" pixels or the column before."""
        return (
            ("input", self.pixels)
            if j == 0
            else (self.columns[j - 1].layer, self.columns[j - 1].xy)
        )

    def spots(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions and sizes of every drawn neuron, column after column."""
        xy = np.concatenate([c.xy for c in self.columns])
        return xy, np.concatenate([np.full(len(c.y), c.size) for c in self.columns])

    def spot_of(self, layer: str, index: int) -> int:
        """The neuron's position in ``spots()``."""
        offset = 0
        for col in self.columns:
            if col.layer == layer:
                return offset + index
            offset += len(col.y)
        raise KeyError(layer)

    def neuron_at(self, x: float, y: float) -> tuple[str, int] | None:
        """The (layer, index) of the neuron whose circle holds (x, y), if any."""
        for col in self.columns:
            if abs(x - col.x) <= col.size / 2:
                i = int(np.argmin(np.abs(col.y - y)))
                if np.hypot(x - col.x, y - col.y[i]) <= col.size / 2:
                    return col.layer, i
        return None

    def pixel_at(self, x: float, y: float, shape: tuple[int, int]) -> int | None:
        """The row-major index of the input pixel under (x, y), if any."""
        left, top, width, height = self.image_rect
        u, v = (x - left) / width, (y - top) / height
        if not (0 <= u < 1 and 0 <= v < 1):
            return None
        return int(v * shape[0]) * shape[1] + int(u * shape[1])


def dense_columns(
    summary: Summary, weights: Mapping[str, Any]
) -> list[tuple[str, str, int]] | None:
    """(dense layer, layer whose output lights it, units) in order, or None if not an MLP.

    An MLP here: a one-channel image in, flat data all the way, and each layer with a 2-D
    ``weight`` takes the previous one's output, so the chain of edges is the whole model.
    """
    if summary.input_shape[0] != 1 or any(len(s.output_shape) != 2 for s in summary.layers):
        return None
    features = int(np.prod(summary.input_shape))
    out: list[tuple[str, str, int]] = []
    for layer in summary.layers:
        w = weights.get(f"{layer.name}.weight")
        if w is not None and w.ndim == 2:
            if w.shape[1] != features:
                return None
            features = int(w.shape[0])
            out.append((layer.name, layer.name, features))
        elif out and layer.output_shape[1] == out[-1][2]:
            out[-1] = (out[-1][0], layer.name, out[-1][2])  # its activation (or dropout)
    if not out:
        return None
    out[-1] = (out[-1][0], SOFTMAX, out[-1][2])
    return out


def lay_out(found: list[tuple[str, str, int]], image_shape: tuple[int, int]) -> Layout:
    """Place the digit and the columns ``dense_columns`` found."""
    h, w = image_shape
    scale = IMAGE_SIZE / max(h, w)
    rows, cols = np.divmod(np.arange(h * w), w)
    pixels = np.column_stack([(cols + 0.5) * scale, (rows + 0.5 - h / 2) * scale])
    columns, x = [], w * scale
    for name, shown_as, units in found:
        x += COLUMN_GAP
        n = min(units, MAX_SHOWN)
        step = COLUMN_HEIGHT / max(n, 16)  # 16 or fewer: the spacing of 3b1b's 16
        y = (np.arange(n) - (n - 1) / 2) * step
        columns.append(Column(name, shown_as, units, x, y, 0.8 * step))
    return Layout(tuple(columns), (0.0, -h * scale / 2, w * scale, h * scale), pixels)


def column_values(
    col: Column, acts: Mapping[str, np.ndarray], probs: np.ndarray | None
) -> np.ndarray:
    """What lights the drawn neurons of ``col``: its activations, or the probabilities."""
    n = len(col.y)
    if not acts:
        return np.zeros(n, np.float32)  # no digit yet: all dark
    if col.shown_as == SOFTMAX:
        return np.asarray(probs)[:n]
    return np.asarray(acts[col.shown_as]).reshape(-1)[:n]


def brightness(values: np.ndarray) -> np.ndarray:
    """Fill strength in [0, 1]: sigmoid outputs and probabilities as they are; wider ranges
    (ReLU) scaled so the column's largest is full; negative values dark."""
    return np.clip(values / max(1.0, float(values.max(initial=0.0))), 0.0, 1.0)


def marked_neurons(
    layout: Layout, changed: Callable[[str], Mapping[int, float]]
) -> list[tuple[tuple[str, int], float, float, float, float]]:
    """(key, x, y, size, value) of each drawn hidden neuron that is switched off or clamped
    (``changed(layer)``: a layer's changed units); output neurons are the prediction."""
    return [
        ((col.layer, i), col.x, float(col.y[i]), 1.1 * col.size, value)
        for col in layout.columns[:-1]
        for i, value in changed(col.shown_as).items()
        if i < len(col.y)
    ]


def describe_neuron(col: Column, index: int, value: float, class_names: list[str]) -> str:
    """A neuron's hover text: its layer, index and what lights it."""
    if col.shown_as == SOFTMAX:
        name = class_names[index]
        return f"{col.layer} neuron {index}, class {name}: probability {value:.1%}"
    return f"{col.layer} neuron {index}: {col.shown_as} = {value:.3f}"


def describe_pixel(index: int, width: int, value: float) -> str:
    """An input pixel's hover text (row-major index)."""
    return f"input pixel {index} (row {index // width}, column {index % width}): {value:.3f}"


def strongest_inputs(w: np.ndarray, k: int) -> np.ndarray:
    """(target, source) index pairs: the ``k`` largest-|w| inputs of each row of ``w``."""
    k = min(k, w.shape[1])
    src = np.argpartition(-np.abs(w), k - 1, axis=1)[:, :k]
    return np.column_stack([np.repeat(np.arange(w.shape[0]), k), src.ravel()])


def segments(pairs: np.ndarray, src_xy: np.ndarray, dst_xy: np.ndarray) -> np.ndarray:
    """(2 * edges, 2) line ends, source then target, for ``connect="pairs"`` curves."""
    xy = np.empty((2 * len(pairs), 2))
    xy[0::2], xy[1::2] = src_xy[pairs[:, 1]], dst_xy[pairs[:, 0]]
    return xy


def edge_buckets(weights: np.ndarray, largest: float) -> Iterator[tuple[bool, int, np.ndarray]]:
    """(positive, strength bucket, edge mask) for each of the 2 x EDGE_BUCKETS edge styles."""
    strength = np.abs(weights) / max(largest, 1e-12)
    bucket = np.minimum((strength * EDGE_BUCKETS).astype(int), EDGE_BUCKETS - 1)
    for positive in (True, False):
        sign = (weights >= 0) == positive
        for b in range(EDGE_BUCKETS):
            yield positive, b, sign & (bucket == b)
