"""The IDX reader, the bundled MNIST, folder sources, splits and the input scaling."""

from __future__ import annotations

import gzip
import importlib.resources
import io
import shutil
import struct

import numpy as np
import pytest
import torch

from nnviz.core.data import (
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    SOURCES,
    Dataset,
    load_dataset,
    load_splits,
    read_idx,
    split_validation,
    to_tensor,
)
from nnviz.core.errors import DataError, NnvizError

MNIST = importlib.resources.files("nnviz.resources") / "mnist"


def bundled_bytes(name: str) -> bytes:
    return (MNIST / name).read_bytes()


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file holding ``array``."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


@pytest.fixture(scope="module")
def mnist_test():
    return load_dataset("mnist", "test")


@pytest.fixture(scope="module")
def small_train():
    """The first 1000 bundled training images and labels."""
    train = load_dataset("mnist", "train")
    return train.images[:1000].copy(), train.labels[:1000].copy()


# --- the bundled MNIST ------------------------------------------------------------------


def test_constants():
    assert tuple("0123456789") == MNIST_CLASSES
    assert len(FASHION_MNIST_CLASSES) == 10
    assert FASHION_MNIST_CLASSES[0] == "T-shirt/top" and FASHION_MNIST_CLASSES[9] == "Ankle boot"
    assert SOURCES == ("mnist", "fashion-mnist")


def test_bundled_train_set():
    train = load_dataset("mnist", "train")
    assert isinstance(train, Dataset)
    assert len(train) == 60000
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.shape == (60000,) and train.labels.dtype == np.int64
    assert train.classes == MNIST_CLASSES
    assert train.name == "MNIST train"
    counts = np.bincount(train.labels, minlength=10)
    assert counts.sum() == 60000 and counts.min() > 5000  # every digit is well represented
    assert train.labels[0] == 5  # the well-known first training digit
    assert train.images.max() == 255 and train.images.min() == 0


def test_bundled_test_set(mnist_test):
    assert len(mnist_test) == 10000
    assert mnist_test.images.shape == (10000, 28, 28)
    assert mnist_test.labels[0] == 7  # the well-known first test digit
    assert set(np.unique(mnist_test.labels)) == set(range(10))
    assert mnist_test.name == "MNIST test"


def test_loaded_arrays_are_owned_by_the_caller():
    # The decoded files are cached per process: changing one Dataset must not reach the next.
    first = load_dataset("mnist", "test")
    first.images[0] = 0
    first.labels[0] = 3
    second = load_dataset("mnist", "test")
    assert second.images[0].any() and second.labels[0] == 7


def test_unknown_source_and_split():
    with pytest.raises(DataError, match="no-such-source"):
        load_dataset("no-such-source")
    with pytest.raises(DataError, match="validation"):
        load_dataset("mnist", "validation")


# --- read_idx ---------------------------------------------------------------------------


def test_read_idx_gz_raw_file_object_and_traversable(tmp_path):
    labels_gz = bundled_bytes("t10k-labels-idx1-ubyte.gz")
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(gzip.decompress(labels_gz))
    from_raw = read_idx(raw)
    assert from_raw.shape == (10000,) and from_raw.dtype == np.uint8 and from_raw[0] == 7
    np.testing.assert_array_equal(read_idx(MNIST / "t10k-labels-idx1-ubyte.gz"), from_raw)
    np.testing.assert_array_equal(read_idx(io.BytesIO(labels_gz)), from_raw)
    # gzip is recognised by its content, not by the name
    misnamed = tmp_path / "labels.bin"
    misnamed.write_bytes(labels_gz)
    np.testing.assert_array_equal(read_idx(str(misnamed)), from_raw)


def test_read_idx_images(tmp_path):
    images = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert not images.flags.writeable  # shared by the cache


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_bad_magic(tmp_path):
    path = write(tmp_path, "bad-magic-idx1-ubyte", b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match="bad-magic-idx1-ubyte.*not an IDX file"):
        read_idx(path)


def test_wrong_dtype_and_dimensions(tmp_path):
    floats = write(tmp_path, "floats-idx1", struct.pack(">HBBI", 0, 0x0D, 1, 2) + b"\0" * 8)
    with pytest.raises(DataError, match="floats-idx1.*float"):
        read_idx(floats)
    two_d = write(tmp_path, "matrix-idx2", idx_bytes(np.zeros((3, 4), np.uint8)))
    with pytest.raises(DataError, match="matrix-idx2.*2 dimensions"):
        read_idx(two_d)


def test_truncated_file(tmp_path):
    data = gzip.decompress(bundled_bytes("t10k-images-idx3-ubyte.gz"))
    path = write(tmp_path, "t10k-images-idx3-ubyte.gz", gzip.compress(data[:1250], mtime=0))
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert message.startswith("t10k-images-idx3-ubyte.gz: truncated")
    assert "10000 images of 28x28" in message and "1234 bytes of pixel data" in message


def test_truncated_header(tmp_path):
    path = write(tmp_path, "short-labels", struct.pack(">HBB", 0, 8, 1) + b"\0\0")
    with pytest.raises(DataError, match="short-labels.*truncated"):
        read_idx(path)


def test_trailing_bytes(tmp_path):
    data = gzip.decompress(bundled_bytes("t10k-labels-idx1-ubyte.gz")) + b"extra"
    path = write(tmp_path, "t10k-labels-idx1-ubyte", data)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: 5 unexpected bytes"):
        read_idx(path)


def test_corrupt_gzip(tmp_path):
    good = bundled_bytes("t10k-labels-idx1-ubyte.gz")
    cut = write(tmp_path, "cut-labels.gz", good[: len(good) // 2])
    with pytest.raises(DataError, match="cut-labels.gz: corrupt gzip"):
        read_idx(cut)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    garbled = write(tmp_path, "garbled-labels.gz", bytes(flipped))
    with pytest.raises(DataError, match="garbled-labels.gz: corrupt gzip"):
        read_idx(garbled)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nowhere-idx1-ubyte.gz: file not found") as info:
        read_idx(tmp_path / "nowhere-idx1-ubyte.gz")
    assert isinstance(info.value, NnvizError)


# --- folder sources ---------------------------------------------------------------------


def test_folder_with_only_test_files(tmp_path, mnist_test):
    # raw and gz side by side, under both the usual and the Kaggle-style names
    (tmp_path / "t10k-images.idx3-ubyte").write_bytes(
        gzip.decompress(bundled_bytes("t10k-images-idx3-ubyte.gz"))
    )
    shutil.copyfile(MNIST / "t10k-labels-idx1-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte.gz")
    splits = load_splits(str(tmp_path))
    assert splits.train is None and splits.val is None
    assert len(splits.test) == 10000
    assert splits.evaluation_set() is splits.test
    assert splits.classes == MNIST_CLASSES
    np.testing.assert_array_equal(splits.test.labels, mnist_test.labels)
    with pytest.raises(DataError, match="train-images"):
        load_dataset(str(tmp_path), "train")


def test_folder_with_only_train_files(tmp_path, small_train):
    images, labels = small_train
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    splits = load_splits(tmp_path, n_val=100)
    assert splits.test is None
    assert len(splits.train) == 900 and len(splits.val) == 100
    assert splits.evaluation_set() is splits.val
    assert splits.train.name == f"{tmp_path.name} train"
    assert splits.val.name == f"{tmp_path.name} validation"


def test_folder_with_more_than_ten_classes(tmp_path, small_train):
    images, labels = small_train
    labels = labels.copy()
    labels[:5] = 11
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    dataset = load_dataset(str(tmp_path))
    assert dataset.classes == tuple(str(i) for i in range(12))


def test_folder_errors(tmp_path, small_train):
    images, labels = small_train
    with pytest.raises(DataError, match="nope"):
        load_splits(str(tmp_path / "nope"))
    with pytest.raises(DataError, match="train-images.*t10k-images"):
        load_splits(str(tmp_path))  # an empty folder
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(images))
    with pytest.raises(DataError, match="no train-labels"):
        load_splits(str(tmp_path))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels[:999]))
    with pytest.raises(DataError, match="1000 images but 999 labels"):
        load_dataset(str(tmp_path))


# --- splits -----------------------------------------------------------------------------


def test_split_validation(mnist_test):
    rest, val = split_validation(mnist_test, n_val=1000, seed=0)
    rest2, val2 = split_validation(mnist_test, n_val=1000, seed=0)
    _, val_other = split_validation(mnist_test, n_val=1000, seed=1)
    assert len(rest) == 9000 and len(val) == 1000
    np.testing.assert_array_equal(val.images, val2.images)
    np.testing.assert_array_equal(rest.labels, rest2.labels)
    assert not np.array_equal(val.images, val_other.images)
    assert val.name == "MNIST test validation" and rest.name == "MNIST test"


def test_split_validation_is_disjoint_and_complete():
    # Each sample's label is its index, so the two sides can be compared exactly.
    n = 1000
    numbered = Dataset(np.zeros((n, 2, 2), np.uint8), np.arange(n), tuple(map(str, range(n))), "n")
    rest, val = split_validation(numbered, n_val=300, seed=7)
    assert len(val) == 300 and len(rest) == 700
    assert not set(rest.labels) & set(val.labels)
    assert sorted(set(rest.labels) | set(val.labels)) == list(range(n))
    assert val.name == "n validation"


def test_split_validation_edges(mnist_test):
    rest, val = split_validation(mnist_test, n_val=0)
    assert len(rest) == 10000 and len(val) == 0
    assert val.images.shape == (0, 28, 28)
    with pytest.raises(DataError, match="10000"):
        split_validation(mnist_test, n_val=10000)


def test_subset(mnist_test):
    first = mnist_test.subset(5)
    assert len(first) == 5 and first.name == mnist_test.name
    np.testing.assert_array_equal(first.labels, mnist_test.labels[:5])
    picked = mnist_test.subset(indices=np.array([3, 1]), name="two")
    assert picked.name == "two" and list(picked.labels) == list(mnist_test.labels[[3, 1]])
    picked.images[0] = 0  # a copy: the source is untouched
    assert mnist_test.images[3].any()
    assert len(mnist_test.subset(10**6)) == 10000


def test_load_splits_limit():
    splits = load_splits("mnist", limit=200)
    assert len(splits.train) == 200 and len(splits.val) == 200 and len(splits.test) == 200
    assert splits.source == "mnist" and splits.classes == MNIST_CLASSES
    assert splits.test.labels[0] == 7
    full = load_splits("mnist", n_val=5000, seed=0)
    assert len(full.train) == 55000 and len(full.val) == 5000 and len(full.test) == 10000
    np.testing.assert_array_equal(full.train.labels[:200], splits.train.labels)
    small = load_splits("mnist", n_val=100, limit=1000)
    assert len(small.train) == 1000 and len(small.val) == 100


# --- the input scaling ------------------------------------------------------------------


def test_to_tensor(mnist_test):
    x = to_tensor(mnist_test.images[:8])
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.equal(x[0, 0], torch.from_numpy(mnist_test.images[0].astype(np.float32)) / 255)
    single = to_tensor(mnist_test.images[0])
    assert single.shape == (1, 1, 28, 28)
    read_only = read_idx(MNIST / "t10k-images-idx3-ubyte.gz")[:2]
    assert to_tensor(read_only).shape == (2, 1, 28, 28)  # no "not writable" warning
    with pytest.raises(ValueError, match="uint8"):
        to_tensor(np.zeros((2, 28, 28), np.float32))
