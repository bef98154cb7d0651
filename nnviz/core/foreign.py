"""Opening models from other projects safely: torch.export ``.pt2`` and TorchScript archives.

Both are zip archives, and torch's own loaders trust them (torch 2.13, each path tried):

* ``torch.export.load`` unpickles pickled weights and constants with
  ``torch.load(weights_only=False)`` and "opaque" constants with ``pickle.loads``; it
  loads the sample inputs with ``weights_only=True`` but retries with
  ``weights_only=False`` when that fails; it parses symbolic shapes with
  ``sympy.sympify``, which is ``eval``; ``ep.module()`` ``exec``s the archive's
  ``guards_code`` and generates Python source from names in its JSON; and AOTInductor
  members are native libraries. Each of these runs code from a hostile file.
* ``torch.jit.load`` unpickles with a C++ unpickler that knows only torch's types (it
  rejects ``os.system``), but a TorchScript class's ``__setstate__`` runs while loading,
  and TorchScript can call ``aten::save`` (writes files) or ``aten::from_file``.

So nnviz never calls ``torch.export.load``. ``archive_scan`` reads the file into memory
once (the checks and the load see the same bytes) and checks the zip and every pickle's
opcodes against an allow-list. This module then refuses what a plain model never needs,
has torch read only raw tensors, hands torch's deserializer a program whose strings have
been checked, and checks the operators of the result before anything runs.
``torch.load`` is held to ``weights_only=True`` meanwhile, as a second line of defence.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import operator
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nnviz.core.archive_scan import (
    PICKLE_PROTO,
    ZIP_MAGIC,
    read_members,
    refuse,
    scan_member,
    scan_pickle,
    weights_only_torch_load,
)
from nnviz.core.errors import ModelFileError

_TORCHSCRIPT_STORAGE = re.compile(r"(?:data|constants)/\d+|\.data/.*")
_TORCHSCRIPT_OP_NAMESPACES = {"aten", "prim", "prims"}
_FORBIDDEN_OPS = {"aten::save", "aten::from_file", "prim::PythonOp", "prim::IgnoredPythonOp"}

# Strings in an exported program end up in generated Python source, so they may not
# hold quotes, spaces, brackets or newlines: without them no code can be formed. Names
# become variables and parameters there, so they must be identifiers.
_PLAIN = re.compile(r"[A-Za-z0-9_.:+\-<>,]*", re.ASCII)
_IDENTIFIER = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_]*)?", re.ASCII)  # HOP arguments have ""
_NAME_KEYS = {"name", "as_name", "forward_arg_names", "user_input_name"}
_HOPS = "cond|while_loop|map_impl|scan|wrap_with_set_grad_enabled|wrap_with_autocast"
_BUILTINS = "getitem|add|mul|sub|truediv|floordiv|mod|pow|neg|abs|eq|ne|lt|le|gt|ge|and_|or_|not_"
_TARGET = re.compile(
    r"torch\.ops\.(?:aten|prims)\.(?!__)\w+\.(?!__)\w+"
    rf"|torch\.ops\.higher_order\.(?:{_HOPS})|_operator\.(?:{_BUILTINS})"
    r"|math\.(?:ceil|floor|trunc)|torch\.sym_(?:int|float|max|min|not|ite)",
    re.ASCII,
)
# Symbolic shapes are parsed by sympify (eval): only these names, symbols like s0, numbers.
_SYM_WORD = re.compile(
    r"Symbol|Max|Min|Mod|Abs|Eq|Ne|Lt|Le|Gt|Ge|And|Or|Not|floor|ceiling|oo|True|False"
    r"|FloorDiv|CeilDiv|CleanDiv|ModularIndexing|PythonMod|Where|IntTrueDiv|FloatTrueDiv"
    r"|ToFloat|TruncToInt|TruncToFloat|RoundToInt|FloorToInt|CeilToInt|Identity"
    r"|IsNonOverlappingAndDenseIndicator|integer|positive|negative|nonnegative|nonpositive"
    r"|real|finite|nonzero|zero|even|odd|(?:s|u|zf|zuf|ps|tmp|idx)\d{1,9}",
    re.ASCII,
)
_SYM_TOKEN = re.compile(
    r" *(?:(?P<num>\d{1,20}(?:\.\d{1,20})?)|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<str>'(?:s|u|zf|zuf)\d{1,9}')|(?P<op>\*\*|//|==|!=|<=|>=|[-+*/%(),=<>&|~]))",
    re.ASCII,
)
_DROPPED_KEYS = {"stack_trace", "custom"}  # free text nnviz has no use for
# The same calls as objects, to check the program torch builds.
_SAFE_CALLS = (
    *(getattr(operator, n) for n in _BUILTINS.split("|")),
    *(math.ceil, math.floor, math.trunc),
    *(getattr(torch, f"sym_{n}") for n in ("int", "float", "max", "min", "not", "ite")),
)


@dataclass
class ForeignModel:
    """A model loaded from a ``.pt2`` or TorchScript archive, in eval mode."""

    module: torch.nn.Module
    kind: str  # "export" | "torchscript"
    program: Any  # torch.export.ExportedProgram for "export", else None
    input_shape: tuple[int, ...]  # one sample, without the batch dimension


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch's warnings (TorchScript deprecation and the like) while loading."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def load_foreign(path: str | Path) -> ForeignModel:
    """Load a torch.export ``.pt2`` or TorchScript archive, deciding which by its contents."""
    path = Path(path)
    name = path.name
    data, archive, members = read_members(path)
    if "archive_format" in members:
        return _load_export(data, archive, members, name)
    if "data.pkl" in members and any(m.startswith("code/") for m in members):
        return _load_torchscript(data, archive, members, name)
    if "data.pkl" in members:
        raise ModelFileError(
            f"{name} is a torch.save() file (weights without the model's code), which nnviz "
            "cannot rebuild; save the model with torch.export.save or torch.jit.save"
        )
    if "serialized_exported_program.json" in members:
        raise ModelFileError(f"{name} is an old torch.export archive; re-save it with torch 2.7+")
    raise ModelFileError(f"{name} is a zip archive but not a .pt2 or TorchScript model")


def _load_torchscript(
    data: bytes, archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], name: str
) -> ForeignModel:
    for member, info in members.items():
        if _TORCHSCRIPT_STORAGE.fullmatch(member):
            continue  # raw tensor bytes, never unpickled
        content = archive.read(info)
        if member.startswith("code/") and b"__setstate__" in content:
            raise refuse(name, "it defines __setstate__, TorchScript code that runs while loading")
        if member.endswith("pkl") or content.startswith(PICKLE_PROTO):
            scan_pickle(content, member, name, torchscript=True)
    try:
        with _quiet():
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as exc:
        raise ModelFileError(f"{name}: TorchScript cannot load it: {_first_line(exc)}") from exc
    for sub in module.modules():
        for method in sub._c._method_names():
            for kind in _node_kinds(sub._c._get_method(method).inlined_graph):
                if kind in _FORBIDDEN_OPS or kind.split("::")[0] not in _TORCHSCRIPT_OP_NAMESPACES:
                    raise refuse(name, f"its code uses {kind}, which nnviz does not run")
    module.eval()
    return ForeignModel(module=module, kind="torchscript", program=None, input_shape=(1, 28, 28))


def _node_kinds(block: Any) -> Iterator[str]:
    for node in block.nodes():
        yield node.kind()
        for inner in node.blocks():
            yield from _node_kinds(inner)


def _sym_expr_ok(expr: str) -> bool:
    expr, pos, powers = expr.strip(" "), 0, 0
    if len(expr) > 1000:
        return False
    while pos < len(expr):
        match = _SYM_TOKEN.match(expr, pos)
        if match is None:
            return False
        word = match["name"]
        if word is not None and not _SYM_WORD.fullmatch(word):
            return False
        powers += match["op"] == "**"
        pos = match.end()
    return powers <= 1  # a tower of powers would hang sympy


def _plain_json_ok(text: str) -> bool:
    """A pytree spec (JSON inside a string): every string in it must be plain."""
    try:
        value = json.loads(text)
    except ValueError:
        return bool(_PLAIN.fullmatch(text))
    if isinstance(value, str):
        return _plain_json_ok(value) if value[:1] in "[{" else bool(_PLAIN.fullmatch(value))
    if isinstance(value, dict):
        return all(_plain_json_ok(json.dumps(v)) and _PLAIN.fullmatch(k) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_json_ok(json.dumps(v)) for v in value)
    return True


def _sanitize(value: Any, key: str, name: str) -> Any:
    """The program JSON with free text dropped; refuse any string that could become code."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not _PLAIN.fullmatch(k):
                raise refuse(name, f"the program has an odd key {str(k)[:60]!r}")
            if k in _DROPPED_KEYS:
                continue
            if k == "guards_code":
                out[k] = []  # Python source that ep.module() would exec
            elif k == "metadata" and isinstance(v, dict):
                # Node annotations (nn_module_stack, ...) are data: keep them when plain text.
                out[k] = {
                    mk: mv
                    for mk, mv in v.items()
                    if mk not in _DROPPED_KEYS
                    and isinstance(mv, str)
                    and _PLAIN.fullmatch(mk)
                    and all(" " <= ch <= "~" and ch not in "\\'\"" for ch in mv)
                }
            elif k in ("in_spec", "out_spec") and isinstance(v, str):
                if not _plain_json_ok(v):
                    raise refuse(name, f"the program's {k} holds odd text")
                out[k] = v
            else:
                out[k] = _sanitize(v, k, name)
        return out
    if isinstance(value, list):
        return [_sanitize(v, key, name) for v in value]
    if isinstance(value, str):
        if key == "expr_str":
            ok = _sym_expr_ok(value)
        elif key in ("target", "as_operator"):
            ok = bool(_TARGET.fullmatch(value))
        elif key in _NAME_KEYS:
            ok = bool(_IDENTIFIER.fullmatch(value))
        else:
            ok = bool(_PLAIN.fullmatch(value))
        if not ok:
            raise refuse(name, f"the program contains {key} {value[:80]!r}, which is not allowed")
    return value


def _check_program_ops(program: Any, name: str) -> None:
    """Refuse any call that is not a plain aten/prims operator or shape arithmetic."""
    for graph_module in program.graph_module.modules():
        if not isinstance(graph_module, torch.fx.GraphModule):
            continue
        for node in graph_module.graph.nodes:
            if node.op in ("placeholder", "output", "get_attr"):
                continue
            target = node.target
            if node.op == "call_function" and (
                (
                    isinstance(target, torch._ops.OpOverload)
                    and target.namespace in ("aten", "prims")
                    and target._schema.name not in _FORBIDDEN_OPS
                )
                or (
                    isinstance(target, torch._ops.HigherOrderOperator)
                    and re.fullmatch(_HOPS, target.name())
                )
                or any(target is call for call in _SAFE_CALLS)
            ):
                continue
            raise refuse(name, f"the program calls {target}, which nnviz does not run")


def _load_export(
    data: bytes, archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], name: str
) -> ForeignModel:
    try:
        from torch._export.serde import schema
        from torch._export.serde.serialize import ExportedProgramDeserializer, _dict_to_dataclass
        from torch.export.pt2_archive import _package as pt2
        from torch.export.pt2_archive import constants as layout
    except ImportError as exc:
        raise ModelFileError(
            f"{name}: torch {torch.__version__} cannot open .pt2 archives safely; use 2.7+"
        ) from exc

    def read(member: str) -> bytes:
        if member not in members:
            raise ModelFileError(f"{name} is an incomplete .pt2 archive: it lacks {member}")
        return archive.read(members[member])

    if read(layout.ARCHIVE_FORMAT_PATH) != layout.ARCHIVE_FORMAT_VALUE.encode():
        raise ModelFileError(f"{name} is a zip archive but not a .pt2 or TorchScript model")
    version = read(layout.ARCHIVE_VERSION_PATH).decode("ascii", "replace")
    if version != layout.ARCHIVE_VERSION_VALUE:
        raise ModelFileError(f"{name} uses .pt2 archive version {version}, which nnviz cannot read")
    native = (layout.AOTINDUCTOR_DIR, layout.EXECUTORCH_DIR, layout.MTIA_DIR)
    if any(m.startswith(native) for m in members):
        raise refuse(name, "it holds compiled native code (AOTInductor), which nnviz never runs")
    prefix = layout.MODELS_DIR
    models = [m[len(prefix) : -5] for m in members if m.startswith(prefix) and m.endswith(".json")]
    if len(models) != 1 and "model" not in models:
        raise ModelFileError(f"{name} holds {len(models)} programs; nnviz opens one model per file")
    model = "model" if "model" in models else models[0]
    if any(
        m == f"{d}{model}.pt" for m in members for d in (layout.WEIGHTS_DIR, layout.CONSTANTS_DIR)
    ):
        raise ModelFileError(f"{name} is an old torch.export archive; re-save it with torch 2.7+")

    # torch unpickles any payload marked use_pickle (and custom or opaque objects) unsafely:
    # allow only raw tensor bytes, which it reads without pickle.
    for config_name, prefix in (
        (layout.WEIGHTS_CONFIG_FILENAME_FORMAT.format(model), ""),
        (
            layout.CONSTANTS_CONFIG_FILENAME_FORMAT.format(model),
            layout.TENSOR_CONSTANT_FILENAME_PREFIX,
        ),
    ):
        try:
            entries = json.loads(read(config_name))["config"].values()
            plain = all(
                not e.get("use_pickle")
                and str(e["path_name"]).startswith(prefix)
                and _PLAIN.fullmatch(str(e["path_name"]))
                for e in entries
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelFileError(f"{name} is damaged: {config_name} is unreadable") from exc
        if not plain:
            raise refuse(
                name, "it stores Python objects as pickles; nnviz loads plain tensors only"
            )
    for member, info in members.items():
        if member.startswith((layout.WEIGHTS_DIR, layout.CONSTANTS_DIR)) and not member.endswith(
            ".json"
        ):
            continue  # raw tensor bytes
        content = archive.read(info)
        if content.startswith((ZIP_MAGIC, PICKLE_PROTO)) or member.endswith((".pkl", ".pt")):
            scan_member(content, member, name, torchscript=False)

    try:
        program_json = json.loads(read(layout.MODELS_FILENAME_FORMAT.format(model)))
        sanitized = _sanitize(program_json, "", name)
        sample = read(layout.SAMPLE_INPUTS_FILENAME_FORMAT.format(model))
        with _quiet(), weights_only_torch_load():
            example = torch.load(io.BytesIO(sample), weights_only=True) if sample else None
            if example is not None and not (
                isinstance(example, tuple)
                and len(example) == 2
                and example[1] == {}
                and isinstance(example[0], tuple)
                and all(isinstance(t, torch.Tensor) for t in example[0])
            ):
                raise ModelFileError(f"{name}: nnviz needs a model that takes one image batch")
            reader = pt2.PT2ArchiveReader(io.BytesIO(data))
            state_dict = pt2._load_state_dict(reader, model)
            constants = pt2._load_constants(reader, model)
            program = ExportedProgramDeserializer().deserialize(
                _dict_to_dataclass(schema.ExportedProgram, sanitized),
                state_dict,
                constants,
                example,
            )
            _check_program_ops(program, name)
            input_shape = _export_input_shape(program, example, name)
            module = program.module()
    except ModelFileError:
        raise
    except (Exception, RecursionError) as exc:
        raise ModelFileError(f"{name}: cannot read this .pt2 archive: {_first_line(exc)}") from exc
    _to_eval(module)
    return ForeignModel(module=module, kind="export", program=program, input_shape=input_shape)


def _export_input_shape(program: Any, example: Any, name: str) -> tuple[int, ...]:
    """The shape of one input sample, from the program's input placeholder or its example."""
    inputs = program.graph_signature.user_inputs
    if len(inputs) != 1:
        raise ModelFileError(f"{name} takes {len(inputs)} inputs; nnviz needs one image batch")
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == inputs[0])
    value = node.meta.get("val")
    if isinstance(value, torch.Tensor) and value.dim() >= 2:
        dims = tuple(value.shape[1:])
        if all(isinstance(d, int) for d in dims):
            return dims
    if example is not None and len(example[0]) == 1 and example[0][0].dim() >= 2:
        return tuple(example[0][0].shape[1:])
    raise ModelFileError(f"{name}: cannot tell the shape of the images the model takes")


def _to_eval(module: torch.nn.Module) -> None:
    """Put an exported module in eval mode, which its ``eval()`` refuses to do.

    The export bakes the mode into the graph as the ``training``/``train`` argument of
    batch norm and dropout, so flip those arguments.
    """
    for graph_module in module.modules():
        if isinstance(graph_module, torch.fx.GraphModule):
            changed = False
            for node in graph_module.graph.nodes:
                if node.op != "call_function" or not isinstance(node.target, torch._ops.OpOverload):
                    continue
                for i, arg in enumerate(node.target._schema.arguments):
                    if arg.name not in ("training", "train") or str(arg.type) != "bool":
                        continue
                    if i < len(node.args) and node.args[i] is True:
                        node.args = (*node.args[:i], False, *node.args[i + 1 :])
                        changed = True
                    elif node.kwargs.get(arg.name) is True:
                        node.kwargs = {**node.kwargs, arg.name: False}
                        changed = True
            if changed:
                graph_module.recompile()
        graph_module.training = False
