"""Why this answer, and how to change it: saliency, Grad-CAM and the smallest fooling change.

* ``saliency`` (Simonyan et al. 2014, "Deep Inside Convolutional Networks"): how much a
  small change of each pixel would change the class score;
* ``grad_cam`` (Selvaraju et al. 2017, "Grad-CAM"): where on the last conv layer's feature
  maps the class score comes from, mapped back onto the input;
* ``fgsm``: the smallest iterated fast-gradient-sign change (Goodfellow et al. 2015;
  Kurakin et al. 2017) that makes the model change its answer.

None of them changes the model (see ``nnviz.core.gradients``). Grad-CAM needs the
output of a layer and the gradient with respect to it: a forward hook gives them in
nnviz's own models and plain PyTorch modules; in TorchScript and exported (.pt2) models,
which take no hooks, the layers are reached as the Feature maps view reaches them
(``nnviz.core.graph_capture``), by their type names. All of them work on every kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.nn import functional as F

from nnviz.core import graph_capture
from nnviz.core.errors import NnvizError
from nnviz.core.gradients import (
    as_module,
    checked_scores,
    class_scores,
    gradient_mode,
    layer_named,
    layer_output,
    model_failed,
    model_input,
    output_of,
    pick_class,
    picture,
    to_numpy,
)
from nnviz.core.models import ACTIVATIONS

# Layers that keep every position where it was, so a feature map's geometry passes through.
_IN_PLACE_LAYERS = (*ACTIVATIONS.values(), nn.Dropout, nn.Dropout2d, nn.BatchNorm2d, nn.Identity)


def class_probabilities(model: Any, image: Any) -> np.ndarray:
    """Softmax probabilities of the model for one image, shape (classes,)."""
    module = as_module(model)
    with gradient_mode(module), torch.no_grad():
        return to_numpy(torch.softmax(class_scores(module, model_input(module, image)), dim=1)[0])


# ---------------------------------------------------------------- why this answer


def saliency(
    model: Any, image: Any, target: int | None = None, *, signed: bool = False
) -> np.ndarray:
    """Gradient of the class score (logit) ``target`` (default: the predicted class) with
    respect to each input pixel, (H, W) float32.

    ``signed=False`` gives its size, the largest over colour channels; ``signed=True`` the
    gradient itself, summed over channels: positive where more ink raises the score.
    """
    module = as_module(model)
    with gradient_mode(module):
        x = model_input(module, image).requires_grad_(True)
        logits = class_scores(module, x)
        (grad,) = torch.autograd.grad(logits[0, pick_class(logits, target)], x)
    return to_numpy(grad[0].sum(0) if signed else grad[0].abs().amax(0))


_ACTIVATION_NAMES = frozenset(cls.__name__ for cls in ACTIVATIONS.values())


def _graph_layers(module: nn.Module) -> dict[str, str] | None:
    """Leaf layer -> type name, in the order they run, of a model that takes no hooks
    (TorchScript, exported); None for a plain module."""
    if isinstance(module, torch.jit.ScriptModule):
        types = graph_capture.script_leaves(module)
        return {n: types[n] for n in graph_capture.script_order(module) if n}
    if isinstance(module, fx.GraphModule) and graph_capture.has_module_stack(module):
        return graph_capture.exported_layers(module)
    return None


def _leaf_types(module: nn.Module) -> dict[str, str]:
    """Every leaf layer -> its type name: in the order they run for TorchScript and
    exported models, in definition order for plain modules."""
    graph = _graph_layers(module)
    if graph is not None:
        return graph
    return {
        n: type(m).__name__
        for n, m in module.named_modules()
        if n and next(iter(m.children()), None) is None
    }


def conv_layers(model: Any) -> list[str]:
    """Names of the model's 2-D convolution layers."""
    module = as_module(model)
    if _graph_layers(module) is None:
        return [n for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]
    return [n for n, kind in _leaf_types(module).items() if kind == "Conv2d"]


def default_cam_layer(model: Any) -> str:
    """The layer Grad-CAM uses by default: the last conv layer, or the activation right
    after it (the paper uses rectified feature maps)."""
    module = as_module(model)
    types = _leaf_types(module)
    names = list(types)
    convs = [i for i, n in enumerate(names) if n in set(conv_layers(module))]
    if not convs:
        raise NnvizError(
            "Grad-CAM needs a convolutional layer and this model has none; use saliency"
        )
    last = convs[-1]
    after = names[last + 1] if last + 1 < len(names) else None
    if after is not None and types[after] in _ACTIVATION_NAMES:
        return after
    return names[last]


def cam_layers(model: Any) -> tuple[list[str], str | None]:
    """The layers Grad-CAM can weigh (the conv layers and the default, in order) and the
    default; ([], None) when the model has no conv layer."""
    module = as_module(model)
    if not conv_layers(module):
        return [], None
    default = default_cam_layer(module)
    wanted = {*conv_layers(module), default}
    return [n for n in _leaf_types(module) if n in wanted], default


def _features_and_scores(
    module: nn.Module, x: torch.Tensor, name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``name``'s output for ``x`` and the model's class scores, joined by a graph so
    the scores' gradient with respect to the output can be taken."""
    graph = _graph_layers(module)
    if graph is None:  # a plain module: a forward hook catches the output
        with layer_output(layer_named(module, name)) as outputs:
            logits = class_scores(module, x)
        return output_of(outputs, name), logits
    if name not in graph:
        raise NnvizError(
            f"the model has no layer named {name!r}; its layers are {', '.join(graph)}"
        )
    try:
        if isinstance(module, torch.jit.ScriptModule):
            found = graph_capture.run_script(module, x, [name])
        elif graph_capture.exported_batch(module) != 1:
            raise NnvizError("Grad-CAM needs a model that takes one image at a time")
        else:
            found = graph_capture.run_exported(module, x, [name])
        features = found[name].detach().clone()
        if features.dim() != 4:
            return features, class_scores(module, x)  # refused by the caller, by shape
        # The copy asks for gradients and goes back in the layer's place.
        features.requires_grad_(True)
        logits = graph_capture.output_with_layer_replaced(module, x, name, features)
    except (RuntimeError, AssertionError) as exc:
        raise model_failed(x, exc) from exc
    return features, checked_scores(logits)


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _geometry(model: nn.Module, layer: str) -> tuple[list[float], list[float]] | None:
    """Where unit (i, j) of ``layer``'s output is centred on the input: at
    ``start + index * jump`` per axis (receptive-field arithmetic). None when the path to
    the layer is not a plain sequence of conv, pool and element-wise layers."""
    if not isinstance(model, nn.Sequential) or layer not in model._modules:
        return None
    start, jump = [0.0, 0.0], [1.0, 1.0]
    for name, m in model.named_children():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            if isinstance(m.padding, str):
                return None
            k, p = _pair(m.kernel_size), _pair(m.padding)
            s, d = _pair(m.stride or m.kernel_size), _pair(getattr(m, "dilation", 1))
            for a in (0, 1):
                start[a] += (d[a] * (k[a] - 1) / 2 - p[a]) * jump[a]
                jump[a] *= s[a]
        elif not isinstance(m, _IN_PLACE_LAYERS):
            return None
        if name == layer:
            return start, jump
    return None


def _onto_input(cam: torch.Tensor, geometry: Any, size: tuple[int, int]) -> torch.Tensor:
    """A (h, w) map resampled (bilinear) onto the input's (H, W) pixels."""
    if geometry is None:  # unknown layout: stretch the map over the whole input
        return F.interpolate(cam[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    (sy, sx), (jy, jx) = geometry

    def axis(n_in: int, n_map: int, start: float, jump: float) -> torch.Tensor:
        pos = (torch.arange(n_in, dtype=cam.dtype, device=cam.device) - start) / jump
        return pos * (2 / (n_map - 1)) - 1 if n_map > 1 else torch.zeros_like(pos)

    gy, gx = torch.meshgrid(
        axis(size[0], cam.shape[0], sy, jy), axis(size[1], cam.shape[1], sx, jx), indexing="ij"
    )
    grid = torch.stack([gx, gy], dim=-1)[None]
    # Zero padding: past the outermost units' centres the map fades out over one unit.
    # (Border padding smeared the edge units over the rim in long, misleading bands.)
    out = F.grid_sample(cam[None, None], grid, "bilinear", "zeros", align_corners=True)
    return out[0, 0]


def grad_cam(
    model: Any, image: Any, target: int | None = None, layer: str | None = None
) -> np.ndarray:
    """Grad-CAM of class ``target`` (default: the predicted class) on ``layer`` (default:
    ``default_cam_layer``), as an (H, W) float32 map in [0, 1] aligned with the input.

    Each feature map is weighted by its mean gradient; the weighted sum's positive part
    is scaled so its peak is 1 (all zeros when nothing speaks for the class).
    """
    module = as_module(model)
    name = default_cam_layer(module) if layer is None else layer
    with gradient_mode(module):
        # The input asks for gradients so the layer's output has a graph even when every
        # parameter is frozen.
        x = model_input(module, image).requires_grad_(True)
        features, logits = _features_and_scores(module, x, name)
        k = pick_class(logits, target)
        if features.dim() != 4:
            raise NnvizError(
                f"Grad-CAM needs a layer of feature maps; {name!r} gives {tuple(features.shape)}"
            )
        (grads,) = torch.autograd.grad(logits[0, k], features)
    maps = features[0].detach()
    weights = grads[0].mean(dim=(1, 2))
    cam = torch.relu((weights[:, None, None] * maps).sum(0))
    cam = _onto_input(cam, _geometry(module, name), tuple(x.shape[2:])).clamp_(min=0)
    peak = float(cam.max())
    return to_numpy(cam / peak if peak > 0 else cam)


# ---------------------------------------------------------------- fool the network


@dataclass(frozen=True)
class FoolResult:
    """An adversarial example: the original, the change and the changed image."""

    original: np.ndarray
    perturbed: np.ndarray
    perturbation: np.ndarray  # perturbed - original, in [-epsilon, epsilon]
    epsilon: float  # the largest change of any pixel
    steps: int  # gradient steps taken before the prediction changed (or the cap)
    original_class: int
    new_class: int
    original_probabilities: np.ndarray
    new_probabilities: np.ndarray

    @property
    def fooled(self) -> bool:
        return self.new_class != self.original_class

    @property
    def message(self) -> str:
        if not self.fooled:
            return (
                f"changing each pixel by up to {self.epsilon:.2f} did not change the "
                f"answer ({self.original_class})"
            )
        return (
            f"{self.original_class} became {self.new_class} "
            f"({self.new_probabilities[self.new_class]:.0%}) with no pixel changed by more "
            f"than {self.epsilon:.3f}"
        )


def _clearly_changed(logits: torch.Tensor, label: int, margin: float) -> bool:
    p = torch.softmax(logits[0], dim=0)
    top = int(p.argmax())
    return top != label and float(p[top] - p[label]) >= margin


def fgsm(
    model: Any,
    image: Any,
    *,
    max_epsilon: float = 0.3,
    step: float = 0.01,
    margin: float = 0.2,
) -> FoolResult:
    """The smallest change found by iterated FGSM that makes the model change its answer.

    Each step moves every pixel by ``step`` the way (sign of the gradient) that most
    raises the loss of the predicted class, keeping pixels in [0, 1] and within
    ``max_epsilon`` of the original, until another class wins by ``margin`` in
    probability or the cap is reached. The change is then scaled down (bisection) to the
    smallest fraction of it that still does that. The margin keeps the new answer clear
    of the boundary, so it survives rounding when the GUI runs the image again.
    ``FoolResult.fooled`` says whether the answer changed at all.
    """
    if not 0 < step <= max_epsilon <= 1 or not 0 <= margin < 1:
        raise NnvizError("need 0 < step <= max_epsilon <= 1 and 0 <= margin < 1")
    module = as_module(model)
    with gradient_mode(module):
        x0 = model_input(module, image)
        first = class_scores(module, x0).detach()
        label = int(first[0].argmax())
        wanted = torch.tensor([label], device=x0.device)
        x, logits = x0, first
        max_steps = math.ceil(max_epsilon / step - 1e-9)
        steps = 0
        while not _clearly_changed(logits, label, margin) and steps < max_steps:
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(class_scores(module, x), wanted), x)
            x = torch.clamp(x.detach() + step * grad.sign(), x0 - max_epsilon, x0 + max_epsilon)
            x = x.clamp_(0, 1)
            steps += 1
            with torch.no_grad():
                logits = class_scores(module, x)
        if _clearly_changed(logits, label, margin):
            x, logits = _smallest_change(module, x0, x - x0, label, margin)
    return FoolResult(
        original=picture(x0),
        perturbed=picture(x),
        perturbation=picture(x - x0),
        epsilon=float((x - x0).abs().max()),
        steps=steps,
        original_class=label,
        new_class=int(logits[0].argmax()),
        original_probabilities=to_numpy(torch.softmax(first, dim=1)[0]),
        new_probabilities=to_numpy(torch.softmax(logits, dim=1)[0]),
    )


def _smallest_change(
    model: nn.Module,
    x0: torch.Tensor,
    delta: torch.Tensor,
    label: int,
    margin: float,
    rounds: int = 10,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x0 + t * delta`` for the smallest t in (0, 1] found that still clearly changes the
    answer. Every such point lies between two images in [0, 1], so it stays in [0, 1]."""
    low, high = 0.0, 1.0
    with torch.no_grad():
        best = class_scores(model, x0 + delta)
        for _ in range(rounds):
            mid = (low + high) / 2
            logits = class_scores(model, x0 + mid * delta)
            if _clearly_changed(logits, label, margin):
                high, best = mid, logits
            else:
                low = mid
    return x0 + high * delta, best
