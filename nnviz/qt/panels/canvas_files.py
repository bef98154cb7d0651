"""Pictures in and out of the Draw panel: image files, the clipboard, dropped images, PNG saves.

Everything comes in as ink (float32 (H, W), ink high, see ``nnviz.core.preprocess``)
and goes onto the canvas scaled to fit; a failure is an ``NnvizError`` whose message
the panel shows the user.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData
from PySide6.QtGui import QImage

from nnviz.core.errors import NnvizError
from nnviz.core.preprocess import load_image, to_ink
from nnviz.qt.canvas import image_files

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"


def qimage_to_ink(image: QImage) -> np.ndarray:
    """A QImage of any format (pasted, dropped) as ink; transparency counts as background."""
    if image.isNull() or image.width() == 0 or image.height() == 0:
        raise NnvizError("the image is empty")
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
    h, w, stride = rgba.height(), rgba.width(), rgba.bytesPerLine()
    pixels = np.frombuffer(rgba.constBits(), np.uint8).reshape(h, stride)[:, : w * 4]
    return to_ink(pixels.reshape(h, w, 4).copy())


def mime_ink(mime: QMimeData | None) -> tuple[np.ndarray, str]:
    """The ink of the image (or image file) in ``mime``, and where it came from."""
    if mime is not None:
        files = image_files(mime)
        if files:
            return load_image(files[0]), Path(files[0]).name
        if mime.hasImage():
            return qimage_to_ink(QImage(mime.imageData())), "the clipboard"
    raise NnvizError("the clipboard holds no image to paste (copy an image or an image file)")


def save_drawing(path: str | Path, ink: np.ndarray) -> None:
    """Write the drawing as a greyscale PNG (white ink on black), atomically.

    The PNG goes to a temporary file in the same folder first and is renamed over the
    target, so a failed save never leaves half a file under the user's name.
    """
    path = Path(path)
    pixels = np.clip(np.asarray(ink, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            Image.fromarray(pixels).save(handle, format="PNG")  # uint8 (H, W): mode "L"
        os.chmod(tmp_name, _file_mode(path))  # mkstemp makes it private; a save is not
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as exc:
        raise NnvizError(f"could not save {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def _file_mode(path: Path) -> int:
    """The existing file's permissions, or rw-r--r-- for a new one (reading the umask
    would mean setting it, which races with other threads creating files)."""
    with contextlib.suppress(OSError):
        return path.stat().st_mode & 0o777
    return 0o644
