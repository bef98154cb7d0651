"""Layer outputs of models that cannot take forward hooks: exported programs and TorchScript.

Both kinds keep a record of which ``nn.Module`` each operation came from, and both
are read here the same way: every leaf module (one with no children) is a layer,
and a layer's output is the value of the *last* operation belonging to it in
execution order. So a module called twice shows the output of its last call, as
the hook-based capture in ``nnviz.core.inspect`` does. Operations written in a
``forward`` outside any leaf module (``torch.flatten(x, 1)``, ``F.relu(x)``) run
but are not layers, again as with hooks, which cannot see them either.

Exported programs (``torch.export``) are run node by node with ``torch.fx.Interpreter``
over ``ep.module()``; ``node.meta["nn_module_stack"]`` names the module of each node.

TorchScript modules refuse forward hooks, so the ``forward`` graph is copied and
inlined, each layer's last value gets an ``aten::clone`` right after it (so a later
in-place op cannot change it) and becomes an extra graph output, and the rewritten
graph is compiled and called with the module itself. The module the nodes came from
is read from ``Node.getModuleHierarchy()``, which inlining fills in.

Interventions (``UnitEdit``) change a layer's output where it is made: the interpreter
replaces the node's value; in TorchScript an ``aten::where(mask, fill, value)`` is
inserted after the layer's value, which every later use reads instead, with the mask
and fill as extra graph inputs. The same way, ``output_with_layer_replaced`` puts a
given tensor in place of a layer's whole output, so gradients with respect to a layer's
output (Grad-CAM) are had without hooks.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from typing import Any

import torch
from torch import fx, nn

from nnviz.core.errors import NnvizError
from nnviz.core.interventions import UnitEdit

# ---------------------------------------------------------------- exported programs

_aten = torch.ops.aten
# The position of the ``training`` flag of the ops whose behaviour depends on the
# mode. An exported graph has the mode baked in; turning the flag off is how a
# program exported in train mode is run "in eval mode", as a live module would be.
_TRAINING_FLAG: dict[Any, int] = {
    op.default: index
    for name, index in [
        ("batch_norm", 5),
        ("native_batch_norm", 5),
        ("_native_batch_norm_legit", 5),
        ("_native_batch_norm_legit_functional", 5),
        ("dropout", 2),
        ("dropout_", 2),
        ("native_dropout", 2),
        ("feature_dropout", 2),
        ("feature_dropout_", 2),
        ("alpha_dropout", 2),
        ("alpha_dropout_", 2),
        ("feature_alpha_dropout", 2),
        ("feature_alpha_dropout_", 2),
    ]
    if (op := getattr(_aten, name, None)) is not None
}


def has_module_stack(gm: fx.GraphModule) -> bool:
    """Whether a graph module records the modules of its ops (made by ``torch.export``)."""
    return any(n.op == "call_function" and n.meta.get("nn_module_stack") for n in gm.graph.nodes)


def _type_name(module_type: object) -> str:
    # Stored as "torch.nn.modules.conv.Conv2d" after a save/load, as a class before.
    name = getattr(module_type, "__name__", None)
    return name if isinstance(name, str) else str(module_type).rsplit(".", 1)[-1]


# Reading a graph (and, for TorchScript, compiling the rewritten one) costs 10-100 ms,
# far more than running a small model, so it is done once per model (and per list of
# layers); the caches forget a model when it is garbage collected.
_EXPORTED_MODULES: weakref.WeakKeyDictionary[Any, fx.GraphModule] = weakref.WeakKeyDictionary()
# Plans hold node names, not nodes: a node refers to its graph module, which would
# keep the cache's key alive for ever.
_EXPORTED_PLANS: weakref.WeakKeyDictionary[fx.GraphModule, Any] = weakref.WeakKeyDictionary()
_SCRIPT_PLANS: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()


def exported_module(ep: torch.export.ExportedProgram) -> fx.GraphModule:
    """``ep.module()``, made once per program (it shares the program's weights)."""
    gm = _EXPORTED_MODULES.get(ep)
    if gm is None:
        gm = _EXPORTED_MODULES[ep] = ep.module()
    return gm


def _exported_plan(gm: fx.GraphModule) -> tuple[dict[str, str], dict[str, str]]:
    """Each leaf layer's type and the name of the node whose value is its output."""
    plan = _EXPORTED_PLANS.get(gm)
    if plan is None:
        plan = _EXPORTED_PLANS[gm] = _read_exported(gm)
    return plan


def _read_exported(gm: fx.GraphModule) -> tuple[dict[str, str], dict[str, str]]:
    types: dict[str, str] = {}
    last: dict[str, str] = {}
    for node in gm.graph.nodes:
        stack = node.meta.get("nn_module_stack")
        # call_module nodes are export's own helpers (the input guards), not layers.
        if node.op != "call_function" or not stack:
            continue
        path, module_type = list(stack.values())[-1]
        val = node.meta.get("val")
        # Not a tuple that a later getitem unpacks, nor a value nothing reads (the
        # indices of a max pool): the layer's output is its last tensor that is used.
        if not node.users or (val is not None and not isinstance(val, torch.Tensor)):
            continue
        types[path] = _type_name(module_type)
        last.pop(path, None)  # re-insert: execution order is that of the last call
        last[path] = node.name
    # A path that contains others is a container whose own ops (a functional relu in
    # a custom block's forward) are not a layer: hooks would not see them either.
    leaves = [p for p in last if not any(o.startswith(f"{p}.") or (p == "" and o) for o in last)]
    return {p: types[p] for p in leaves}, {p: last[p] for p in leaves}


def exported_layers(gm: fx.GraphModule) -> dict[str, str]:
    """Every leaf layer of an exported graph module, name -> type, in execution order."""
    return _exported_plan(gm)[0]


def exported_batch(gm: fx.GraphModule, ranges: dict[Any, Any] | None = None) -> int:
    """The smallest batch the graph accepts: 1, unless it was exported with a fixed
    batch size or a dynamic one with a higher minimum (``ranges``: ``ep.range_constraints``).
    """
    for node in gm.graph.nodes:
        if node.op != "placeholder":
            continue
        val = node.meta.get("val")
        if not isinstance(val, torch.Tensor) or val.dim() == 0:
            return 1
        size = val.shape[0]
        if isinstance(size, int):
            return size
        bounds = (ranges or {}).get(size.node.expr)
        return max(1, int(bounds.lower)) if bounds is not None else 1
    return 1


class _TapInterpreter(fx.Interpreter):
    """Runs an exported graph in eval mode, keeping copies of the tapped nodes' values
    and changing the edited ones (the later nodes read the changed value)."""

    def __init__(
        self, gm: fx.GraphModule, taps: dict[str, str], edits: dict[str, UnitEdit]
    ) -> None:
        super().__init__(gm)
        self.taps = taps
        self.edits = edits  # node name -> edit
        self.values: dict[str, torch.Tensor] = {}

    def run_node(self, n: fx.Node) -> Any:
        # fx.Interpreter.run_node without its per-node context managers (a debug log,
        # and node metadata that only a tracer reads): they were a fifth of the time
        # a small exported model took to capture.
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        result = getattr(self, n.op)(n.target, args, kwargs)
        edit = self.edits.get(n.name)
        if edit is not None:
            result = edit(result)
        name = self.taps.get(n.name)
        if name is not None and isinstance(result, torch.Tensor):
            # Clone now: a later in-place op (relu_) would overwrite this storage.
            self.values.pop(name, None)
            self.values[name] = result.detach().clone()
        return result

    def get_attr(self, target: Any, args: Any, kwargs: Any) -> Any:
        value = super().get_attr(target, args, kwargs)
        # A graph exported in train mode updates its buffers (running stats) in
        # place; they are shared with the program, which looking must not change.
        if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
            return value.clone()
        return value

    def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
        index = _TRAINING_FLAG.get(target)
        # Batch norm (flag at 5) without running statistics can only use the batch's.
        has_stats = index != 5 or (len(args) > 5 and args[3] is not None and args[4] is not None)
        if index is not None and len(args) > index and args[index] and has_stats:
            args = (*args[:index], False, *args[index + 1 :])
        return super().call_function(target, args, kwargs)


def run_exported(
    gm: fx.GraphModule,
    x: torch.Tensor,
    names: Iterable[str],
    batch: int = 1,
    edits: dict[str, UnitEdit] | None = None,
) -> dict[str, torch.Tensor]:
    """Copies of the named layers' outputs for input ``x`` of shape (n, ...), with
    ``edits`` (by layer) applied to those layers' outputs.

    A program exported with a fixed batch size other than 1 gets a one-sample ``x``
    repeated to ``batch`` samples, and every output is cut back to its first sample.
    """
    _, last = _exported_plan(gm)
    taps = {last[name]: name for name in names}
    interpreter = _TapInterpreter(gm, taps, {last[k]: e for k, e in (edits or {}).items()})
    if batch != 1 and x.shape[0] != 1:
        raise NnvizError(
            f"this exported program only takes batches of {batch}, not of {x.shape[0]}"
        )
    if batch != 1:
        x = x.expand(batch, *x.shape[1:]).contiguous()
    interpreter.run(x)
    if batch == 1:
        return interpreter.values
    return {
        k: v[:1] if v.dim() and v.shape[0] == batch else v for k, v in interpreter.values.items()
    }


# ---------------------------------------------------------------- TorchScript

# One "instance(Type)" entry of a hierarchy such as "features(Sequential).0(Conv2d)".
_HIERARCHY_ENTRY = re.compile(r"([^.()]*)\(([^()]*)\)")
# Entries that are not a submodule: a method of the same module, or a function.
_NOT_A_MODULE = {"SELF", "UNKNOWN_INSTANCE", ""}


def _node_path(node: torch._C.Node) -> str:
    """The dotted name of the module an inlined node came from ("" for the top level)."""
    parts = [m.group(1) for m in _HIERARCHY_ENTRY.finditer(node.getModuleHierarchy())]
    return ".".join(p for p in parts if p not in _NOT_A_MODULE)


def script_leaves(module: torch.jit.ScriptModule) -> dict[str, str]:
    """Every leaf submodule of a TorchScript module, name -> type (``original_name``)."""
    return {
        name: sub.original_name
        for name, sub in module.named_modules()
        if next(iter(sub.children()), None) is None
    }


def _inlined_forward(module: torch.jit.ScriptModule) -> torch._C.Graph:
    if not hasattr(module, "forward") or not hasattr(module.forward, "graph"):
        raise NnvizError("this TorchScript module has no forward method to run")
    try:
        graph = module.forward.graph.copy()
        torch._C._jit_pass_inline(graph)
    except RuntimeError as exc:
        raise NnvizError(f"cannot read this TorchScript model's forward graph: {exc}") from exc
    return graph


def _script_taps(graph: torch._C.Graph, leaves: Iterable[str]) -> dict[str, torch._C.Value]:
    """The last tensor value made by each leaf layer, in execution order of their last calls.

    Only the top level of the graph is read: a layer called inside an ``if`` or a loop
    of its parent's forward makes its values in a nested block, which cannot be
    returned from the graph, so it is left out (rather than guessed at).
    """
    wanted = set(leaves)
    tensor = torch._C.TensorType.get()
    last: dict[str, torch._C.Value] = {}
    for node in graph.nodes():
        # A node's first output is its result (max_pool2d_with_indices: the values);
        # one that nothing reads is not the layer's output.
        if node.outputsSize() == 0:
            continue
        value = node.outputsAt(0)
        if not value.uses() or not value.type().isSubtypeOf(tensor):
            continue
        path = _node_path(node)
        if path in wanted:
            last.pop(path, None)
            last[path] = value
    return last


def script_order(module: torch.jit.ScriptModule) -> list[str]:
    """The leaf layers whose outputs can be captured, in execution order."""
    cache = _SCRIPT_PLANS.setdefault(module, {})
    if "order" not in cache:
        leaves = script_leaves(module)
        cache["order"] = (
            [""] if list(leaves) == [""] else list(_script_taps(_inlined_forward(module), leaves))
        )
    return list(cache["order"])


def _capture_function(
    module: torch.jit.ScriptModule, names: tuple[str, ...], edited: tuple[str, ...] = ()
) -> Any:
    """The module's forward, rewritten to also return a copy of each named layer's output
    and to take a (mask, fill) pair of inputs per edited layer that replace its units."""
    graph = _inlined_forward(module)
    taps = _script_taps(graph, [*names, *edited])
    missing = [n for n in dict.fromkeys([*names, *edited]) if n not in taps]
    if missing:
        verb = "change" if set(missing) & set(edited) else "capture"
        raise NnvizError(
            f"cannot {verb} the output of "
            + ", ".join(missing)
            + " in this TorchScript model: its forward graph has no value made by that "
            "layer outside control flow (it may be unused, or called inside an if or a loop)"
        )
    for name in edited:
        value = taps[name]
        mask, fill = graph.addInput(f"{name}_mask"), graph.addInput(f"{name}_fill")
        for extra in (mask, fill):
            extra.setType(torch._C.TensorType.get())
        where = graph.create("aten::where", [mask, fill, value])
        where.insertAfter(value.node())
        # Every later use (the next layer, an in-place op, the return) reads the change.
        value.replaceAllUsesAfterNodeWith(where, where.output())
        taps[name] = where.output()
    taps = {name: taps[name] for name in names}
    for value in taps.values():
        none = graph.create("prim::Constant")
        none.output().setType(torch._C.NoneType.get())
        none.insertAfter(value.node())
        # Cloned where it is made, before any later in-place op can change it.
        clone = graph.create("aten::clone", [value, none.output()])
        clone.insertAfter(none)
        graph.registerOutput(clone.output())
    graph.makeMultiOutputIntoTuple()
    try:
        function = torch._C._create_function_from_graph("nnviz_capture", graph)
    except RuntimeError as exc:
        raise NnvizError(f"cannot split this TorchScript model into its layers: {exc}") from exc
    return function, list(taps)


def run_script(
    module: torch.jit.ScriptModule,
    x: torch.Tensor,
    names: Iterable[str],
    edits: dict[str, UnitEdit] | None = None,
) -> dict[str, torch.Tensor]:
    """Copies of the named leaf layers' outputs of a TorchScript module for input ``x``,
    with ``edits`` (by layer) applied to those layers' outputs."""
    names, edits = tuple(names), edits or {}
    if set(names) | set(edits) <= {""}:  # no submodules: the module is its only layer
        out = module(x)
        if "" in edits:
            out = edits[""](out)
        wanted = isinstance(out, torch.Tensor) and names == ("",)
        return {"": out.detach().clone()} if wanted else {}
    edited = tuple(edits)
    cache = _SCRIPT_PLANS.setdefault(module, {})
    key = (names, edited)
    if key not in cache:
        cache[key] = _capture_function(module, names, edited)
    function, order = cache[key]
    extras: list[torch.Tensor] = []
    for name in edited:
        # The graph takes tensors, not code: the masks need the output's rank (and the
        # unit count, to check the units), read once from a run without edits.
        shape = (x.shape[0], *_script_output_shape(module, x, name))
        extras += edits[name].tensors(shape, x)
    outputs = function(module._c, x, *extras)
    return dict(zip(order, outputs[1:], strict=True))


def _script_output_shape(module: torch.jit.ScriptModule, x: torch.Tensor, layer: str) -> Any:
    """A layer's output shape for inputs like ``x``, without the batch dimension."""
    cache = _SCRIPT_PLANS.setdefault(module, {})
    key = ("shape", layer, tuple(x.shape[1:]))
    if key not in cache:
        cache[key] = tuple(run_script(module, x[:1], [layer])[layer].shape[1:])
    return cache[key]


# ---------------------------------------------------------------- a layer's output replaced


class _Replace:
    """An edit that puts ``value`` in place of a layer's whole output: run with it, the
    model's output has gradients with respect to ``value`` (what Grad-CAM weighs)."""

    def __init__(self, value: torch.Tensor) -> None:
        self.value = value

    def __call__(self, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor) or output.shape != self.value.shape:
            raise NnvizError("the layer's output changed shape between two runs")
        return self.value.clone()  # a later in-place op must not change ``value``

    def tensors(self, shape: Any, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mask, fill) for TorchScript's ``where``: every unit comes from ``value``."""
        return torch.ones(tuple(shape), dtype=torch.bool, device=like.device), self.value


def output_with_layer_replaced(
    model: fx.GraphModule | torch.jit.ScriptModule, x: torch.Tensor, layer: str, value: Any
) -> Any:
    """The output of an exported graph module or TorchScript module for input ``x`` (a
    batch of one), with ``layer``'s output replaced by ``value`` wherever it is read.

    Hooks cannot reach a layer of these kinds, so this is how the gradient of the output
    with respect to a layer's output is had: run once to get the layer's output (its
    copy from ``run_exported`` or ``run_script``), make that copy ask for gradients, and
    run again with it in the layer's place.
    """
    edit = _Replace(value)
    if isinstance(model, torch.jit.ScriptModule):
        cache = _SCRIPT_PLANS.setdefault(model, {})
        key = ((), (layer,))  # the plan run_script makes for no captures and one edit
        if key not in cache:
            cache[key] = _capture_function(model, (), (layer,))
        function, _ = cache[key]
        outputs = function(model._c, x, *edit.tensors(value.shape, x))
        return outputs[0]
    _, last = _exported_plan(model)
    if layer not in last:
        raise NnvizError(f"the model has no layer named {layer!r}")
    return _TapInterpreter(model, {}, {last[layer]: edit}).run(x)
