"""One way to open any model nnviz can show: a preset, a spec, a ``.nnviz`` file or a foreign one.

The kind of a file is decided by its first bytes, not its name: a zip archive is a
``.pt2`` or TorchScript model (``foreign`` tells which by its members), a safetensors
header is an ``.nnviz`` checkpoint.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nnviz.core.checkpoint import load_checkpoint
from nnviz.core.errors import ModelFileError
from nnviz.core.foreign import load_foreign
from nnviz.core.models import PRESETS, ArchSpec, build_model, get_spec

KINDS = ("preset", "spec", "nnviz", "export", "torchscript")
_OPENABLE = "expected .nnviz, .pt2 (torch.export) or TorchScript"


@dataclass
class LoadedModel:
    """A model ready for inference (eval mode), with what nnviz knows about it."""

    module: torch.nn.Module
    kind: str  # one of KINDS
    path: Path | None
    spec: ArchSpec | None  # None for foreign models
    program: Any = None  # the torch.export.ExportedProgram of a .pt2, to map nodes to modules
    input_shape: tuple[int, ...] = (1, 28, 28)  # one sample, without the batch dimension
    class_names: list[str] = field(default_factory=lambda: [str(i) for i in range(10)])
    train_config: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        """The file name, or the spec's name for a model built from a preset or spec."""
        if self.path is not None and self.kind != "spec":
            return self.path.name
        if self.spec is not None:
            return self.spec.name
        return "model"


def _is_safetensors(head: bytes) -> bool:
    return len(head) >= 9 and struct.unpack("<Q", head[:8])[0] > 0 and head[8:9] == b"{"


def _probe(module: torch.nn.Module, input_shape: tuple[int, ...], name: str) -> int:
    """Run a foreign model on batches of 1 and 2 blank images; return its number of classes."""
    classes = None
    for batch in (1, 2):
        try:
            with torch.inference_mode():
                out = module(torch.zeros((batch, *input_shape)))
        except Exception as exc:
            hint = " (was it exported with a fixed batch size?)" if batch > 1 else ""
            raise ModelFileError(
                f"{name}: the model fails on a batch of {batch} inputs of shape "
                f"{tuple(input_shape)}{hint}: {str(exc).strip().splitlines()[0][:200]}"
            ) from exc
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != batch:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelFileError(
                f"{name}: the model must return one row of class scores per input, got {got}"
            )
        classes = int(out.shape[1])
    if classes is None or classes < 2:
        raise ModelFileError(f"{name}: the model must score at least 2 classes")
    return classes


def load_model(source: str | Path, *, seed: int | None = None) -> LoadedModel:
    """Open a preset name, a spec ``.json``, a ``.nnviz`` checkpoint, a ``.pt2`` or TorchScript.

    Presets and specs get fresh weights (``seed`` fixes them); files keep theirs.
    """
    key = str(source)
    if key in PRESETS and not Path(key).is_file():
        spec = get_spec(key)
        return _fresh(spec, "preset", None, seed)
    path = Path(source)
    if path.suffix.lower() == ".json":
        return _fresh(get_spec(path), "spec", path, seed)
    if not path.exists():
        if path.suffix or "/" in key or "\\" in key:
            raise ModelFileError(f"{path.name}: no such file ({path})")
        return _fresh(get_spec(key), "preset", None, seed)  # raises, naming the presets
    if not path.is_file():
        raise ModelFileError(f"{path.name} is a folder, not a model file")
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise ModelFileError(f"cannot read {path.name}: {exc.strerror or exc}") from exc

    if head.startswith(b"PK"):
        foreign = load_foreign(path)
        classes = _probe(foreign.module, foreign.input_shape, path.name)
        return LoadedModel(
            module=foreign.module,
            kind=foreign.kind,
            path=path,
            spec=None,
            program=foreign.program,
            input_shape=foreign.input_shape,
            class_names=[str(i) for i in range(classes)],
        )
    if _is_safetensors(head) or path.suffix.lower() == ".nnviz":
        checkpoint = load_checkpoint(path)
        module = build_model(checkpoint.spec)
        module.load_state_dict(checkpoint.state_dict)
        module.eval()
        return LoadedModel(
            module=module,
            kind="nnviz",
            path=path,
            spec=checkpoint.spec,
            input_shape=tuple(checkpoint.spec.input_shape),
            class_names=list(checkpoint.class_names),
            train_config=checkpoint.train_config,
            history=checkpoint.history,
            extra=checkpoint.extra,
        )
    if not head:
        raise ModelFileError(f"{path.name} is empty (0 bytes)")
    if head.startswith(b"\x80"):
        raise ModelFileError(
            f"{path.name} is a bare Python pickle (an old torch.save file?), not a model file "
            f"nnviz can open ({_OPENABLE}); nnviz never unpickles files"
        )
    raise ModelFileError(f"{path.name} is not a model file nnviz can open: {_OPENABLE}")


def _fresh(spec: ArchSpec, kind: str, path: Path | None, seed: int | None) -> LoadedModel:
    module = build_model(spec, seed=seed)
    module.eval()
    return LoadedModel(
        module=module,
        kind=kind,
        path=path,
        spec=spec,
        input_shape=tuple(spec.input_shape),
        class_names=[str(i) for i in range(spec.num_classes)],
    )
