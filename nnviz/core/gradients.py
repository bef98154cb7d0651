"""Running a model for gradients with respect to its input, shared by ``explain`` and ``dream``.

The model runs in eval mode and every submodule gets its own mode back afterwards.
Gradients are meant to be taken with ``torch.autograd.grad`` with respect to the input
only, never ``backward``: then the weights, their ``.grad`` and ``requires_grad`` are never
touched. A layer's output is reached with a forward hook, removed in a ``finally``, which
needs an ``nn.Module`` that runs its submodules: TorchScript and exported (.pt2) models
give their input and output only (``hookable`` says so clearly). Pass the GUI's own model
copy (``Session.view_model``), never the module a trainer is training; and since the mode
switch and the hooks are seen by anyone running the module meanwhile, work done on a
worker thread needs a copy of its own (``copy.deepcopy(session.view_model)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.nn import functional as F

from nnviz.core import graph_capture
from nnviz.core.errors import NnvizError

_GAUSSIAN = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16


def as_module(model: Any) -> nn.Module:
    """The runnable module of a model: itself, or an exported program's graph module."""
    if isinstance(model, torch.export.ExportedProgram):
        return graph_capture.exported_module(model)
    if not isinstance(model, nn.Module):
        raise NnvizError(f"cannot look inside a {type(model).__name__}: expected a PyTorch model")
    return model


def hookable(model: Any, what: str) -> nn.Module:
    """The model, if forward hooks on its layers fire; else a clear error naming ``what``."""
    module = as_module(model)
    if isinstance(module, torch.jit.ScriptModule) or (
        isinstance(module, fx.GraphModule) and graph_capture.has_module_stack(module)
    ):
        kind = "TorchScript" if isinstance(module, torch.jit.ScriptModule) else "exported (.pt2)"
        raise NnvizError(
            f"{what} needs the outputs of the model's layers, which nnviz cannot reach in a "
            f"{kind} model; saliency, fooling and nudging toward a class still work"
        )
    return module


def device_and_dtype(model: nn.Module) -> dict[str, Any]:
    """Where the model's weights live, and their float type, for ``Tensor.to``."""
    for t in [*model.parameters(), *model.buffers()]:
        if t.is_floating_point():
            return {"device": t.device, "dtype": t.dtype}
    return {"dtype": torch.float32}


@contextmanager
def gradient_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode with gradients on (even inside ``inference_mode``); modes restored after."""
    modes = [(m, m.training) for m in model.modules()]
    if any(training for _, training in modes):
        # An exported graph refuses eval(): its mode is baked into its ops.
        with suppress(NotImplementedError):
            model.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        # Pre-order: train() on a parent also sets its children, which come later.
        for module, training in modes:
            if module.training != training:
                module.train(training)


def model_input(model: nn.Module, image: Any) -> torch.Tensor:
    """An owned (1, C, H, W) tensor on the model's device; uint8 images are scaled to [0, 1]."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr / np.float32(255)
    if not np.issubdtype(arr.dtype, np.number) or arr.ndim not in (2, 3, 4):
        raise NnvizError(f"an input image must be (H, W) or (C, H, W) numbers, not {arr.shape}")
    if arr.ndim == 4 and arr.shape[0] != 1:
        raise NnvizError(f"explain one image at a time, not a batch of {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise NnvizError("the input image holds NaN or infinite values")
    arr = np.array(arr, dtype=np.float32).reshape((1,) * (4 - arr.ndim) + arr.shape)
    return torch.from_numpy(arr).to(**device_and_dtype(model))


def class_scores(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's logits for ``x``, (1, classes); a failure becomes an ``NnvizError``."""
    try:
        out = model(x)
    except (RuntimeError, AssertionError) as exc:
        raise model_failed(x, exc) from exc
    return checked_scores(out)


def model_failed(x: torch.Tensor, exc: Exception) -> NnvizError:
    """What the user reads when the model raised on ``x``."""
    return NnvizError(f"the model failed on an input of shape {tuple(x.shape[1:])}: {exc}")


def checked_scores(out: object) -> torch.Tensor:
    """``out`` if it is one row of class scores per input, else an ``NnvizError``."""
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise NnvizError("the model must give one row of class scores per input")
    return out


def pick_class(logits: torch.Tensor, target: int | None) -> int:
    """``target`` checked against the model's classes; None means the predicted class."""
    classes = logits.shape[1]
    if target is None:
        return int(logits[0].argmax())
    if (
        not isinstance(target, (int, np.integer))
        or isinstance(target, bool)
        or not (0 <= target < classes)
    ):
        raise NnvizError(
            f"class {target!r} is not one of the model's {classes} classes (0-{classes - 1})"
        )
    return int(target)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """An owned float32 copy: a view would change with the tensor under the painter."""
    return t.detach().float().cpu().numpy().copy()


def layer_named(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name``, or an error listing the names there are."""
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        raise NnvizError(
            f"the model has no layer named {name!r}; its layers are "
            + ", ".join(n for n in modules if n)
        )
    return modules[name]


@contextmanager
def layer_output(layer: nn.Module) -> Iterator[list[torch.Tensor]]:
    """The layer's output of the next forward pass, with its graph (for gradients)."""
    outputs: list[torch.Tensor] = []

    def keep(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            outputs[:] = [output]

    handle = layer.register_forward_hook(keep)
    try:
        yield outputs
    finally:
        handle.remove()


def output_of(outputs: list[torch.Tensor], name: str) -> torch.Tensor:
    """What ``layer_output`` caught, or an error if the layer never ran."""
    if not outputs:
        raise NnvizError(f"layer {name!r} did not run, or gave no tensor, for this input")
    return outputs[0]


def blur(x: torch.Tensor) -> torch.Tensor:
    """A 3x3 Gaussian blur of each channel of (1, C, H, W), edges replicated."""
    channels = x.shape[1]
    weight = _GAUSSIAN.to(x).expand(channels, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, groups=channels)


def picture(x: torch.Tensor) -> np.ndarray:
    """A (1, C, H, W) input as the (H, W) image a person sees ((C, H, W) if in colour)."""
    return to_numpy(x[0, 0] if x.shape[1] == 1 else x[0])
