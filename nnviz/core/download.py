"""Downloads into the cache: mirrors tried in turn, resume, MD5 check, atomic rename, cancel.

Only ``urllib`` is used, so there is no extra dependency. A file only ever appears under
its final name once it is complete and its MD5 matches.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from nnviz.core.errors import DownloadCancelled, DownloadError

CHUNK_SIZE = 64 * 1024
CACHE_ENV = "NNVIZ_CACHE_DIR"
_USER_AGENT = "nnviz-desktop (urllib)"  # some hosts refuse urllib's default agent

Progress = Callable[[int, "int | None"], None]


def cache_dir() -> Path:
    """Where downloads are kept: $NNVIZ_CACHE_DIR if set, else the user's cache folder."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("nnviz"))


@dataclass(frozen=True)
class RemoteFile:
    """A file to download: its name, published MD5 and full URLs to try in turn."""

    name: str
    md5: str
    mirrors: tuple[str, ...]
    dataset: str = "downloads"  # the cache sub-folder it goes into by default
    size: int | None = None  # bytes, if known: lets progress show a total before connecting


_FASHION_MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)


def _fashion(name: str, md5: str, size: int) -> RemoteFile:
    mirrors = tuple(base + name for base in _FASHION_MIRRORS)
    return RemoteFile(name, md5, mirrors, dataset="fashion-mnist", size=size)


# The MD5s published by Zalando Research (and listed by torchvision's FashionMNIST).
FASHION_MNIST_FILES: tuple[RemoteFile, ...] = (
    _fashion("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880),
    _fashion("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", 29515),
    _fashion("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", 4422102),
    _fashion("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", 5148),
)


def file_md5(path: Path) -> str:
    """The hex MD5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)  # a checksum against corruption, not security
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _RestartNeeded(Exception):
    """The partial file cannot be resumed here; start this mirror again from zero."""


def _check_cancel(cancel: threading.Event | None, name: str) -> None:
    if cancel is not None and cancel.is_set():
        raise DownloadCancelled(f"download of {name} cancelled")


def _total_from_content_range(value: str | None) -> int | None:
    # "bytes 100-999/1000" -> 1000; "*" means the server does not know.
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def _fetch(
    url: str,
    part: Path,
    name: str,
    progress: Progress | None,
    cancel: threading.Event | None,
    timeout: float,
) -> bool:
    """Download ``url`` into ``part``, resuming if it holds bytes; True if it resumed."""
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection; left open it leaks a socket
        if exc.code == 416 and start:  # the partial file is as long as or longer than the file
            raise _RestartNeeded from None
        raise
    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if start and response.status == 206:
            mode, done = "ab", start
            total = _total_from_content_range(response.headers.get("Content-Range"))
            if total is None and length is not None:
                total = start + length
            if not (response.headers.get("Content-Range") or "").startswith(f"bytes {start}-"):
                raise _RestartNeeded
        else:
            # A 200 answer to a Range request means the server ignores ranges: start over.
            mode, done, total = "wb", 0, length
        read = getattr(response, "read1", response.read)  # read1 returns what has arrived
        with open(part, mode) as f:
            if progress is not None:
                progress(done, total)
            while True:
                _check_cancel(cancel, name)
                chunk = read(CHUNK_SIZE)
                if not chunk:
                    break
                f.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    # http.client returns b"" rather than raising when a server closes early.
    if total is not None and done != total:
        raise ConnectionError(f"connection closed after {done} of {total} bytes")
    return mode == "ab"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _try_mirror(
    remote: RemoteFile,
    url: str,
    part: Path,
    progress: Progress | None,
    cancel: threading.Event | None,
    timeout: float,
) -> str | None:
    """Fetch ``url`` into ``part``: None once it is whole with the right MD5, else why not."""
    for _attempt in range(2):  # a second attempt only restarts a failed resume from zero
        _check_cancel(cancel, remote.name)
        try:
            resumed = _fetch(url, part, remote.name, progress, cancel, timeout)
        except _RestartNeeded:
            part.unlink(missing_ok=True)
            continue
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # Keep the .part: the next mirror (or a later call) resumes from it.
            return _describe(exc)
        digest = file_md5(part)
        if digest == remote.md5:
            return None
        part.unlink(missing_ok=True)
        if not resumed:
            return f"MD5 mismatch (expected {remote.md5}, got {digest})"
        # The old bytes may be the bad ones: fetch the whole file once more.
    return "the partial download could not be resumed or restarted"


def download(
    remote: RemoteFile,
    dest_dir: Path | None = None,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``remote`` into ``dest_dir`` (default: the cache) and return its path.

    A complete file with the right MD5 is returned at once. Otherwise bytes go to
    ``<name>.part`` (resumed with a Range request when one exists), are checked against
    the MD5 and renamed into place. ``progress(done, total)`` is called per chunk;
    setting ``cancel`` raises DownloadCancelled and keeps the .part for later.
    """
    dest = Path(dest_dir) if dest_dir is not None else cache_dir() / remote.dataset
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / remote.name
    part = dest / (remote.name + ".part")
    if final.is_file():
        if file_md5(final) == remote.md5:
            if progress is not None:
                size = final.stat().st_size
                progress(size, size)
            return final
        final.unlink()  # wrong or damaged: it must not pass for the real file
    # A .part that is already whole (say, the process died before the rename) just needs
    # its check; resuming it would only get a "416 Range Not Satisfiable".
    if part.is_file() and part.stat().st_size == remote.size and file_md5(part) == remote.md5:
        os.replace(part, final)
        return final
    failures = []
    for url in remote.mirrors:
        why = _try_mirror(remote, url, part, progress, cancel, timeout)
        if why is None:
            os.replace(part, final)  # atomic: the final name only ever holds a good file
            return final
        failures.append(f"{url}: {why}")
    tried = "; ".join(failures)
    raise DownloadError(f"could not download {remote.name} from any mirror: {tried}")


def download_dataset(
    files: Sequence[RemoteFile],
    dest_dir: Path,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> list[Path]:
    """Download several files into ``dest_dir``; ``progress`` counts bytes over all of them."""
    sizes: list[int | None] = [f.size for f in files]
    finished = 0  # bytes of the files already done

    def report(i: int) -> Progress:
        def on_progress(done: int, total: int | None) -> None:
            if total is not None:
                sizes[i] = total
            known = None if any(s is None for s in sizes) else sum(sizes)
            progress(finished + done, known)

        return on_progress

    paths = []
    for i, remote in enumerate(files):
        on_progress = report(i) if progress is not None else None
        path = download(remote, dest_dir, progress=on_progress, cancel=cancel)
        sizes[i] = path.stat().st_size
        finished += sizes[i]
        paths.append(path)
    return paths
