"""Downloads against a loopback HTTP server serving real MNIST bytes; no internet."""

from __future__ import annotations

import hashlib
import importlib.resources
import re
import socket
import threading
import time

import numpy as np
import pytest

from nnviz.core import data, download
from nnviz.core.download import (
    FASHION_MNIST_FILES,
    RemoteFile,
    cache_dir,
    download_dataset,
    file_md5,
)
from nnviz.core.errors import DownloadCancelled, DownloadError

MNIST = importlib.resources.files("nnviz.resources") / "mnist"
LABELS = (MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes()
# A few hundred KB of real bytes, so a download takes several 64 KiB chunks.
BLOB = (MNIST / "t10k-images-idx3-ubyte.gz").read_bytes()[:300_000]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def server(file_server):
    return file_server({"labels.gz": LABELS, "blob.bin": BLOB})


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NNVIZ_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def dead_url():
    """A URL on a loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/blob.bin"


def remote(server, name: str, content: bytes, *extra_mirrors: str) -> RemoteFile:
    return RemoteFile(name, md5(content), (*extra_mirrors, server.url(name)))


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("NNVIZ_CACHE_DIR")
    assert cache_dir().name.lower() == "nnviz"


def test_fashion_mnist_files_are_described():
    names = [f.name for f in FASHION_MNIST_FILES]
    assert names == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    for f in FASHION_MNIST_FILES:
        assert re.fullmatch(r"[0-9a-f]{32}", f.md5)
        assert len(f.mirrors) >= 2 and all(m.endswith("/" + f.name) for m in f.mirrors)
        assert f.dataset == "fashion-mnist"


def test_full_download(server, tmp_path):
    seen = []
    path = download.download(
        remote(server, "blob.bin", BLOB), tmp_path, progress=lambda d, t: seen.append((d, t))
    )
    assert path == tmp_path / "blob.bin"
    assert path.read_bytes() == BLOB and file_md5(path) == md5(BLOB)
    assert not (tmp_path / "blob.bin.part").exists()
    assert seen[0] == (0, len(BLOB)) and seen[-1] == (len(BLOB), len(BLOB))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert server.requests == [("blob.bin", None)]


def test_default_destination_is_the_cache(server, tmp_path):
    file = RemoteFile("labels.gz", md5(LABELS), (server.url("labels.gz"),), dataset="demo")
    path = download.download(file)
    assert path == tmp_path / "cache" / "demo" / "labels.gz"
    assert path.read_bytes() == LABELS


def test_cut_connection_then_resume(server, tmp_path):
    file = remote(server, "blob.bin", BLOB)
    server.cut_half = True
    with pytest.raises(DownloadError, match="blob.bin"):
        download.download(file, tmp_path)
    part = tmp_path / "blob.bin.part"
    assert not (tmp_path / "blob.bin").exists()
    held = part.stat().st_size
    assert held == len(BLOB) // 2

    server.cut_half = False
    seen = []
    path = download.download(file, tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert server.requests[-1] == ("blob.bin", f"bytes={held}-")
    assert file_md5(path) == md5(BLOB) and not part.exists()
    assert seen[0] == (held, len(BLOB)) and seen[-1] == (len(BLOB), len(BLOB))


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    (tmp_path / "blob.bin.part").write_bytes(b"x" * 1000)
    server.ignore_range = True
    path = download.download(remote(server, "blob.bin", BLOB), tmp_path)
    assert server.requests == [("blob.bin", "bytes=1000-")]
    assert path.read_bytes() == BLOB


def test_bad_partial_file_is_fetched_again(server, tmp_path):
    # A .part with wrong bytes: the resumed file fails the MD5, so it is fetched whole.
    (tmp_path / "blob.bin.part").write_bytes(b"x" * 1000)
    path = download.download(remote(server, "blob.bin", BLOB), tmp_path)
    assert server.requests == [("blob.bin", "bytes=1000-"), ("blob.bin", None)]
    assert path.read_bytes() == BLOB


def test_whole_partial_file_is_not_fetched_past_its_end(server, tmp_path):
    (tmp_path / "labels.gz.part").write_bytes(LABELS)
    path = download.download(remote(server, "labels.gz", LABELS), tmp_path)
    assert server.requests == [("labels.gz", f"bytes={len(LABELS)}-"), ("labels.gz", None)]
    assert path.read_bytes() == LABELS


def test_dead_mirrors_are_skipped(server, tmp_path, dead_url):
    file = remote(server, "blob.bin", BLOB, dead_url, server.url("missing.bin"))
    path = download.download(file, tmp_path)
    assert path.read_bytes() == BLOB
    assert [name for name, _ in server.requests] == ["missing.bin", "blob.bin"]


def test_all_mirrors_failing_lists_each(server, tmp_path, dead_url):
    missing = server.url("missing.bin")
    file = RemoteFile("blob.bin", md5(BLOB), (dead_url, missing))
    with pytest.raises(DownloadError) as info:
        download.download(file, tmp_path)
    message = str(info.value)
    assert "blob.bin" in message and dead_url in message and missing in message
    assert "404" in message
    assert not (tmp_path / "blob.bin").exists()


def test_md5_mismatch_on_every_mirror(server, tmp_path):
    file = RemoteFile("labels.gz", "0" * 32, (server.url("labels.gz"), server.url("labels.gz")))
    with pytest.raises(DownloadError, match="MD5 mismatch") as info:
        download.download(file, tmp_path)
    assert not isinstance(info.value, DownloadCancelled)
    assert str(info.value).count("MD5 mismatch") == 2
    assert not (tmp_path / "labels.gz").exists()
    assert not (tmp_path / "labels.gz.part").exists()


def test_cancel_from_the_progress_callback(server, tmp_path):
    cancel = threading.Event()

    def progress(done, total):
        if done > 0:
            cancel.set()

    file = remote(server, "blob.bin", BLOB)
    with pytest.raises(DownloadCancelled):
        download.download(file, tmp_path, progress=progress, cancel=cancel)
    assert not (tmp_path / "blob.bin").exists()
    assert 0 < (tmp_path / "blob.bin.part").stat().st_size < len(BLOB)
    # the kept .part resumes later
    path = download.download(file, tmp_path)
    assert path.read_bytes() == BLOB and server.requests[-1][1] is not None


def test_cancel_from_another_thread(server, tmp_path):
    server.delay = 0.01  # about 0.4 s for the whole file
    cancel = threading.Event()
    timer = threading.Timer(0.05, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(DownloadCancelled):
            download.download(remote(server, "blob.bin", BLOB), tmp_path, cancel=cancel)
    finally:
        timer.cancel()
        timer.join()
    assert time.monotonic() - started < 0.35
    assert not (tmp_path / "blob.bin").exists()


def test_cancel_before_start(server, tmp_path):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DownloadCancelled):
        download.download(remote(server, "blob.bin", BLOB), tmp_path, cancel=cancel)
    assert server.requests == []


def test_cached_file_makes_no_request(server, tmp_path):
    (tmp_path / "labels.gz").write_bytes(LABELS)
    seen = []
    path = download.download(
        remote(server, "labels.gz", LABELS), tmp_path, progress=lambda d, t: seen.append((d, t))
    )
    assert path == tmp_path / "labels.gz"
    assert server.requests == []
    assert seen == [(len(LABELS), len(LABELS))]


def test_damaged_cached_file_is_replaced(server, tmp_path):
    (tmp_path / "labels.gz").write_bytes(LABELS[:100])
    path = download.download(remote(server, "labels.gz", LABELS), tmp_path)
    assert path.read_bytes() == LABELS and len(server.requests) == 1


def test_download_dataset_aggregates_progress(server, tmp_path):
    files = [remote(server, "labels.gz", LABELS), remote(server, "blob.bin", BLOB)]
    seen = []
    paths = download_dataset(files, tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert [p.name for p in paths] == ["labels.gz", "blob.bin"]
    total = len(LABELS) + len(BLOB)
    assert seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    # the blob's size is unknown until its response arrives; then the total is exact
    assert {t for _, t in seen} == {None, total}
    assert all(t == total for d, t in seen if d > len(LABELS))

    # with the sizes given up front, the total is known from the first report
    sized = [
        RemoteFile(f.name, f.md5, f.mirrors, size=n)
        for f, n in zip(files, (4542, 300_000), strict=True)
    ]
    seen.clear()
    for p in paths:
        p.unlink()
    download_dataset(sized, tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, total) and {t for _, t in seen} == {total}


def test_fashion_mnist_source_downloads_into_the_cache(server, tmp_path, monkeypatch):
    # Stand-ins with the Fashion-MNIST names, served locally: the bundled MNIST test files.
    images = (MNIST / "t10k-images-idx3-ubyte.gz").read_bytes()
    stand_ins = {"images": images, "labels": LABELS}
    files = []
    for f in FASHION_MNIST_FILES:
        content = stand_ins["images" if "images" in f.name else "labels"]
        server.files[f.name] = content
        files.append(
            RemoteFile(f.name, md5(content), (server.url(f.name),), f.dataset, len(content))
        )
    monkeypatch.setattr(download, "FASHION_MNIST_FILES", tuple(files))

    test = data.load_dataset("fashion-mnist", "test")
    assert len(test) == 10000 and test.classes == data.FASHION_MNIST_CLASSES
    assert test.name == "Fashion-MNIST test"
    assert (tmp_path / "cache" / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").is_file()

    seen = []
    splits = data.load_splits("fashion-mnist", limit=50, progress=lambda d, t: seen.append(t))
    assert len(splits.train) == 50 and len(splits.test) == 50
    assert splits.classes == data.FASHION_MNIST_CLASSES
    assert set(seen) == {2 * (len(images) + len(LABELS))}
    np.testing.assert_array_equal(splits.test.labels[:5], [7, 2, 1, 0, 4])
    # the files were fetched once each
    assert sorted(name for name, _ in server.requests) == sorted(f.name for f in files)
