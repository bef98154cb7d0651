"""Look inside a model: a per-layer summary, and every layer's output for one input.

Three kinds of model are understood:

* a plain ``nn.Module`` (the presets or any user module): forward hooks on its leaf
  modules, removed in a ``finally`` whatever happens; an ``nn.Sequential`` of leaf
  modules (every preset) is called layer by layer instead, which gives the same
  values for less;
* a ``torch.export.ExportedProgram`` (or the graph module ``ep.module()`` returns):
  its graph is run node by node, see ``nnviz.core.graph_capture``;
* a TorchScript module (scripted or traced, fresh or loaded): its forward graph is
  rewritten to also return each layer's output, see ``nnviz.core.graph_capture``.

A *layer* is a leaf module, one with no children, named by its dotted path
("conv1", "features.0"). Layers come in execution order; a module called more than
once appears once, at its last call, with the output of that call. Operations in a
``forward`` that belong to no leaf module (``torch.flatten(x, 1)``) are not layers.
Only layers that ran appear; in an exported or TorchScript model that means a layer
that does no operation (``nn.Identity``) does not appear, and in TorchScript neither
does one called inside an ``if`` or a loop of its parent's forward (asking for it by
name is an ``NnvizError`` that says so).

Interventions (``nnviz.core.interventions``) set units of named layers' outputs where
they are made, so every later layer reads the changed values: a forward hook that
returns the changed output (or the changed output passed on to the next layer of a
sequence), the graph interpreter replacing the layer's node value, or a ``where``
inserted into the TorchScript graph. A module called more than once is
changed at every call by the hook, at its last call in the other two kinds.

Never pass the module a trainer is training: hooks and the mode switch would reach
its training steps. Inspect a copy (sharing the trained module made 1.1% of training
forwards run in eval mode).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.nn.modules import module as torch_module

from nnviz.core import graph_capture
from nnviz.core.errors import NnvizError
from nnviz.core.interventions import UnitEdit, edits_for

# Layer kinds by class name, for views that show a layer through the step after it.
# fmt: off
ACTIVATION_TYPES = frozenset({
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "SiLU",
    "Mish", "Sigmoid", "Tanh", "Hardtanh", "Hardsigmoid", "Hardswish", "Softplus", "Softsign",
    "LogSigmoid", "Tanhshrink", "Softshrink", "Hardshrink", "Threshold", "Softmax", "Softmin",
    "LogSoftmax",
})
NORM_TYPES = frozenset({
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "InstanceNorm1d",
    "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm", "RMSNorm",
})
# No-ops in eval mode, or a reshape of the layer before.
REPEAT_TYPES = frozenset({
    "Flatten", "Unflatten", "Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
    "AlphaDropout", "FeatureAlphaDropout",
})
# fmt: on


@dataclass(frozen=True)
class LayerInfo:
    """One leaf layer: its name, class name, output shape (batch of 1) and own parameters."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int


@dataclass(frozen=True)
class Summary:
    """A model's layers in execution order, with parameter totals."""

    input_shape: tuple[int, ...]
    layers: tuple[LayerInfo, ...]
    total_params: int
    trainable_params: int

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data (lists, not tuples)."""
        return {
            "input_shape": list(self.input_shape),
            "layers": [
                {
                    "name": layer.name,
                    "type": layer.type,
                    "output_shape": list(layer.output_shape),
                    "params": layer.params,
                }
                for layer in self.layers
            ],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
        }

    def format_table(self) -> str:
        """A Keras-like text table: one row per layer, then the totals."""
        header = ("Layer (type)", "Output shape", "Params")
        rows = [
            (
                f"{layer.name or '(model)'} ({layer.type})",
                str(layer.output_shape),
                f"{layer.params:,}",
            )
            for layer in self.layers
        ]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]

        def line(cells: tuple[str, str, str]) -> str:
            return f"{cells[0]:<{widths[0]}}   {cells[1]:<{widths[1]}}   {cells[2]:>{widths[2]}}"

        rule_width = sum(widths) + 6
        lines = [f"Input shape: {self.input_shape}", "=" * rule_width, line(header)]
        lines.append("=" * rule_width)
        lines += [line(row) for row in rows]
        lines += [
            "=" * rule_width,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
        ]
        return "\n".join(lines)


@dataclass
class _Layers:
    """What a kind of model offers: its capturable layers and a way to run them."""

    types: dict[str, str]  # every leaf layer, name -> class name
    # (input batch, names, edits by layer) -> cloned outputs, in execution order
    run: Callable[[torch.Tensor, list[str], dict[str, UnitEdit]], dict[str, torch.Tensor]]
    # () -> (parameters owned directly by each layer, total, trainable). Only summaries
    # show them, so they are counted when asked for: a capture runs at every mouse
    # move while a digit is drawn, and counting took longer than half the forward
    # pass of a small MLP.
    count_params: Callable[[], tuple[dict[str, int], int, int]]
    extra_names: frozenset[str] = frozenset()  # non-leaf names that may also be asked for
    # Exported graphs have their mode baked in (and refuse .eval()); their runner
    # switches the mode-dependent ops off instead.
    switch_mode: bool = True
    modules: tuple[nn.Module, ...] = ()  # every module of a plain model, for the mode switch
    # The layers whose outputs can be had, in execution order where known (TorchScript
    # cannot give those called inside control flow); all of ``types`` when None.
    order: list[str] | None = None

    def capturable(self) -> list[str]:
        return list(self.types) if self.order is None else list(self.order)


def summarize(model: Any, input_shape: tuple[int, ...] = (1, 28, 28)) -> Summary:
    """Layers, output shapes (batch of 1) and parameter counts of a module, exported
    program or TorchScript module, found by running one all-zero input of ``input_shape``.
    """
    layers = _layers_of(model)
    x = torch.zeros((1, *input_shape))
    outputs = _run(model, layers, x, layers.capturable(), {})
    params, total, trainable = layers.count_params()
    return Summary(
        input_shape=tuple(int(s) for s in input_shape),
        layers=tuple(
            LayerInfo(name, layers.types[name], tuple(out.shape), params.get(name, 0))
            for name, out in outputs.items()
        ),
        total_params=total,
        trainable_params=trainable,
    )


def capture_activations(
    model: Any,
    x: torch.Tensor,
    names: Iterable[str] | None = None,
    interventions: Mapping[str, Mapping[int, float]] | None = None,
) -> dict[str, np.ndarray]:
    """Every leaf layer's output (or just ``names``) for ONE input, as numpy copies.

    ``x`` is (C, H, W) or (1, C, H, W); each output keeps its batch dimension of 1.
    The model runs in eval mode under ``torch.inference_mode`` and is left in the mode
    it was in. Keys are layer names in execution order. ``interventions`` (layer ->
    {unit: value}) set those units' outputs first, so later layers see the new values.
    """
    return _capture(model, _layers_of(model), x, names, interventions)


class ActivationCapture:
    """``capture_activations`` for one model whose layers stay as they are.

    A model's layers are found anew at every ``capture_activations`` call, since any
    module can be changed at any time. The views' own copy of the model only ever gets
    new weights (``load_state_dict``), and they capture it at every mouse move while a
    digit is drawn: this finds its layers once. Make a new one for a new model.

    It also runs the convolutions of a sequential model faster (see ``_call_layer``),
    which gives the values of ``capture_activations`` to float rounding, not exactly.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self._layers = _layers_of(model, direct_conv=True)

    def __call__(
        self,
        x: torch.Tensor,
        names: Iterable[str] | None = None,
        interventions: Mapping[str, Mapping[int, float]] | None = None,
    ) -> dict[str, np.ndarray]:
        """As ``capture_activations(model, x, names, interventions)``."""
        return _capture(self.model, self._layers, x, names, interventions)


def _capture(
    model: Any,
    layers: _Layers,
    x: torch.Tensor,
    names: Iterable[str] | None,
    interventions: Mapping[str, Mapping[int, float]] | None,
) -> dict[str, np.ndarray]:
    x = torch.as_tensor(x)
    # Rank 4 is an image batch, which must hold one image; anything smaller is one
    # sample and gets its batch dimension. ((1, 28, 28) is one MNIST image, C=1.)
    if x.dim() == 4 and x.shape[0] != 1 or x.dim() == 0 or x.dim() > 4:
        raise NnvizError(
            f"capture_activations takes one input of shape (C, H, W) or (1, C, H, W), "
            f"not {tuple(x.shape)}"
        )
    if x.dim() < 4:
        x = x.unsqueeze(0)
    wanted = layers.capturable() if names is None else _known(layers, names)
    edits = edits_for(interventions)
    _known(layers, edits)
    outputs = _run(model, layers, x, wanted, edits)
    return {name: _to_numpy(out) for name, out in outputs.items()}


def run_edited(
    model: Any, x: torch.Tensor, names: Iterable[str], edits: Mapping[str, UnitEdit]
) -> dict[str, np.ndarray]:
    """The named layers' outputs for a BATCH ``x``, with ``edits`` applied where each
    edited layer's output is made (one row of units per sample, or one for all)."""
    layers = _layers_of(model)
    wanted = _known(layers, names)
    _known(layers, edits)
    outputs = _run(model, layers, torch.as_tensor(x), wanted, dict(edits))
    return {name: _to_numpy(out) for name, out in outputs.items()}


def _known(layers: _Layers, names: Iterable[str]) -> list[str]:
    """``names`` without repeats, or an NnvizError naming those the model does not have."""
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in layers.types and n not in layers.extra_names]
    if unknown:
        raise NnvizError(
            f"the model has no layer named {', '.join(map(repr, unknown))}; "
            f"its layers are {', '.join(layers.types)}"
        )
    return wanted


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()  # numpy has no bfloat16, and the views want float32 anyway
    return t.cpu().numpy()


def _run(
    model: Any, layers: _Layers, x: torch.Tensor, names: list[str], edits: dict[str, UnitEdit]
) -> dict[str, torch.Tensor]:
    """Run ``layers.run`` on ``x`` moved to the model's device/dtype, in eval mode."""
    x = x.to(**_device_and_dtype(model))
    try:
        mode = _eval_mode(model, layers.modules) if layers.switch_mode else nullcontext()
        with mode, torch.inference_mode():
            return layers.run(x, names, edits)
    except (RuntimeError, AssertionError) as exc:
        # Mostly an input of a shape the model was not made for (or a failed guard).
        raise NnvizError(
            f"the model failed on an input of shape {tuple(x.shape[1:])}: {exc}"
        ) from exc


def _device_and_dtype(model: Any) -> dict[str, Any]:
    if isinstance(model, torch.export.ExportedProgram):
        tensors: Iterable[torch.Tensor] = model.state_dict.values()
    elif isinstance(model, nn.Module):
        # Lazily: the first floating tensor decides, usually the first parameter.
        tensors = itertools.chain(model.parameters(), model.buffers())
    else:
        tensors = []
    for t in tensors:
        if t.is_floating_point():
            return {"device": t.device, "dtype": t.dtype}
    return {"dtype": torch.float32}


@contextmanager
def _eval_mode(model: nn.Module, modules: Iterable[nn.Module] = ()) -> Iterator[None]:
    """Eval mode for the pass; every submodule gets back its own previous mode.
    ``modules``: all of the model's, when the caller has them (a walk fewer)."""
    modes = [(m, m.training) for m in (modules or model.modules())]
    # eval() walks the model again and sets every module's flag; a model already in
    # eval mode (the views' copy) skips that.
    if any(training for _, training in modes):
        model.eval()
    try:
        yield
    finally:
        # Pre-order: train() on a parent also sets its children, which come later.
        for module, training in modes:
            if module.training != training:
                module.train(training)


def _layers_of(model: Any, direct_conv: bool = False) -> _Layers:
    if isinstance(model, torch.export.ExportedProgram):
        gm = graph_capture.exported_module(model)
        return _graph_layers(gm, graph_capture.exported_batch(gm, model.range_constraints))
    if isinstance(model, torch.jit.ScriptModule):
        return _script_layers(model)
    if isinstance(model, fx.GraphModule) and graph_capture.has_module_stack(model):
        return _graph_layers(model, graph_capture.exported_batch(model))
    if isinstance(model, nn.Module):
        return _module_layers(model, direct_conv)
    raise NnvizError(
        f"cannot inspect a {type(model).__name__}: expected an nn.Module, an exported "
        "program or a TorchScript module"
    )


def _totals(model: nn.Module) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _own_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


# ---------------------------------------------------------------- plain modules


def _module_layers(model: nn.Module, direct_conv: bool = False) -> _Layers:
    # Read anew at every call, not cached: one walk over a small model costs little,
    # and a module can be added, replaced or removed at any time.
    modules = dict(model.named_modules())
    scripted = [n for n, m in modules.items() if isinstance(m, torch.jit.ScriptModule)]
    if scripted:  # TorchScript refuses forward hooks
        raise NnvizError(
            f"cannot inspect a module holding TorchScript parts ({', '.join(scripted)}); "
            "inspect the TorchScript module itself"
        )
    leaves = {n: m for n, m in modules.items() if next(iter(m.children()), None) is None}

    def count_params() -> tuple[dict[str, int], int, int]:
        return {n: _own_params(m) for n, m in leaves.items()}, *_totals(model)

    sequence = _layer_sequence(model, leaves)
    # Outputs are cloned as they are recorded, in case a later layer rewrites them in
    # place; a sequence of torch's own layers, none of them in-place, never does.
    keep = sequence is not None and all(_leaves_input_alone(m) for _, m in sequence)
    return _Layers(
        types={n: type(m).__name__ for n, m in leaves.items()},
        run=partial(_run_hooks, modules, sequence, keep, direct_conv),
        modules=tuple(modules.values()),
        count_params=count_params,
        # Any module may be asked for by name (a block's output), not only leaves.
        extra_names=frozenset(modules),
    )


def _leaves_input_alone(module: nn.Module) -> bool:
    """Whether ``module`` surely leaves its input as it is: one of torch's own layers
    without ``inplace=True`` (code of unknown modules could write to its input)."""
    return type(module).__module__.startswith("torch.nn.modules.") and not getattr(
        module, "inplace", False
    )


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):  # e.g. an RNN's (output, hidden)
        return next((o for o in output if isinstance(o, torch.Tensor)), None)
    return None


def _layer_sequence(
    model: nn.Module, leaves: dict[str, nn.Module]
) -> list[tuple[str, nn.Module]] | None:
    """The layers of a plain ``nn.Sequential`` of distinct leaf modules, in order; else None.

    Such a model's forward is ``for layer in self: x = layer(x)``, so ``_run_hooks`` can
    make those calls itself and read each output on the way, with the same values as
    hooks give but without their cost: registering and removing a hook per layer, and
    every call then taking the module's slow path, was a fifth of a LeNet capture.
    Anything else (a subclass with its own forward, nested containers, a module used
    twice, hooks on the container itself, which these calls would skip) uses hooks.
    (Global module hooks, ``register_module_forward_hook``, see the layers' calls but
    not the container's.)
    """
    if type(model) is not nn.Sequential or model._forward_hooks or model._forward_pre_hooks:
        return None
    layers = list(model._modules.items())
    # A module used twice is in ``leaves`` (from named_modules) under its first name only.
    if any(layer is None or leaves.get(name) is not layer for name, layer in layers):
        return None
    return layers


# torch's direct convolution (im2col and a matrix product), which ``F.conv2d`` picks only
# where oneDNN is off or cannot run. A binding of torch's, not a documented API: if a
# torch release drops it, Conv2d layers are simply called as usual.
_DIRECT_CONV2D = getattr(torch._C._nn, "thnn_conv2d", None)


def _call_layer(layer: nn.Module, x: torch.Tensor) -> Any:
    """``layer(x)``, except a plain ``Conv2d`` given one float32 image on the CPU runs
    torch's direct convolution. oneDNN's set-up dwarfs the work on one small image: 26
    instead of 162 us for LeNet's first layer, and a capture runs at every mouse move
    while a digit is drawn. Same values to float rounding (2e-7 relative). A layer with
    hooks of its own, or any global module hooks, is called as usual so they run."""
    if (
        _DIRECT_CONV2D is not None
        and type(layer) is nn.Conv2d
        and x.shape[0] == 1
        and x.dtype == layer.weight.dtype == torch.float32
        and x.device.type == "cpu"
        and layer.groups == 1
        and layer.dilation == (1, 1)
        and layer.padding_mode == "zeros"
        and not isinstance(layer.padding, str)
        and not (layer._forward_hooks or layer._forward_pre_hooks or _global_module_hooks())
    ):
        return _DIRECT_CONV2D(
            x, layer.weight, layer.kernel_size, layer.bias, layer.stride, layer.padding
        )
    return layer(x)


def _global_module_hooks() -> bool:
    """Whether any ``register_module_forward_(pre_)hook`` is in place."""
    return bool(torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks)


def _run_hooks(
    modules: dict[str, nn.Module],
    sequence: list[tuple[str, nn.Module]] | None,
    keep: bool,
    direct_conv: bool,
    x: torch.Tensor,
    names: list[str],
    edits: dict[str, UnitEdit],
) -> dict[str, torch.Tensor]:
    """Each named module's output (last call) with ``edits`` applied where it is made:
    from forward hooks, or along the way for a ``sequence`` (see ``_layer_sequence``).
    ``keep``: no layer writes to another's output, so outputs need no copy;
    ``direct_conv``: a sequence's Conv2d layers may run as ``_call_layer`` runs them."""
    values: dict[str, torch.Tensor] = {}
    recorded = set(names)

    def record(name: str, output: Any) -> Any:
        edit = edits.get(name)
        if edit is not None:
            output = edit(output)  # what the next layer reads
        tensor = _first_tensor(output)
        if tensor is not None and name in recorded:
            # Clone: a later ReLU(inplace=True) would otherwise rewrite this value.
            values.pop(name, None)  # a repeated call moves the layer to its last call
            values[name] = tensor.detach() if keep else tensor.detach().clone()
        return output

    if sequence is not None:
        for name, layer in sequence:
            x = record(name, _call_layer(layer, x) if direct_conv else layer(x))
        record("", x)  # the model's own output, when asked for
        return values

    def hook(name: str, _module: nn.Module, _inputs: Any, output: Any) -> Any:
        output = record(name, output)
        return output if name in edits else None  # returned: the module's caller gets it

    handles = []
    try:
        for name in dict.fromkeys([*names, *edits]):
            handles.append(modules[name].register_forward_hook(partial(hook, name)))
        modules[""](x)
    finally:
        for handle in handles:
            handle.remove()
    return values


# ---------------------------------------------------------------- exported programs


def _graph_layers(gm: fx.GraphModule, batch: int) -> _Layers:
    types = graph_capture.exported_layers(gm)

    def count_params() -> tuple[dict[str, int], int, int]:
        params: dict[str, int] = {}
        for name, p in gm.named_parameters():
            owner = name.rpartition(".")[0]
            params[owner] = params.get(owner, 0) + p.numel()
        return {n: params.get(n, 0) for n in types}, *_totals(gm)

    return _Layers(
        types=types,
        run=lambda x, names, edits: graph_capture.run_exported(gm, x, names, batch, edits),
        count_params=count_params,
        switch_mode=False,
    )


# ---------------------------------------------------------------- TorchScript


def _script_layers(model: torch.jit.ScriptModule) -> _Layers:
    types = graph_capture.script_leaves(model)

    def count_params() -> tuple[dict[str, int], int, int]:
        modules = dict(model.named_modules())
        return {n: _own_params(modules[n]) for n in types}, *_totals(model)

    return _Layers(
        types=types,
        run=lambda x, names, edits: graph_capture.run_script(model, x, names, edits),
        count_params=count_params,
        order=graph_capture.script_order(model),
    )
