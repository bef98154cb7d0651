"""Turn any drawing into the 28x28 input an MNIST network expects, the way MNIST was made.

MNIST's digits were size-normalised to fit a 20x20 box (keeping the aspect ratio,
anti-aliased to grey levels), then placed in a 28x28 field so that the centre of
mass of the pixels sits at the centre of the field. A network trained on MNIST
has only ever seen digits framed like that, so a drawing from the canvas or a file
goes through the same steps before it is classified:

1. ``to_ink``: grey levels, polarity fixed (ink high, background 0);
2. crop to the ink's bounding box;
3. scale the longer side to 20 px (anti-aliased);
4. shift so the centre of mass lands on the frame's centre.

Coordinates: pixel ``(i, j)`` sits at ``(i, j)``; the target centre of mass is
``(14.0, 14.0)``. MNIST's own digits all have their centre of mass within half a
pixel of that point (LeCun shifted by the *rounded* centre of mass), and so do ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from nnviz.core.errors import NnvizError

FRAME = 28  # side of the network's input
BOX = 20  # the digit's longer side after scaling, as in MNIST
TARGET_COM = 14.0  # where the centre of mass goes (pixel-index coordinates)
MIN_INK_PIXELS = 2  # one stray pixel is a speck, not a digit
# Shrinking: BOX (area averaging) is exactly how a pen stroke is anti-aliased onto a
# coarser grid, which is where MNIST's grey levels come from. Enlarging a tiny
# drawing: BOX would be blocky nearest-neighbour; BILINEAR is smooth and does not
# ring. Measured on MNIST digits drawn back at other sizes, both beat the alternatives
# or tie with them (LANCZOS, BICUBIC, HAMMING).
SHRINK = Image.Resampling.BOX
ENLARGE = Image.Resampling.BILINEAR
# ITU-R 601 luma weights, the ones PIL uses for RGB -> "L".
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Preprocessed:
    """The network input for a drawing, with every intermediate step for the GUI to show."""

    image: np.ndarray | None  # float32 (28, 28) in [0, 1], ink high; None when there is no ink
    has_ink: bool
    ink: np.ndarray  # float32 (H, W) in [0, 1]: the input as ink amount (step 1)
    bbox: tuple[int, int, int, int] | None  # (top, left, bottom, right), bottom/right exclusive
    scaled: np.ndarray | None  # float32 (h, w), longer side 20: the cropped ink, scaled
    centre_of_mass: tuple[float, float] | None  # (row, col) in the 28x28 frame before the shift
    shift: tuple[int, int] | None  # (drow, dcol) applied to centre it

    def before_shift(self) -> np.ndarray | None:
        """The 28x28 frame with the scaled box in the middle, before the centre-of-mass shift.

        ``centre_of_mass`` is measured in this frame, so a GUI can mark it here.
        """
        if self.scaled is None:
            return None
        h, w = self.scaled.shape
        r0, c0 = (FRAME - h) // 2, (FRAME - w) // 2
        frame = np.zeros((FRAME, FRAME), dtype=np.float32)
        frame[r0 : r0 + h, c0 : c0 + w] = self.scaled
        return frame


def _pil_to_array(image: Image.Image) -> np.ndarray:
    """A PIL image as float32 in [0, 1]: (H, W) grey, or (H, W, 4) when it has transparency."""
    mode = image.mode
    if mode == "F":
        return np.array(image, dtype=np.float32)  # a copy: asarray's is read-only
    if mode.startswith("I"):
        # 16-bit PNGs open as "I;16" or "I"; 32-bit "I" holding 8-bit data also happens.
        arr = np.asarray(image, dtype=np.float64)
        full = 255.0 if arr.max(initial=0) <= 255 else 65535.0
        return (arr / full).astype(np.float32)
    if "A" in mode or "transparency" in image.info:
        image = image.convert("RGBA")
    elif mode not in ("1", "L"):
        image = image.convert("RGB")
    else:
        image = image.convert("L")
    return np.asarray(image, dtype=np.float32) / 255.0


def _as_float(image: Any) -> np.ndarray:
    """Any supported input as a float32 array in [0, 1] with shape (H, W) or (H, W, C).

    Always a new array, never the caller's, so ``to_ink`` may change it in place.
    """
    if isinstance(image, Image.Image):
        return _pil_to_array(image)
    arr = np.asarray(image)
    in_range = True  # no clipping to do (bool, uint8 and uint16 data)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.integer):
        # uint8 is the common case; wider integers holding 16-bit data are scaled as such.
        full = 65535.0 if arr.dtype.itemsize > 1 and arr.max(initial=0) > 255 else 255.0
        # Unsigned 8- and 16-bit data land in [0, 1]; signed or wider may not.
        in_range = arr.dtype in (np.uint8, np.uint16)
        arr = np.divide(arr, np.float32(full), dtype=np.float32)  # one pass, one array
    elif np.issubdtype(arr.dtype, np.floating):
        in_range = False
        arr = arr.astype(np.float32, copy=False)  # never written to: copies are made below
        # nan_to_num costs ~0.15 ms on a 280x280 canvas, ten times the check that
        # says it has nothing to do, and the canvas is preprocessed at every mouse move.
        if not np.isfinite(arr).all():
            arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
        # Floats are meant to be in [0, 1] (a little overshoot, e.g. from resampling,
        # is clipped below); a float image in 0..255 is a common slip, so take it too.
        if arr.size and arr.max() > 2.0:
            arr = arr / 255.0
    else:
        raise NnvizError(f"cannot read a drawing from an array of type {arr.dtype}")
    if arr.ndim == 3 and arr.shape[0] == 1 and arr.shape[-1] not in (1, 2, 3, 4):
        arr = arr[0]  # channel-first single channel, e.g. a (1, 28, 28) tensor
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (2, 3, 4)):
        raise NnvizError(
            f"a drawing must be (H, W) grey or (H, W, 3|4) colour, not shape {arr.shape}"
        )
    return arr if in_range else np.clip(arr, 0.0, 1.0)


def _grey(arr: np.ndarray) -> np.ndarray:
    """Colour to luminance; transparency becomes background."""
    if arr.ndim == 2:
        return arr
    channels = arr.shape[-1]
    if channels in (2, 4):  # grey+alpha or RGBA
        colour, alpha = arr[..., :-1], arr[..., -1]
    else:
        colour, alpha = arr, None
    lum = colour[..., 0] if colour.shape[-1] == 1 else colour @ _LUMA
    if alpha is None or alpha.min() >= 1.0:
        return lum
    # Transparent pixels are background, whatever colour they carry. Composite onto
    # a backdrop that contrasts with the visible strokes, so that black strokes on
    # a transparent layer and white ones both come out as ink.
    weight = float(alpha.sum())
    stroke_lum = float((lum * alpha).sum()) / weight if weight > 0 else 0.0
    backdrop = 0.0 if stroke_lum >= 0.5 else 1.0
    return lum * alpha + backdrop * (1.0 - alpha)


def _border(arr: np.ndarray) -> np.ndarray:
    return np.concatenate([arr[0], arr[-1], arr[1:-1, 0], arr[1:-1, -1]])


def _median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D array, in a fifth of the time: the canvas's border is a
    thousand pixels, and most of np.median's 40 us went to its generality."""
    n = len(values)
    low, high = (n - 1) // 2, n // 2
    part = np.partition(values, [low, high])
    a, b = part[low], part[high]
    if low == high:
        return float(a)
    # As np.median averages: in the array's float type, integers in float64.
    return float((a + b) / 2) if values.dtype.kind == "f" else (float(a) + float(b)) / 2


def to_ink(image: Any) -> np.ndarray:
    """Any drawing as float32 (H, W) in [0, 1] where ink is high and the background is 0.

    Accepts a numpy array ((H, W) grey or (H, W, 3|4) RGB(A); uint8, or float in
    [0, 1]) or a PIL image. Polarity is decided by the border, which is almost all
    background: if its median is bright the drawing is dark ink on light paper and
    is inverted. The background level (the border median) is then subtracted, so
    grey paper in a photo counts as no ink.
    """
    arr = _as_float(image)
    # Grey from an array is in [0, 1] already (``_as_float``); luminance from colour can
    # overshoot 1 by a rounding error, and a PIL "F" image comes as it is.
    in_range = arr.ndim == 2 and not isinstance(image, Image.Image)
    grey = _grey(arr).astype(np.float32, copy=False)
    if grey.size == 0:
        return grey.reshape(grey.shape[:2])
    background = _median(_border(grey))
    if background > 0.5:
        grey = 1.0 - grey
        background = 1.0 - background
    # background <= 0.5 here, so the division cannot blow up. With no background
    # (the canvas: ink on black) it would change nothing, so it is skipped: two
    # passes over the image fewer. (A PIL "F" image's can be below 0, or NaN.)
    if background != 0.0:
        grey = (grey - background) / (1.0 - background)
        in_range = False  # below the background is below 0
    if in_range:
        return grey  # the canvas's case: a pass over its 280x280 pixels fewer
    # In place: grey is ours (see ``_as_float``), and a fresh 280x280 array can cost
    # more to allocate than to fill.
    return np.clip(grey, 0.0, 1.0, out=grey)


def _no_ink(ink: np.ndarray) -> Preprocessed:
    return Preprocessed(None, False, ink, None, None, None, None)


def _round(x: float) -> int:
    # Halves round up (floor(x + .5)), not to even as numpy does: no bias at .5.
    return math.floor(x + 0.5)


def preprocess_drawing(image: Any, *, ink_threshold: float = 0.1) -> Preprocessed:
    """Turn any drawing into MNIST's 28x28 format; see the module docstring for the steps.

    ``ink_threshold`` (ink amount, 0..1): a drawing whose strongest ink is fainter
    than this, or with fewer than two inked pixels, has no ink and gives no image;
    an empty canvas never gets a prediction. For the bounding box, pixels count as
    ink above ``ink_threshold`` times the strongest ink, so faint noise does not
    stretch the box.
    """
    ink = to_ink(image)
    peak = float(ink.max()) if ink.size else 0.0
    if peak < ink_threshold or peak <= 0.0:
        return _no_ink(ink)
    mask = ink > ink_threshold * peak
    if np.count_nonzero(mask) < MIN_INK_PIXELS:
        return _no_ink(ink)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = ink[top:bottom, left:right]

    # Longer side to 20 px, keeping the aspect ratio (a "1" stays thin).
    h, w = crop.shape
    factor = BOX / max(h, w)
    new_h, new_w = max(1, _round(h * factor)), max(1, _round(w * factor))
    resample = SHRINK if factor <= 1.0 else ENLARGE
    resized = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32)).resize(
        (new_w, new_h), resample
    )
    scaled = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
    # Stretch to full contrast: MNIST strokes reach 255, a faint pen or a thin
    # stroke averaged down to grey would otherwise look unlike anything trained on.
    top_value = float(scaled.max())
    if top_value <= 0.0:
        return _no_ink(ink)
    scaled = (scaled / top_value).astype(np.float32)

    # Centre the box in the frame, then move it by the rounded offset of its
    # centre of mass from the target, as far as the frame allows.
    r0, c0 = (FRAME - new_h) // 2, (FRAME - new_w) // 2
    total = float(scaled.sum())
    com_r = float(scaled.sum(axis=1) @ np.arange(r0, r0 + new_h)) / total
    com_c = float(scaled.sum(axis=0) @ np.arange(c0, c0 + new_w)) / total
    drow = min(max(_round(TARGET_COM - com_r), -r0), FRAME - new_h - r0)
    dcol = min(max(_round(TARGET_COM - com_c), -c0), FRAME - new_w - c0)
    frame = np.zeros((FRAME, FRAME), dtype=np.float32)
    frame[r0 + drow : r0 + drow + new_h, c0 + dcol : c0 + dcol + new_w] = scaled
    return Preprocessed(
        image=frame,
        has_ink=True,
        ink=ink,
        bbox=(top, left, bottom, right),
        scaled=scaled,
        centre_of_mass=(com_r, com_c),
        shift=(drow, dcol),
    )


def fit_to_square(ink: np.ndarray, side: int) -> np.ndarray:
    """Ink of any size scaled (aspect kept) to fill a ``side`` x ``side`` square, centred.

    How a file or an MNIST sample goes onto the drawing canvas: the whole picture,
    margins and all, so that preprocessing it from the canvas gives what
    preprocessing it directly would. A square of the right size comes back unchanged.
    """
    ink = np.asarray(ink, dtype=np.float32)
    if ink.ndim != 2 or ink.size == 0:
        raise NnvizError(f"an image to draw on must be (H, W) and not empty, not {ink.shape}")
    h, w = ink.shape
    if (h, w) == (side, side):
        return ink.copy()
    factor = side / max(h, w)
    new_h, new_w = max(1, min(side, _round(h * factor))), max(1, min(side, _round(w * factor)))
    resample = SHRINK if factor <= 1.0 else ENLARGE
    resized = Image.fromarray(np.ascontiguousarray(ink)).resize((new_w, new_h), resample)
    out = np.zeros((side, side), dtype=np.float32)
    top, left = (side - new_h) // 2, (side - new_w) // 2
    out[top : top + new_h, left : left + new_w] = np.clip(np.asarray(resized), 0.0, 1.0)
    return out


def load_image(path: str | Path) -> np.ndarray:
    """Read a PNG/JPG/... file as ink (float32 (H, W), ink high); NnvizError if it can't be read."""
    path_text = str(path)
    try:
        with Image.open(path) as img:
            img.load()
            # Phone photos are often stored sideways with an EXIF rotation tag.
            oriented = ImageOps.exif_transpose(img)
            return to_ink(oriented)
    except FileNotFoundError as exc:
        raise NnvizError(f"{path_text}: no such file") from exc
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise NnvizError(f"{path_text}: not an image PIL can read") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        # Truncated or corrupt files surface as OSError/ValueError/SyntaxError from PIL.
        raise NnvizError(f"{path_text}: cannot read the image ({exc})") from exc
