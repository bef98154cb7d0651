"""MNIST-format data: the IDX reader, the sources (bundled, downloaded, a folder) and splits.

Images stay uint8 (N, H, W) until ``to_tensor`` scales them to [0, 1]; that one function is
the input scaling every model uses.
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import os
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from nnviz.core import download as _download
from nnviz.core.errors import DataError

MNIST_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
# fmt: off
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# fmt: on
SOURCES = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")

Progress = Callable[[int, "int | None"], None]

# File name prefixes of the standard IDX files, per split.
_PREFIXES = {"train": ("train-images", "train-labels"), "test": ("t10k-images", "t10k-labels")}
_STANDARD_NAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_OTHER_IDX_TYPES = {0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double"}


def _display_name(source: Any) -> str:
    """The file name used in messages: users know their files by name, not by object."""
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    name = getattr(source, "name", None)
    return Path(name).name if isinstance(name, str) else "<data>"


def _read_bytes(source: Any, name: str) -> bytes:
    if hasattr(source, "read") and not hasattr(source, "open"):  # an open binary file
        return source.read()
    opener = source.open if hasattr(source, "open") else Path(source).open
    try:
        with opener("rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DataError(f"{name}: file not found ({source})") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot read file: {exc.strerror or exc}") from exc


def read_idx(path: str | os.PathLike | BinaryIO | Any) -> np.ndarray:
    """Read an MNIST-style IDX file (gzipped or raw) into a read-only uint8 array.

    ``path`` may be a path, an open binary file or an ``importlib.resources`` Traversable.
    Only unsigned-byte label files (1-D) and image files (3-D) are accepted.
    """
    name = _display_name(path)
    data = _read_bytes(path, name)
    # Detect gzip by content: files get renamed, and a ".gz" may hold raw bytes or vice versa.
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{name}: corrupt gzip data ({exc})") from exc
    if len(data) < 4:
        raise DataError(f"{name}: not an IDX file (only {len(data)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise DataError(f"{name}: not an IDX file (bad magic number 0x{data[:4].hex()})")
    if dtype_code != 0x08:
        kind = _OTHER_IDX_TYPES.get(dtype_code, f"unknown type 0x{dtype_code:02x}")
        raise DataError(f"{name}: holds {kind} values; only unsigned bytes are supported")
    if ndim not in (1, 3):
        raise DataError(
            f"{name}: has {ndim} dimensions; expected 1 (labels, magic 0x00000801) "
            "or 3 (images, magic 0x00000803)"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{name}: truncated: the header alone needs {header_len} bytes")
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    expected = int(np.prod(shape, dtype=np.int64))
    held = len(data) - header_len
    what, kind = (f"{shape[0]} labels", "label") if ndim == 1 else (f"{shape[0]} images", "pixel")
    if ndim == 3:
        what += f" of {shape[1]}x{shape[2]}"
    if held < expected:
        raise DataError(
            f"{name}: truncated: header says {what} ({expected} bytes) "
            f"but the file holds {held} bytes of {kind} data"
        )
    if held > expected:
        raise DataError(
            f"{name}: {held - expected} unexpected bytes after the {what} the header describes"
        )
    # frombuffer over immutable bytes is read-only, which suits the shared cache below.
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)


@functools.lru_cache(maxsize=8)
def _read_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    # Keyed on mtime and size too, so a file replaced on disk is read again.
    return read_idx(path)


def release_file_cache() -> None:
    """Forget decoded files. Datasets own copies of what they use, so a long-running app
    can drop the cache (about 55 MB for MNIST) once its splits are built."""
    _read_cached.cache_clear()


def _read_file(path: Path) -> np.ndarray:
    """read_idx with a per-process cache; the result is shared, so it must stay read-only."""
    if not path.is_file():
        raise DataError(f"{path.name}: file not found ({path})")
    st = path.stat()
    return _read_cached(str(path), st.st_mtime_ns, st.st_size)


@dataclass(frozen=True)
class Dataset:
    """Images (uint8, N x H x W) with their integer labels and class names."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    name: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(
        self, n: int | None = None, indices: np.ndarray | None = None, name: str | None = None
    ) -> Dataset:
        """A copy holding the first ``n`` samples, or those at ``indices``."""
        if n is not None and indices is not None:
            raise ValueError("give n or indices, not both")
        if indices is not None:
            idx = np.asarray(indices, dtype=np.int64)
            images, labels = self.images[idx], self.labels[idx]  # fancy indexing copies
        else:
            if n is not None and n < 0:
                raise ValueError(f"n must be >= 0, not {n}")
            stop = len(self) if n is None else min(n, len(self))
            images, labels = self.images[:stop].copy(), self.labels[:stop].copy()
        return Dataset(images, labels, self.classes, self.name if name is None else name)


def _build(
    images: np.ndarray,
    labels: np.ndarray,
    classes: tuple[str, ...],
    name: str,
    files: str,
    indices: np.ndarray | None = None,
) -> Dataset:
    """Check images against labels and wrap (the samples at ``indices`` of) them.

    ``files`` names the files for messages. The arrays are copied, so cached read-only
    arrays stay shared and callers get arrays they own.
    """
    if images.ndim != 3:
        raise DataError(f"{files}: the images file holds labels (1-D), not images")
    if labels.ndim != 1:
        raise DataError(f"{files}: the labels file holds images (3-D), not labels")
    if len(images) != len(labels):
        raise DataError(f"{files}: {len(images)} images but {len(labels)} labels")
    if len(labels) and int(labels.max()) >= len(classes):
        raise DataError(
            f"{files}: label {int(labels.max())} is out of range for {len(classes)} classes"
        )
    if indices is None:
        return Dataset(images.copy(), labels.astype(np.int64), classes, name)
    return Dataset(images[indices], labels[indices].astype(np.int64), classes, name)


def _find_folder_files(folder: Path, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) files of a split in a folder, or None when neither is there."""
    found = []
    for prefix in _PREFIXES[split]:
        matches = sorted(
            p
            for p in folder.iterdir()
            if p.name.lower().startswith(prefix) and not p.name.endswith(".part")
        )
        # Some archives unpack "train-images-idx3-ubyte/train-images-idx3-ubyte".
        for i, p in enumerate(matches):
            if p.is_dir():
                inner = sorted(q for q in p.iterdir() if q.name.lower().startswith(prefix))
                matches[i] = inner[0] if inner else p
        files = [p for p in matches if p.is_file()]
        found.append(files[0] if files else None)
    images, labels = found
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        have = (images or labels).name
        missing = _PREFIXES[split][0] if images is None else _PREFIXES[split][1]
        raise DataError(f"{folder}: found {have} but no {missing}* file beside it")
    return images, labels


def _folder(source: str | os.PathLike) -> Path:
    folder = Path(source).expanduser()
    if not folder.is_dir():
        known = ", ".join(SOURCES)
        raise DataError(f"data source {str(source)!r} is neither {known} nor an existing folder")
    return folder


def _folder_classes(max_label: int) -> tuple[str, ...]:
    return MNIST_CLASSES if max_label <= 9 else tuple(str(i) for i in range(max_label + 1))


def _load_arrays(
    source: str,
    split: str,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], str, str] | None:
    """(images, labels, classes, display prefix, file names) of one split; None if absent."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if source == "mnist":
        root = importlib.resources.files("nnviz.resources") / "mnist"
        names = _STANDARD_NAMES[split]
        paths = [root / n for n in names]
        if all(isinstance(p, Path) for p in paths):
            arrays = [_read_file(p) for p in paths]
        else:  # installed in a zip: no file system paths to cache on
            arrays = [read_idx(p) for p in paths]
        return arrays[0], arrays[1], MNIST_CLASSES, "MNIST", " / ".join(names)
    if source == "fashion-mnist":
        wanted = [f for f in _download.FASHION_MNIST_FILES if f.name in _STANDARD_NAMES[split]]
        dest = _download.cache_dir() / "fashion-mnist"
        paths = _download.download_dataset(wanted, dest, progress=progress, cancel=cancel)
        images, labels = (_read_file(p) for p in paths)
        files = " / ".join(p.name for p in paths)
        return images, labels, FASHION_MNIST_CLASSES, "Fashion-MNIST", files
    folder = _folder(source)
    found = _find_folder_files(folder, split)
    if found is None:
        return None
    images, labels = (_read_file(p) for p in found)
    max_label = int(labels.max()) if labels.ndim == 1 and len(labels) else 0
    files = " / ".join(p.name for p in found)
    return images, labels, _folder_classes(max_label), folder.name or str(folder), files


def load_dataset(
    source: str = "mnist",
    split: str = "train",
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Dataset:
    """Load one split ("train" or "test") of a source: "mnist", "fashion-mnist" or a folder.

    Fashion-MNIST is downloaded into the cache on first use; ``progress`` and ``cancel``
    apply to that download.
    """
    loaded = _load_arrays(source, split, progress, cancel)
    if loaded is None:
        images, labels = _PREFIXES[split]
        raise DataError(
            f"{source}: no {split} files; looked for {images}* and {labels}* (.gz or raw)"
        )
    images, labels, classes, prefix, files = loaded
    return _build(images, labels, classes, f"{prefix} {split}", files)


def _split_indices(n: int, n_val: int, seed: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    if n_val < 0:
        raise DataError(f"the validation size must be >= 0, not {n_val}")
    if n_val >= n:
        raise DataError(
            f"cannot hold out {n_val} validation images: {name} has only {n} "
            "(the rest must be left to train on)"
        )
    perm = np.random.default_rng(seed).permutation(n)
    # Sorted, so both parts keep the file's order (and a prefix of either is a fair sample).
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _validation_name(train_name: str) -> str:
    return train_name.removesuffix(" train") + " validation"


def split_validation(train: Dataset, n_val: int = 5000, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Split off ``n_val`` random samples (deterministic by seed): (train_rest, validation)."""
    rest_idx, val_idx = _split_indices(len(train), n_val, seed, train.name)
    rest = train.subset(indices=rest_idx)
    val = train.subset(indices=val_idx, name=_validation_name(train.name))
    return rest, val


@dataclass(frozen=True)
class DataSplits:
    """The train, validation and test sets of one source; absent splits are None."""

    train: Dataset | None
    val: Dataset | None
    test: Dataset | None
    source: str
    classes: tuple[str, ...]

    def evaluation_set(self) -> Dataset:
        """The test set if there is one, else the validation set."""
        if self.test is not None and len(self.test):
            return self.test
        if self.val is not None and len(self.val):
            return self.val
        raise DataError(f"data source {self.source!r} has no test or validation images")


def load_splits(
    source: str = "mnist",
    *,
    n_val: int = 5000,
    seed: int = 0,
    limit: int | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> DataSplits:
    """Load train (minus a validation split), validation and test sets of a source.

    ``limit`` keeps the first ``limit`` training samples (after the split) and at most
    ``limit`` validation and test samples, for quick runs.
    """
    if limit is not None and limit < 0:
        raise DataError(f"limit must be >= 0, not {limit}")
    if source == "fashion-mnist":
        # One download of all four files, so the progress runs from 0 to 100% once.
        dest = _download.cache_dir() / "fashion-mnist"
        files = _download.FASHION_MNIST_FILES
        _download.download_dataset(files, dest, progress=progress, cancel=cancel)
        progress = None  # the files are in the cache now; don't report them twice
    loaded = {split: _load_arrays(source, split, progress, cancel) for split in SPLITS}
    if all(v is None for v in loaded.values()):
        folder = _folder(source)
        raise DataError(
            f"{folder}: no MNIST-format files; looked for train-images*/train-labels* "
            "and t10k-images*/t10k-labels* (.gz or raw)"
        )
    classes = next(v[2] for v in loaded.values() if v is not None)
    if source not in SOURCES:
        # One class list for both splits of a folder, from the largest label in either.
        max_label = max(int(v[1].max()) for v in loaded.values() if v is not None and v[1].size)
        classes = _folder_classes(max_label)
    shapes = {v[0].shape[1:] for v in loaded.values() if v is not None and v[0].ndim == 3}
    if len(shapes) > 1:
        sizes = " and ".join(f"{h}x{w}" for h, w in sorted(shapes))
        raise DataError(f"{source}: train and test images differ in size ({sizes})")

    train = val = test = None
    if loaded["train"] is not None:
        images, labels, _, prefix, files = loaded["train"]
        name = f"{prefix} train"
        rest_idx, val_idx = _split_indices(len(labels), n_val, seed, name)
        if limit is not None:
            rest_idx, val_idx = rest_idx[:limit], val_idx[:limit]
        # Index the cached arrays directly: one copy of each part, never of the whole set.
        train = _build(images, labels, classes, name, files, rest_idx)
        val = _build(images, labels, classes, _validation_name(name), files, val_idx)
    if loaded["test"] is not None:
        images, labels, _, prefix, files = loaded["test"]
        idx = None if limit is None else np.arange(min(limit, len(labels)))
        test = _build(images, labels, classes, f"{prefix} test", files, idx)
    return DataSplits(train, val, test, source, classes)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images, (N, H, W) or (H, W), to float32 (N, 1, H, W) in [0, 1]: x / 255."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"to_tensor expects uint8 images, not {images.dtype}")
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"to_tensor expects (N, H, W) or (H, W) images, not {images.shape}")
    # astype copies into a writable array, so torch never shares (or warns about) our memory.
    return torch.from_numpy(images.astype(np.float32)).div_(255.0).unsqueeze_(1)
