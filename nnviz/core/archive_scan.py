"""The first checks on a model archive: the zip itself, and every pickle inside it.

torch's loaders trust the archives they open (torch 2.13, each path tried).
``torch.export.load`` unpickles pickled weights and constants with
``torch.load(weights_only=False)`` and "opaque" constants with ``pickle.loads``, and
retries the sample inputs with ``weights_only=False`` when ``weights_only=True`` fails.
``torch.jit.load`` unpickles with a C++ unpickler that knows only torch's types, which
stops ``os.system`` but still resolves the archive's own TorchScript classes. Unpickling
a hostile file runs its code, so nothing here unpickles anything.

This module guards the bytes before any loader sees them:

* the file is read into memory once, so the checks and the load see the same bytes, and
  it must be one zip archive of bounded size with a single root folder;
* zip bombs (too many members, too much unpacked data), encrypted members and duplicate
  names (Python's and torch's zip readers may pick different ones) are refused, as are
  members that fail their checksum;
* every pickle, including those inside a nested ``torch.save`` zip, is read opcode by
  opcode and refused unless each global it names is on an allow-list of what torch
  itself writes (tensor rebuilders, dtypes, storages, ``OrderedDict``; for TorchScript
  also ``torch.jit._pickle`` helpers and the archive's ``__torch__`` classes). Opcodes
  torch never writes, globals named in a way the scanner cannot trace, and data after
  the pickle are refused too.

As a second line of defence, ``weights_only_torch_load`` holds ``torch.load`` to
``weights_only=True`` while ``foreign`` loads, in case a pickle slipped past the scan.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import pickletools
import re
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from nnviz.core.errors import ModelFileError
from nnviz.core.files import read_model_bytes

MAX_FILE_BYTES = 1 << 30  # more than any MNIST-sized model needs
MAX_UNPACKED_BYTES = 2 << 30  # guards against zip bombs
MAX_MEMBERS = 20_000
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = b"\x80"
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
)

# What pickles in real torch archives refer to (module and name, as pickle writes them).
_PICKLE_GLOBALS = {
    "collections OrderedDict",
    "torch._utils _rebuild_tensor_v2",
    "torch._utils _rebuild_parameter",
    "torch Size",
    "torch device",
}
_DTYPE_NAMES = {name for name, value in vars(torch).items() if isinstance(value, torch.dtype)}
# TorchScript's C++ unpickler also resolves these and the archive's own __torch__ classes.
_TORCHSCRIPT_GLOBAL = re.compile(
    r"torch\.jit\._pickle (?:build_\w+|restore_type_tag)|__torch__[. ].*"
)
_STRING_OPS = {
    op.name for op in pickletools.opcodes if op.name.endswith(("STRING", "UNICODE", "UNICODE8"))
}
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_STACK_NEUTRAL = {"PROTO", "FRAME"}
_MEMO_GETS = {"GET", "BINGET", "LONG_BINGET"}
_TORCH_LOAD_LOCK = threading.RLock()


def refuse(name: str, why: str) -> ModelFileError:
    return ModelFileError(f"{name}: refused: {why}")


@contextlib.contextmanager
def weights_only_torch_load() -> Iterator[None]:
    """Inside the block, ``torch.load`` refuses a full unpickle (torch falls back to one).

    This patches ``torch.load`` for the whole process while the block runs; nnviz never
    needs a full unpickle, so other threads lose nothing. The lock keeps nested or
    concurrent loads from restoring the wrong function.
    """
    with _TORCH_LOAD_LOCK:
        original = torch.load

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("weights_only") is False:
                raise pickle.UnpicklingError("nnviz never fully unpickles part of a model file")
            kwargs["weights_only"] = True
            return original(*args, **kwargs)

        torch.load = guarded
        try:
            yield
        finally:
            torch.load = original


def _global_allowed(ref: str, torchscript: bool) -> bool:
    module, _, attr = ref.partition(" ")
    if ref in _PICKLE_GLOBALS:
        return True
    if module == "torch" and (attr in _DTYPE_NAMES or re.fullmatch(r"[A-Za-z0-9]*Storage", attr)):
        return True
    return torchscript and bool(_TORCHSCRIPT_GLOBAL.fullmatch(ref))


def scan_pickle(data: bytes, where: str, name: str, *, torchscript: bool = False) -> None:
    """Refuse a pickle that refers to anything outside the allow-list (nothing is unpickled)."""
    memo: dict[int, str | None] = {}
    pushed: list[str | None] = []  # what each non-memo opcode put on the stack, if a string
    stream = io.BytesIO(data)
    try:
        for op, arg, _pos in pickletools.genops(stream):
            ref = None
            if op.name in _MEMO_PUTS:
                memo[len(memo) if op.name == "MEMOIZE" else arg] = pushed[-1] if pushed else None
                continue
            if op.name in _STACK_NEUTRAL:
                continue
            if op.name in ("INST", "OBJ", "EXT1", "EXT2", "EXT4"):
                raise refuse(
                    name, f"its pickle data ({where}) uses {op.name}, which torch never writes"
                )
            if op.name == "GLOBAL":
                ref = arg
            elif op.name == "STACK_GLOBAL":
                if len(pushed) < 2 or pushed[-1] is None or pushed[-2] is None:
                    raise refuse(
                        name, f"its pickle data ({where}) names a function in a disguised way"
                    )
                ref = f"{pushed[-2]} {pushed[-1]}"
            if ref is not None and not _global_allowed(ref, torchscript):
                shown = ref.replace(" ", ".")
                raise refuse(
                    name, f"its pickle data ({where}) calls {shown}, which a model file never needs"
                )
            pushed.append(
                arg if op.name in _STRING_OPS else memo.get(arg) if op.name in _MEMO_GETS else None
            )
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{name} is damaged: {where} is not valid pickle data") from exc
    if stream.tell() != len(data):
        raise refuse(name, f"{where} holds more than one pickle, which torch never writes")


def _check_sizes(infos: list[zipfile.ZipInfo], name: str) -> None:
    """Refuse zip bombs, and duplicate names (Python and torch's reader may pick different ones)."""
    if len(infos) > MAX_MEMBERS or sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
        raise refuse(name, "the archive unpacks to far more data than a model needs")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names) or any(i.flag_bits & 0x1 for i in infos):
        raise refuse(name, "the archive has duplicate or encrypted members")


def scan_member(data: bytes, where: str, name: str, torchscript: bool) -> None:
    """Scan a member that is a pickle, or a torch.save zip holding pickles."""
    if data.startswith(ZIP_MAGIC):
        try:
            inner = zipfile.ZipFile(io.BytesIO(data))
            infos = inner.infolist()
            _check_sizes(infos, name)
            for info in infos:
                if info.filename.endswith(".pkl"):
                    scan_pickle(inner.read(info), f"{where}/{info.filename}", name)
        except _ZIP_ERRORS as exc:
            raise ModelFileError(f"{name} is damaged: {where}: {exc}") from exc
    else:
        scan_pickle(data, where, name, torchscript=torchscript)


def read_members(path: Path) -> tuple[bytes, zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    """The file's bytes, its zip, and its members by name without the archive's root folder."""
    name = path.name
    data = read_model_bytes(path, MAX_FILE_BYTES)
    if not data.startswith(b"PK"):
        if data.startswith(PICKLE_PROTO):
            raise ModelFileError(
                f"{name} is a bare Python pickle (an old torch.save file?), not a model archive; "
                "nnviz never unpickles files"
            )
        raise ModelFileError(f"{name} is not a zip archive, so neither .pt2 nor TorchScript")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
        names = [i.filename for i in infos]
        _check_sizes(infos, name)
        if (bad := archive.testzip()) is not None:
            raise ModelFileError(f"{name} is damaged: member {bad} fails its checksum")
    except _ZIP_ERRORS as exc:
        raise ModelFileError(
            f"{name} is damaged or truncated (not a complete zip archive)"
        ) from exc
    roots = {n.split("/", 1)[0] for n in names}
    if len(roots) != 1 or not all("/" in n for n in names):
        raise ModelFileError(f"{name} is a zip archive but not a .pt2 or TorchScript model")
    return data, archive, {n.split("/", 1)[1]: i for n, i in zip(names, infos, strict=True)}
