"""The ``.nnviz`` model file: a safetensors file with the weights and a JSON description.

Layout:

* tensors: the model's state dict under its own keys (``fc1.weight``), plus optional
  extra tensors whose names contain a ``/`` (``history/step_000100/fc1.weight``).
  State-dict keys of nnviz models never contain ``/``, so the slash is what keeps
  the two apart when the file is read back.
* safetensors metadata key ``"nnviz"``: JSON with the format version, the
  architecture spec, class names, the training config, the metric history, the
  creation time and the nnviz version.

safetensors stores raw tensor bytes and a JSON header only, so reading a ``.nnviz``
file never runs code. JSON cannot hold NaN or infinity: every non-finite float in
the config or history is stored as ``null`` and comes back as ``None``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import struct
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import nnviz
from nnviz.core.errors import ModelFileError, SpecError
from nnviz.core.files import read_model_bytes
from nnviz.core.models import ArchSpec, build_model

FORMAT_NAME = "nnviz"
FORMAT_VERSION = 1
METADATA_KEY = "nnviz"
EXTRA_SEPARATOR = "/"
# A safetensors header is JSON; anything bigger than this is not one of ours.
_MAX_HEADER_BYTES = 100 * 1024 * 1024


@dataclass
class Checkpoint:
    """Everything a ``.nnviz`` file holds."""

    spec: ArchSpec
    state_dict: dict[str, torch.Tensor]
    class_names: list[str] = field(default_factory=lambda: [str(i) for i in range(10)])
    train_config: dict[str, Any] = field(default_factory=dict)
    # Metric lists, e.g. {"step": [...], "loss": [...], "val_loss": [...]}; None where NaN/inf.
    history: dict[str, Any] = field(default_factory=dict)
    # Tensors outside the state dict, under their full names (each contains a "/").
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


def _jsonable(value: Any, where: str) -> Any:
    """``value`` as strict JSON data: non-finite floats become None, numpy/torch scalars plain."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars, tensors
        return _jsonable(value.tolist(), where)
    raise TypeError(f"{where} holds a {type(value).__name__}, which cannot be stored as JSON")


def _tensors_for_saving(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for key, tensor in checkpoint.state_dict.items():
        if EXTRA_SEPARATOR in key:
            raise ValueError(f"state dict key {key!r} contains {EXTRA_SEPARATOR!r}")
        tensors[key] = tensor
    for key, tensor in checkpoint.extra.items():
        if EXTRA_SEPARATOR not in key:
            raise ValueError(
                f"extra tensor name {key!r} needs a prefix such as 'history/' to keep it "
                "apart from the weights"
            )
        tensors[key] = tensor
    for key, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{key!r} is a {type(tensor).__name__}, not a tensor")
    # Owned, contiguous CPU copies: safetensors refuses views and shared storage, and the
    # caller's tensors may live on the GPU or be trained on while we write.
    return {k: t.detach().to("cpu", copy=True).contiguous() for k, t in tensors.items()}


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically: a failed save leaves any old file as it was."""
    path = Path(path)
    try:
        meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "spec": checkpoint.spec.to_dict(),
            "class_names": [str(c) for c in checkpoint.class_names],
            "train_config": _jsonable(checkpoint.train_config, "train_config"),
            "history": _jsonable(checkpoint.history, "history"),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "nnviz_version": nnviz.__version__,
        }
        metadata = {METADATA_KEY: json.dumps(meta, allow_nan=False)}
        payload = st_save(_tensors_for_saving(checkpoint), metadata=metadata)
    except (TypeError, ValueError, SafetensorError) as exc:
        raise ModelFileError(f"could not save {path.name}: {exc}") from exc

    write_atomically(path, payload)


def write_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that a reader (or a crash) sees the old file or
    the whole new one, never a part; a failure is a ModelFileError naming the file."""
    # Write next to the target so os.replace is a rename on one file system, which is atomic.
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain save would.
        os.chmod(tmp_name, _file_mode(path))
        os.replace(tmp_name, path)
        tmp_name = None
        _sync_directory(path.parent)
    except OSError as exc:
        raise ModelFileError(f"could not save {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def _file_mode(path: Path) -> int:
    """The existing file's permissions, or the default for a new file (0666 less umask)."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _sync_directory(folder: Path) -> None:
    """Make the rename itself durable (POSIX); best effort, as some systems cannot."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_header(data: bytes, name: str) -> dict[str, Any]:
    """The JSON header of a safetensors file, with clear errors for files that are not one."""
    if len(data) < 8:
        raise ModelFileError(f"{name} is truncated or not an nnviz model file ({len(data)} bytes)")
    (length,) = struct.unpack("<Q", data[:8])
    if length > _MAX_HEADER_BYTES or data[8:9] != b"{":
        raise ModelFileError(f"{name} is not an nnviz model file (not a safetensors file)")
    if 8 + length > len(data):
        raise ModelFileError(f"{name} is truncated: the file ends inside its header")
    try:
        header = json.loads(data[8 : 8 + length])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{name} is damaged or not a safetensors file: {exc}") from exc
    if not isinstance(header, dict):
        raise ModelFileError(f"{name} is not an nnviz model file (not a safetensors file)")
    return header


def _check_state_dict(spec: ArchSpec, state: dict[str, torch.Tensor], name: str) -> None:
    """Raise unless ``state`` fits the model ``spec`` builds, naming what does not."""
    expected = build_model(spec).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected)}")
    for key in sorted(set(expected) & set(state)):
        want, got = expected[key], state[key]
        if tuple(want.shape) != tuple(got.shape):
            problems.append(
                f"{key} has shape {tuple(got.shape)}, the spec needs {tuple(want.shape)}"
            )
        elif want.dtype != got.dtype:
            problems.append(f"{key} is {got.dtype}, the spec needs {want.dtype}")
    if problems:
        raise ModelFileError(
            f"{name}: the weights do not match the architecture: {'; '.join(problems)}"
        )


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a ``.nnviz`` file, checking that its weights fit its architecture."""
    path = Path(path)
    name = path.name
    data = read_model_bytes(path)

    header = _read_header(data, name)
    raw_meta = (header.get("__metadata__") or {}).get(METADATA_KEY)
    if raw_meta is None:
        raise ModelFileError(f"{name} is a safetensors file but not an nnviz model")
    try:
        meta = json.loads(raw_meta)
    except ValueError as exc:
        raise ModelFileError(f"{name}: its nnviz description is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{name} is a safetensors file but not an nnviz model")
    version = meta.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{name} was written by a newer nnviz (format version {version}); "
            f"this nnviz reads version {FORMAT_VERSION}"
        )
    try:
        spec = ArchSpec.from_dict(meta.get("spec"))
    except SpecError as exc:
        raise ModelFileError(f"{name}: invalid architecture spec: {exc}") from exc

    try:
        tensors = st_load(data)
    except SafetensorError as exc:
        raise ModelFileError(f"{name} is truncated or damaged: {exc}") from exc
    state = {k: v for k, v in tensors.items() if EXTRA_SEPARATOR not in k}
    extra = {k: v for k, v in tensors.items() if EXTRA_SEPARATOR in k}
    _check_state_dict(spec, state, name)

    class_names = meta.get("class_names") or [str(i) for i in range(spec.num_classes)]
    if not isinstance(class_names, list) or len(class_names) != spec.num_classes:
        raise ModelFileError(f"{name}: needs a list of {spec.num_classes} class names")
    train_config, history = meta.get("train_config") or {}, meta.get("history") or {}
    if not isinstance(train_config, dict) or not isinstance(history, dict):
        raise ModelFileError(f"{name}: its training config and history must be JSON objects")
    return Checkpoint(
        spec=spec,
        state_dict=state,
        class_names=[str(c) for c in class_names],
        train_config=train_config,
        history=history,
        extra=extra,
    )
