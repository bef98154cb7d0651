"""Reading a model file whole, with one clear message for each way that can fail."""

from __future__ import annotations

from pathlib import Path

from nnviz.core.errors import ModelFileError


def read_model_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """All of ``path``'s bytes; missing, unreadable, too large or empty is a ModelFileError."""
    name = path.name
    try:
        if max_bytes is not None:
            size = path.stat().st_size
            if size > max_bytes:
                raise ModelFileError(
                    f"{name} is too large for a model nnviz can show ({size} bytes)"
                )
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ModelFileError(f"{name}: no such file ({path})") from exc
    except OSError as exc:
        raise ModelFileError(f"cannot read {name}: {exc.strerror or exc}") from exc
    if not data:
        raise ModelFileError(f"{name} is empty (0 bytes)")
    return data
