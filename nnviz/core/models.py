"""Architecture specs: a small JSON-serialisable description from which a model is built.

A spec lists the hidden layers; the output layer (a dense layer with one unit per
class, giving logits) is always added at the end, and a flatten is inserted before
the first dense layer that follows image-shaped data. Every module gets a name a
person can read (``conv1``, ``relu1``, ``pool1``, ``fc1``, ``output``), which is the
name the views and ``nnviz summary`` use.
"""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnviz.core.errors import NnvizError, SpecError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}
LAYER_TYPES = ("dense", "conv", "pool", "dropout")
MNIST_INPUT_SHAPE = (1, 28, 28)


@dataclass
class ArchSpec:
    """A model described as data: input shape, hidden layers, number of classes."""

    layers: list[dict[str, Any]]
    input_shape: tuple[int, int, int] = MNIST_INPUT_SHAPE
    num_classes: int = 10
    name: str = "custom"
    description: str = ""
    # Filled in by ``validate``; the layers as given, with defaults made explicit.
    _normalised: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-serialisable data."""
        return {
            "name": self.name,
            "description": self.description,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "layers": copy.deepcopy(self.layers),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchSpec:
        """Build a spec from parsed JSON, checking it (raises ``SpecError``)."""
        if not isinstance(data, dict):
            raise SpecError("an architecture spec must be a JSON object with a 'layers' list")
        layers = data.get("layers")
        if not isinstance(layers, list):
            raise SpecError("an architecture spec needs a 'layers' list")
        shape = data.get("input_shape", list(MNIST_INPUT_SHAPE))
        if not (isinstance(shape, (list, tuple)) and len(shape) == 3):
            raise SpecError("'input_shape' must be [channels, height, width]")
        spec = cls(
            layers=copy.deepcopy(layers),
            input_shape=tuple(int(s) for s in shape),  # type: ignore[arg-type]
            num_classes=int(data.get("num_classes", 10)),
            name=str(data.get("name", "custom")),
            description=str(data.get("description", "")),
        )
        validate(spec)
        return spec

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"the spec is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def _positive_int(layer: dict[str, Any], key: str, index: int, default: int | None = None) -> int:
    value = layer.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(
            f"layer {index + 1} ({layer.get('type')}): '{key}' must be a positive integer"
        )
    return value


def validate(spec: ArchSpec) -> list[dict[str, Any]]:
    """Check a spec and return its layers with every default made explicit."""
    if spec.num_classes < 2:
        raise SpecError("'num_classes' must be at least 2")
    _, height, width = spec.input_shape
    if min(spec.input_shape) < 1:
        raise SpecError("'input_shape' values must be positive")
    flat = False
    out: list[dict[str, Any]] = []
    for i, layer in enumerate(spec.layers):
        if not isinstance(layer, dict):
            raise SpecError(
                f"layer {i + 1} must be an object like {{'type': 'dense', 'units': 16}}"
            )
        kind = layer.get("type")
        if kind not in LAYER_TYPES:
            raise SpecError(
                f"layer {i + 1}: unknown type {kind!r}; choose one of {', '.join(LAYER_TYPES)}"
            )
        act = layer.get("activation", "relu" if kind in ("dense", "conv") else None)
        if act is not None and act != "none" and act not in ACTIVATIONS:
            raise SpecError(
                f"layer {i + 1}: unknown activation {act!r}; choose one of "
                f"{', '.join(ACTIVATIONS)} or 'none'"
            )
        if kind == "dense":
            units = _positive_int(layer, "units", i)
            out.append({"type": "dense", "units": units, "activation": act or "none"})
            flat = True
        elif kind == "conv":
            if flat:
                raise SpecError(f"layer {i + 1}: a conv layer cannot follow a dense layer")
            k = _positive_int(layer, "kernel", i, 3)
            stride = _positive_int(layer, "stride", i, 1)
            pad = layer.get("padding", 0)
            if pad == "same":
                pad = k // 2
            if not isinstance(pad, int) or pad < 0:
                raise SpecError(f"layer {i + 1} (conv): 'padding' must be 0 or more, or 'same'")
            ch = _positive_int(layer, "channels", i)
            height = (height + 2 * pad - k) // stride + 1
            width = (width + 2 * pad - k) // stride + 1
            out.append(
                {
                    "type": "conv",
                    "channels": ch,
                    "kernel": k,
                    "stride": stride,
                    "padding": pad,
                    "activation": act or "none",
                }
            )
        elif kind == "pool":
            if flat:
                raise SpecError(f"layer {i + 1}: a pool layer cannot follow a dense layer")
            k = _positive_int(layer, "kernel", i, 2)
            mode = layer.get("mode", "max")
            if mode not in ("max", "avg"):
                raise SpecError(f"layer {i + 1} (pool): 'mode' must be 'max' or 'avg'")
            height, width = height // k, width // k
            out.append({"type": "pool", "kernel": k, "mode": mode})
        else:  # dropout
            p = layer.get("p", 0.5)
            if not isinstance(p, (int, float)) or not 0 <= p < 1:
                raise SpecError(f"layer {i + 1} (dropout): 'p' must be in [0, 1)")
            out.append({"type": "dropout", "p": float(p)})
        if height < 1 or width < 1:
            raise SpecError(
                f"layer {i + 1} ({kind}) shrinks the image to nothing; use smaller kernels, "
                "padding or fewer pooling layers"
            )
    spec._normalised = out
    return out


def build_model(spec: ArchSpec, seed: int | None = None) -> nn.Sequential:
    """Build the ``nn.Module`` a spec describes, with named layers; ``seed`` fixes the init."""
    layers = validate(spec)
    if seed is not None:
        torch.manual_seed(seed)
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    counts: dict[str, int] = {}

    def name(base: str) -> str:
        counts[base] = counts.get(base, 0) + 1
        return f"{base}{counts[base]}"

    channels, height, width = spec.input_shape
    features: int | None = None  # set once the data is flat
    for layer in layers:
        kind = layer["type"]
        if kind == "conv":
            modules[name("conv")] = nn.Conv2d(
                channels, layer["channels"], layer["kernel"], layer["stride"], layer["padding"]
            )
            k, s, p = layer["kernel"], layer["stride"], layer["padding"]
            channels = layer["channels"]
            height, width = (height + 2 * p - k) // s + 1, (width + 2 * p - k) // s + 1
        elif kind == "pool":
            pool = nn.MaxPool2d if layer["mode"] == "max" else nn.AvgPool2d
            modules[name("pool")] = pool(layer["kernel"])
            height, width = height // layer["kernel"], width // layer["kernel"]
        elif kind == "dense":
            if features is None:
                modules["flatten"] = nn.Flatten()
                features = channels * height * width
            modules[name("fc")] = nn.Linear(features, layer["units"])
            features = layer["units"]
        else:
            modules[name("dropout")] = nn.Dropout(layer["p"])
        act = layer.get("activation", "none")
        if act != "none":
            modules[name(act)] = ACTIVATIONS[act]()
    if features is None:
        modules["flatten"] = nn.Flatten()
        features = channels * height * width
    modules["output"] = nn.Linear(features, spec.num_classes)
    return nn.Sequential(modules)


def count_params(spec: ArchSpec) -> int:
    """Number of trainable parameters the spec's model has."""
    return sum(p.numel() for p in build_model(spec).parameters())


PRESETS: dict[str, ArchSpec] = {
    "mlp-3b1b": ArchSpec(
        name="mlp-3b1b",
        description="784-16-16-10 with sigmoid: the network in 3Blue1Brown's "
        '"But what is a neural network?" (13,002 parameters)',
        layers=[
            {"type": "dense", "units": 16, "activation": "sigmoid"},
            {"type": "dense", "units": 16, "activation": "sigmoid"},
        ],
    ),
    "mlp": ArchSpec(
        name="mlp",
        description="784-128-64-10 with ReLU",
        layers=[
            {"type": "dense", "units": 128, "activation": "relu"},
            {"type": "dense", "units": 64, "activation": "relu"},
        ],
    ),
    "lenet": ArchSpec(
        name="lenet",
        description="LeNet-style CNN: two 5x5 conv layers (6 and 16 filters) each with 2x2 max "
        "pooling, a dense layer of 64 and the output layer (28,886 parameters)",
        layers=[
            {"type": "conv", "channels": 6, "kernel": 5, "padding": 2, "activation": "relu"},
            {"type": "pool", "kernel": 2},
            {"type": "conv", "channels": 16, "kernel": 5, "activation": "relu"},
            {"type": "pool", "kernel": 2},
            {"type": "dense", "units": 64, "activation": "relu"},
        ],
    ),
    "cnn": ArchSpec(
        name="cnn",
        description="Wider CNN: two blocks of two 3x3 conv layers (32 then 64 filters) with max "
        "pooling, dropout, a dense layer of 128 and the output layer",
        layers=[
            {"type": "conv", "channels": 32, "kernel": 3, "padding": 1, "activation": "relu"},
            {"type": "conv", "channels": 32, "kernel": 3, "padding": 1, "activation": "relu"},
            {"type": "pool", "kernel": 2},
            {"type": "conv", "channels": 64, "kernel": 3, "padding": 1, "activation": "relu"},
            {"type": "conv", "channels": 64, "kernel": 3, "padding": 1, "activation": "relu"},
            {"type": "pool", "kernel": 2},
            {"type": "dropout", "p": 0.25},
            {"type": "dense", "units": 128, "activation": "relu"},
            {"type": "dropout", "p": 0.25},
        ],
    ),
}
for _spec in PRESETS.values():
    validate(_spec)


def get_spec(name_or_path: str | Path) -> ArchSpec:
    """A preset by name, or a spec read from a JSON file."""
    key = str(name_or_path)
    if key in PRESETS:
        return copy.deepcopy(PRESETS[key])
    path = Path(key)
    if path.suffix.lower() == ".json":
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"cannot read spec file {path}: {exc.strerror or exc}") from exc
        try:
            return ArchSpec.from_json(text)
        except SpecError as exc:
            raise SpecError(f"{path}: {exc}") from exc
    raise SpecError(
        f"unknown model {key!r}: use a preset ({', '.join(PRESETS)}) or a spec .json file"
    )


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks cuda when available, else cpu; asking for missing cuda is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise NnvizError("CUDA was asked for but is not available on this machine; use cpu")
        return torch.device(device)
    raise NnvizError(f"unknown device {device!r}; use auto, cpu or cuda")
