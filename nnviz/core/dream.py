"""Make it dream: nudge a drawing toward a class, and draw what a unit wants to see.

* ``ascend_to_class`` ("make it a 7"): gradient ascent on the input toward class k;
* ``visualize_unit``: activation maximisation from noise with jitter, blur and L2 decay
  (Olah et al. 2017, "Feature Visualization", distill.pub), so the picture reads at 28x28.

Neither changes the model (see ``nnviz.core.gradients``). A hidden unit is reached with a
forward hook, so it needs nnviz's own models or a plain PyTorch module; classes work
on every kind of model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nnviz.core.errors import NnvizError
from nnviz.core.gradients import (
    as_module,
    blur,
    class_scores,
    device_and_dtype,
    gradient_mode,
    hookable,
    layer_named,
    layer_output,
    model_input,
    output_of,
    pick_class,
    picture,
)


@dataclass(frozen=True)
class Ascent:
    """The steps of a drawing nudged toward ``target``: images and the target's probability."""

    target: int
    images: list[np.ndarray]  # the start first, then the image after each step
    probabilities: list[float]  # the target's probability for each image


def _log_probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(class_scores(model, x), dim=1)[0]


def ascend_to_class(
    model: Any, image: Any, target: int, steps: int = 20, step_size: float = 0.05
) -> Ascent:
    """Nudge ``image`` toward class ``target`` by gradient ascent on its log-probability.

    The gradient is blurred a little, so the change looks like strokes rather than
    speckle, and scaled so that no pixel moves by more than ``step_size`` per step;
    pixels stay in [0, 1]. A step that would lower the probability (an overshoot, which
    made the sigmoid MLP's probability swing by 0.35) is halved, up to 5 times, so the
    probability rises step by step.
    """
    if steps < 0 or not step_size > 0:
        raise NnvizError("need steps >= 0 and a positive step size")
    module = as_module(model)
    with gradient_mode(module):
        x = model_input(module, image).requires_grad_(True)
        log_p = _log_probabilities(module, x)
        k = pick_class(log_p[None], target)
        images, probabilities = [picture(x)], [float(log_p[k].detach().exp())]
        for _ in range(steps):
            (grad,) = torch.autograd.grad(log_p[k], x)
            direction = blur(grad)
            direction /= direction.abs().max().clamp(min=1e-12)
            size = step_size
            for _ in range(6):
                moved = (x.detach() + size * direction).clamp_(0, 1).requires_grad_(True)
                moved_log_p = _log_probabilities(module, moved)
                if moved_log_p[k] >= log_p[k]:
                    break
                size /= 2
            x, log_p = moved, moved_log_p
            images.append(picture(x))
            probabilities.append(float(log_p[k].detach().exp()))
    return Ascent(k, images, probabilities)


def _unit(output: torch.Tensor, unit: int | tuple[int, ...], name: str) -> torch.Tensor:
    """One unit's value: a neuron, a whole channel (its mean), or an element by index."""
    values = output[0]
    index = tuple(unit) if isinstance(unit, (tuple, list)) else (unit,)
    whole = all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in index)
    if not index or len(index) > values.dim() or not whole:
        raise NnvizError(
            f"unit {unit!r} does not fit {name}, of shape {tuple(values.shape)}: give a "
            "neuron or channel number, or (channel, row, column)"
        )
    for i, size in zip(index, values.shape, strict=False):
        if not 0 <= i < size:
            raise NnvizError(
                f"unit {unit!r} is out of range for {name}, of shape {tuple(values.shape)}"
            )
    return values[index].mean()


def _unit_value(model: nn.Module, x: torch.Tensor, layer: str | None, unit: Any) -> torch.Tensor:
    if layer is None:
        return _unit(class_scores(model, x), unit, "the class scores")
    with layer_output(layer_named(model, layer)) as outputs:
        class_scores(model, x)
    return _unit(output_of(outputs, layer), unit, f"layer {layer!r}")


def unit_activation(model: Any, image: Any, layer: str | None, unit: Any) -> float:
    """A unit's value for one image: a class score (``layer=None``), a neuron, or a
    channel's mean (``unit`` = channel) or one element of it (``unit`` = (c, y, x))."""
    module = as_module(model) if layer is None else hookable(model, "Looking at one unit")
    with gradient_mode(module), torch.no_grad():
        return float(_unit_value(module, model_input(module, image), layer, unit))


def visualize_unit(
    model: Any,
    layer: str | None,
    unit: Any,
    *,
    steps: int = 256,
    seed: int = 0,
    input_shape: tuple[int, ...] = (1, 28, 28),
    step_size: float = 0.05,
    jitter: int = 2,
    blur_every: int = 8,
    decay: float = 0.003,
) -> np.ndarray:
    """The picture a unit (see ``unit_activation``) responds to most, grown from noise.

    Gradient ascent on the unit's value with the light regularisers of Olah et al.'s
    "Feature Visualization": the picture is shifted by up to ``jitter`` pixels before each
    pass (so it cannot rely on single pixels), blurred every ``blur_every`` steps (no high
    frequencies) and faded toward black by ``decay`` each step (an L2 pull, and MNIST's
    background is black). Deterministic for a ``seed``; returns (H, W) in [0, 1]. A unit
    that no input moves (a dead ReLU) gives faded, blurred noise: compare its
    ``unit_activation`` with real digits'. About 0.6 s for lenet on 2 cores: call it off
    the GUI thread.
    """
    if steps < 1 or jitter < 0 or not step_size > 0 or not 0 <= decay < 1:
        raise NnvizError("need steps >= 1, jitter >= 0, step_size > 0 and 0 <= decay < 1")
    module = as_module(model) if layer is None else hookable(model, "Looking at one unit")
    generator = torch.Generator().manual_seed(seed)
    with gradient_mode(module):
        x = (0.2 * torch.rand((1, *input_shape), generator=generator)).to(
            **device_and_dtype(module)
        )
        for i in range(steps):
            shift = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
            x = x.detach().requires_grad_(True)
            value = _unit_value(module, torch.roll(x, shift, dims=(2, 3)), layer, unit)
            (grad,) = torch.autograd.grad(value, x)
            with torch.no_grad():
                x = x + step_size * grad / grad.abs().max().clamp(min=1e-12)
                x = (x * (1 - decay)).clamp_(0, 1)
                if blur_every and (i + 1) % blur_every == 0:
                    x = blur(x)
    return picture(x)
