"""A model's dense (fully connected) layers and their weights, for the weight views.

Works on every kind of model nnviz loads: a plain ``nn.Module`` (its ``nn.Linear``
modules), an exported program's graph module (whose submodules are bare containers,
so the graph's record of each op's module says which are Linear) and TorchScript.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import fx, nn

from nnviz.core import graph_capture
from nnviz.core.errors import NnvizError


@dataclass(frozen=True)
class DenseLayer:
    """A fully connected layer; its weight matrix is (out_features, in_features)."""

    name: str
    out_features: int
    in_features: int
    has_bias: bool

    @property
    def weight_key(self) -> str:
        return f"{self.name}.weight" if self.name else "weight"

    @property
    def bias_key(self) -> str:
        return f"{self.name}.bias" if self.name else "bias"


def _layer_types(model: nn.Module) -> dict[str, str]:
    """Every layer's class name, in execution order where the model records it."""
    if isinstance(model, torch.jit.ScriptModule):
        return graph_capture.script_leaves(model)
    if isinstance(model, fx.GraphModule) and graph_capture.has_module_stack(model):
        # An exported model's submodules are bare containers; the graph knows their types.
        return graph_capture.exported_layers(model)
    return {
        n: "Linear" if isinstance(m, nn.Linear) else type(m).__name__
        for n, m in model.named_modules()
    }


def dense_layers(model: nn.Module | None) -> list[DenseLayer]:
    """The model's Linear layers with a 2-D weight in its state dict, in order."""
    if model is None:
        return []
    try:
        types = _layer_types(model)
    except (NnvizError, RuntimeError):
        return []  # a graph nnviz cannot read has no layers to show
    state = model.state_dict()
    found = []
    for name, kind in types.items():
        layer = DenseLayer(name, 0, 0, False)
        weight, bias = state.get(layer.weight_key), state.get(layer.bias_key)
        if kind != "Linear" or weight is None or weight.dim() != 2:
            continue
        out, inp = (int(s) for s in weight.shape)
        found.append(DenseLayer(name, out, inp, bias is not None and bias.shape == (out,)))
    return found


def image_reading_layer(model: nn.Module | None, input_shape: tuple[int, ...]) -> DenseLayer | None:
    """The dense layer that reads the input image itself: the first layer with weights,
    taking every pixel of a one-channel image as its inputs. None for CNNs."""
    layers = dense_layers(model)
    if not layers or model is None or len(input_shape) != 3 or input_shape[0] != 1:
        return None
    state = model.state_dict()
    first = next(
        (n for n in _layer_types(model) if DenseLayer(n, 0, 0, False).weight_key in state), None
    )
    layer = layers[0]
    ok = layer.name == first and layer.in_features == math.prod(input_shape)
    return layer if ok else None


def weight_matrix(
    state: dict[str, torch.Tensor], layer: DenseLayer
) -> tuple[np.ndarray, np.ndarray | None]:
    """A layer's weights (out, in) and bias (out,) from a state dict, as float32 numpy
    arrays that may share memory with the model: copy before keeping them."""
    bias = state[layer.bias_key].detach().float().cpu().numpy() if layer.has_bias else None
    return state[layer.weight_key].detach().float().cpu().numpy(), bias


def symmetric_limit(*arrays: np.ndarray | None) -> float:
    """The largest finite |value| in the arrays (1.0 if none), for levels (-m, m)."""
    m = 0.0
    for a in arrays:
        if a is None or a.size == 0:
            continue
        top = float(np.fmax.reduce(np.abs(a), axis=None))  # fmax skips the NaN padding
        if not math.isfinite(top):  # inf (a diverged run) would wash every colour out
            top = float(np.max(np.abs(a), where=np.isfinite(a), initial=0.0))
        m = max(m, top)
    return m if m > 0 else 1.0
