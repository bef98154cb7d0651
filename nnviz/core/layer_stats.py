"""Per-layer statistics of a model in training: weight and gradient distributions, and
health figures (gradient norm, update-to-weight ratio, dead ReLUs) judged against rules
of thumb.

The trainer calls ``LayerStatsCollector.collect`` right after an optimizer step, a few
times a second, never per step: the gradients of that step are still in ``.grad``, and
the trainer's copy of the weights before the step gives the update. Everything runs on
the training thread and returns owned copies (``nnviz.core.snapshot.LayerStats``).

A *layer* is a module that owns trainable parameters ("conv1", "fc1", "output").
Distributions describe its weight tensor (biases are a different population); the norms
cover all its parameters. A ReLU counts for the parameterised layer before it.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nnviz.core.data import DataSplits
from nnviz.core.snapshot import LayerRecord, LayerStats

# TensorBoard's distributions draw these percentiles: min and max, and the points one
# and two standard deviations out (and halfway) on a normal distribution.
BAND_PERCENTS = (0.0, 7.0, 16.0, 31.0, 50.0, 69.0, 84.0, 93.0, 100.0)
HISTOGRAM_BINS = 30
# Percentiles of a bigger tensor come from a subsample: they sort, and sorting a 100k-weight
# layer costs 3 ms against 0.16 ms for 4,096 values (a percentile's rank is then typically
# off by under one percent, invisible in a band).
MAX_PERCENTILE_SAMPLE = 4096
PROBE_SIZE = 256  # validation images a ReLU must stay silent on to count as dead
DEAD_UNIT_TYPES = (nn.ReLU, nn.ReLU6)  # zero for every negative input, so a unit can die

# How much of the training thread's time the dead-ReLU pass (a forward of the probe) may
# take: it costs lenet about 20 ms, so it runs every 2 s there, and its last figures
# are reported in between. Dead units appear and recover over many steps, not one.
DEAD_CHECK_SHARE = 0.01

# Healthy ranges. Update-to-weight ratio: Karpathy's CS231n notes ("Neural Networks
# part 3", babysitting the learning process) put a healthy ratio near 1e-3; far below, the
# layer barely moves, far above, it is thrown around. Dead ReLUs: the same notes (part 1)
# warn that with too high a learning rate "as much as 40%" of a network can die; over
# half of a layer's units is our line. Gradient norm: below 1e-6 a step at SGD's usual
# learning rates (0.01-0.1) moves the layer by under 1e-7 (vanishing); above 1e3 one
# step jumps far from where the loss was measured (exploding).
UPDATE_RATIO_LOW, UPDATE_RATIO_GOOD, UPDATE_RATIO_HIGH = 1e-5, 1e-3, 1e-1
DEAD_FRACTION_HIGH = 0.5
GRADIENT_NORM_LOW, GRADIENT_NORM_HIGH = 1e-6, 1e3
# Vanishing also shows as a layer whose gradient is a tiny share of the largest layer's:
# Glorot & Bengio (2010) saw back-propagated gradients shrink layer by layer in deep
# sigmoid networks. Measured here after 5 steps on MNIST: six sigmoid layers of 32 put
# the first layer at 3e-5 of the output layer, six ReLU layers at 4e-2, 784-16-16-10
# sigmoid (mlp-3b1b) at 8e-2; three orders of magnitude separates them.
VANISHING_SHARE = 1e-3


def percentile_bands(values: torch.Tensor) -> tuple[float, ...]:
    """The ``BAND_PERCENTS`` percentiles of a tensor's values (numpy's linear method).

    Past ``MAX_PERCENTILE_SAMPLE`` values they come from a fixed random subsample; the
    min and max are always exact.
    """
    return describe(values)[0]


def histogram(values: torch.Tensor, bins: int = HISTOGRAM_BINS) -> tuple[np.ndarray, float, float]:
    """Counts in ``bins`` equal bins from the smallest to the largest value, and that range.

    Past ``MAX_PERCENTILE_SAMPLE`` values the counts come from the percentiles' subsample,
    scaled to the tensor's size.
    """
    _, counts, lo, hi = describe(values, bins)
    return counts, lo, hi


def describe(
    values: torch.Tensor, bins: int = HISTOGRAM_BINS
) -> tuple[tuple[float, ...], np.ndarray, float, float]:
    """Percentile bands, histogram counts and (min, max) of a tensor, from one sort."""
    flat = values.detach().reshape(-1)
    if flat.numel() == 0:
        return (math.nan,) * len(BAND_PERCENTS), _read_only(np.zeros(bins, np.float32)), 0.0, 0.0
    ordered = np.sort(_sample(flat).numpy()).astype(np.float64)
    bands = _bands(ordered, flat)
    lo, hi = bands[0], bands[-1]
    counts = np.zeros(bins, np.float32)
    if math.isfinite(lo) and math.isfinite(hi):
        # One value everywhere still gets a bin of some width.
        top = hi if hi > lo else lo + max(abs(lo), 1.0) * 1e-6
        counts = _counts(ordered, np.linspace(lo, top, bins + 1), flat.numel())
    return bands, _read_only(counts), lo, hi


def describe_sizes(
    values: torch.Tensor, bins: int = HISTOGRAM_BINS
) -> tuple[tuple[float, ...], np.ndarray, tuple[float, float], float]:
    """Percentile bands of |values|, and their histogram for a log scale, from one sort.

    The histogram counts log10|value| in ``bins`` equal bins over the returned range (the
    log10 of the smallest nonzero size and of the largest). Zeros have no logarithm: the last
    figure is how many there are, so the counts and it add up to the tensor's size
    (scaled from the subsample past ``MAX_PERCENTILE_SAMPLE`` values, as ``describe``).
    """
    sizes = values.detach().reshape(-1).abs()
    counts = np.zeros(bins, np.float32)
    if sizes.numel() == 0:
        return (math.nan,) * len(BAND_PERCENTS), _read_only(counts), (math.nan, math.nan), 0.0
    ordered = np.sort(_sample(sizes).numpy()).astype(np.float64)
    bands = _bands(ordered, sizes)
    scale = sizes.numel() / len(ordered)
    # Sizes sort zeros first and inf, then NaN, last; the log bins take what lies between.
    first = int(np.searchsorted(ordered, 0.0, side="right"))
    end = int(np.searchsorted(ordered, math.inf, side="left"))
    positive = ordered[first:end]
    log_range = (math.nan, math.nan)
    if len(positive):
        # The top is the exact largest size, where the bands' max is drawn.
        largest = bands[-1] if math.isfinite(bands[-1]) else positive[-1]
        lo, hi = math.log10(positive[0]), math.log10(largest)
        log_range = (lo, hi)
        # Edges back in sizes, so the values need no logarithm: only the edges do.
        top = hi if hi > lo else lo + 1e-6
        counts = _counts(positive, 10.0 ** np.linspace(lo, top, bins + 1), len(positive) * scale)
    return bands, _read_only(counts), log_range, float(first * scale)


def _bands(ordered: np.ndarray, flat: torch.Tensor) -> tuple[float, ...]:
    """The ``BAND_PERCENTS`` percentiles of sorted (sampled) values; the ends exact."""
    # numpy's "linear" percentile: interpolate between the two nearest ranks.
    rank = np.asarray(BAND_PERCENTS) / 100.0 * (len(ordered) - 1)
    below = np.floor(rank).astype(np.int64)
    above = np.minimum(below + 1, len(ordered) - 1)
    bands = ordered[below] + (ordered[above] - ordered[below]) * (rank - below)
    if len(ordered) < flat.numel():
        bands[0], bands[-1] = (float(v) for v in torch.aminmax(flat))
    return tuple(float(b) for b in bands)


def _counts(ordered: np.ndarray, edges: np.ndarray, total: float) -> np.ndarray:
    """How many of the sorted values fall in each bin, scaled to add up to ``total``."""
    # Bins are [a, b) as numpy's, the last one closed; the outer edges take every value
    # (the exact min and max can lie outside a subsample's).
    at = np.searchsorted(ordered, edges)
    at[0], at[-1] = 0, len(ordered)
    return np.diff(at).astype(np.float32) * np.float32(total / len(ordered))


def _sample(flat: torch.Tensor) -> torch.Tensor:
    """At most ``MAX_PERCENTILE_SAMPLE`` of the values, as float32 on the CPU."""
    if flat.numel() > MAX_PERCENTILE_SAMPLE:
        flat = flat[_sample_indices(flat.numel(), flat.device)]
    return flat.to("cpu", torch.float32)


@functools.lru_cache(maxsize=64)
def _sample_indices(size: int, device: torch.device) -> torch.Tensor:
    # Random rather than strided, so a stride that matches a row length cannot pick the
    # same column every time; fixed, so the bands of one layer do not jitter between
    # collections from the sampling alone.
    generator = torch.Generator().manual_seed(size)
    picked = torch.randperm(size, generator=generator)[:MAX_PERCENTILE_SAMPLE]
    return picked.sort().values.to(device)


def update_ratio(before: Sequence[torch.Tensor], after: Sequence[torch.Tensor]) -> float:
    """||after - before|| / ||after|| over all the tensors together (0 when all are zero)."""
    if not before:
        return math.nan
    delta = torch.stack(torch._foreach_norm(torch._foreach_sub(list(after), list(before))))
    size = torch.stack(torch._foreach_norm(list(after)))
    num, den = float(delta.square().sum().sqrt()), float(size.square().sum().sqrt())
    return num / den if den > 0 else 0.0


def trainable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules that own trainable parameters, in the model's order."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if any(p.requires_grad for p in m.parameters(recurse=False))
    ]


def dead_fractions(model: nn.Module, probe: torch.Tensor) -> dict[str, float]:
    """Per layer, the fraction of its ReLU units silent (output 0) on every probe image.

    A unit is a feature of a dense layer or a channel of a conv layer (silent at every
    position). Runs ``probe`` through the model once under ``no_grad`` in eval mode,
    with forward hooks on the ReLUs; the hooks go and the mode comes back whatever
    happens.
    """
    owners: dict[str, str] = {}  # ReLU module name -> the layer it belongs to
    owner = None
    for name, module in model.named_modules():
        if any(p.requires_grad for p in module.parameters(recurse=False)):
            owner = name
        elif isinstance(module, DEAD_UNIT_TYPES) and owner is not None:
            owners[name] = owner
    if not owners:
        return {}
    alive: dict[str, torch.Tensor] = {}

    def record(layer: str, _module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        if output.dim() < 2:  # no unit axis to judge
            return
        # Largest output of each unit over the batch (and positions); dead means <= 0.
        per_unit = output.transpose(0, 1).reshape(output.shape[1], -1).amax(dim=1) > 0
        alive[layer] = per_unit if layer not in alive else alive[layer] | per_unit

    modules = dict(model.named_modules())
    handles = []
    was_training = model.training
    try:
        for relu, layer in owners.items():
            handles.append(
                modules[relu].register_forward_hook(
                    lambda m, i, o, layer=layer: record(layer, m, i, o)
                )
            )
        model.eval()
        with torch.no_grad():
            model(probe)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return {layer: int((~flags).sum()) / flags.numel() for layer, flags in alive.items()}


def probe_batch(data: DataSplits, device: torch.device, size: int = PROBE_SIZE) -> torch.Tensor:
    """A fixed batch of validation images (training images if there are none), as floats."""
    source = data.val if data.val is not None and len(data.val) else data.train
    assert source is not None
    images = torch.from_numpy(np.ascontiguousarray(source.images[:size]))
    return images.to(device, torch.float32).div_(255).unsqueeze_(1)


class LayerStatsCollector:
    """Takes ``LayerStats`` of one model; built once per run on the training thread."""

    def __init__(self, model: nn.Module, probe: torch.Tensor | None = None) -> None:
        self.model = model
        self.probe = probe
        self.layers = trainable_layers(model)
        # Where each layer's parameters sit in the model's list of trainable parameters,
        # the order the trainer keeps its copy of the weights before a step in.
        index = {id(p): i for i, p in enumerate(p for p in model.parameters() if p.requires_grad)}
        self._slots = [
            [index[id(p)] for p in m.parameters(recurse=False) if p.requires_grad]
            for _, m in self.layers
        ]
        self._dead: dict[str, float] = {}
        self._dead_due = 0.0  # perf_counter time the next dead-unit pass may run

    def collect(
        self, step: int, epoch: int, before: Sequence[torch.Tensor] | None = None
    ) -> LayerStats:
        """Statistics of the model now, its gradients, and the step from ``before``.

        ``before`` holds the trainable parameters as they were before the last optimizer
        step, in ``model.parameters()`` order; without it the update ratio is None.
        """
        dead = self._dead_fractions()
        records = []
        with torch.no_grad():
            for (name, module), slots in zip(self.layers, self._slots, strict=True):
                records.append(self._record(name, module, slots, before, dead.get(name)))
        return LayerStats(step=step, epoch=epoch, layers=tuple(records))

    def _dead_fractions(self) -> dict[str, float]:
        """Fresh dead-unit fractions when the time share allows, else the last ones."""
        now = time.perf_counter()
        if self.probe is not None and now >= self._dead_due:
            self._dead = dead_fractions(self.model, self.probe)
            self._dead_due = now + (time.perf_counter() - now) / DEAD_CHECK_SHARE
        return self._dead

    def _record(
        self,
        name: str,
        module: nn.Module,
        slots: list[int],
        before: Sequence[torch.Tensor] | None,
        dead: float | None,
    ) -> LayerRecord:
        params = [p for p in module.parameters(recurse=False) if p.requires_grad]
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or not weight.requires_grad:
            weight = params[0]
        grad = weight.grad if weight.grad is not None else torch.zeros_like(weight)
        grads = [p.grad for p in params if p.grad is not None]
        norm = (
            float(torch.stack(torch._foreach_norm(grads)).square().sum().sqrt()) if grads else 0.0
        )
        w_bands, w_hist, w_lo, w_hi = describe(weight)
        g_bands, g_hist, g_lo, g_hi = describe(grad)
        size_bands, size_hist, size_range, zeros = describe_sizes(grad)
        ratio = None
        if before is not None:
            ratio = update_ratio([before[i] for i in slots], params)
        return LayerRecord(
            name=name,
            weight_bands=w_bands,
            gradient_bands=g_bands,
            gradient_size_bands=size_bands,
            weight_histogram=w_hist,
            weight_range=(w_lo, w_hi),
            gradient_histogram=g_hist,
            gradient_range=(g_lo, g_hi),
            gradient_size_histogram=size_hist,
            gradient_size_range=size_range,
            gradient_zeros=zeros,
            gradient_norm=norm,
            update_ratio=ratio,
            dead_fraction=dead,
        )


@dataclass(frozen=True)
class HealthWarning:
    """A figure outside its healthy range: why that is bad, and what to try."""

    figure: str  # "gradient_norm", "update_ratio" or "dead_fraction"
    message: str


def health_warnings(stats: LayerStats) -> dict[str, dict[str, HealthWarning]]:
    """Per layer name, its figures that are in a known bad range, by figure name."""
    largest = max((r.gradient_norm for r in stats.layers), default=0.0)
    return {r.name: _layer_warnings(r, largest) for r in stats.layers}


def _layer_warnings(record: LayerRecord, largest_gradient: float) -> dict[str, HealthWarning]:
    out: dict[str, HealthWarning] = {}

    def warn(figure: str, message: str) -> None:
        out[figure] = HealthWarning(figure, message)

    g = record.gradient_norm
    if not math.isfinite(g) or g > GRADIENT_NORM_HIGH:
        warn(
            "gradient_norm",
            f"gradients this large (norm above {GRADIENT_NORM_HIGH:g}) are exploding: each "
            "step throws the weights far; try a lower learning rate",
        )
    elif g < GRADIENT_NORM_LOW:
        warn(
            "gradient_norm",
            f"gradients this small (norm below {GRADIENT_NORM_LOW:g}) mean the layer barely "
            "learns: try ReLU instead of sigmoid, fewer layers, or a higher learning rate",
        )
    elif math.isfinite(largest_gradient) and g < VANISHING_SHARE * largest_gradient:
        warn(
            "gradient_norm",
            f"this layer's gradients are {g / largest_gradient:.0e} of the largest layer's: "
            "they vanish on the way back through the layers after it, so it barely learns; "
            "try ReLU instead of sigmoid, or fewer layers",
        )
    r = record.update_ratio
    if r is not None and math.isfinite(r):
        if r > UPDATE_RATIO_HIGH:
            warn(
                "update_ratio",
                f"each step changes the weights by over {UPDATE_RATIO_HIGH:.0%} of their size "
                f"(about {UPDATE_RATIO_GOOD:g} is healthy): try a lower learning rate",
            )
        elif r < UPDATE_RATIO_LOW:
            warn(
                "update_ratio",
                f"each step changes the weights by under {UPDATE_RATIO_LOW:g} of their size "
                f"(about {UPDATE_RATIO_GOOD:g} is healthy), so the layer barely learns: try a "
                "higher learning rate, Adam, or ReLU instead of sigmoid",
            )
    d = record.dead_fraction
    if d is not None and d > DEAD_FRACTION_HIGH:
        warn(
            "dead_fraction",
            f"{d:.0%} of this layer's ReLUs give 0 for every validation image, so they no "
            "longer learn: try a lower learning rate, or leaky_relu",
        )
    return out


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr
