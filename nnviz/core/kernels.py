"""The convolution playground: one 3x3 kernel over a drawing, then ReLU, then 2x2 max pooling.

This is what one filter of a CNN's first layer does, with a kernel a person picks or
types in. ``convolve`` is a cross-correlation (the kernel is NOT flipped), the same
operation as ``torch.nn.functional.conv2d`` and every deep-learning "convolution", so a
kernel drawn here behaves as the same numbers would in a conv layer's weights.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from nnviz.core.errors import NnvizError


def _frozen(rows: list[list[float]], scale: float = 1.0) -> np.ndarray:
    kernel = np.array(rows, dtype=np.float32) * np.float32(scale)
    kernel.setflags(write=False)  # a preset is shared: edit a copy (see ``preset``)
    return kernel


# The textbook 3x3 kernels. Sources: Gonzalez & Woods, "Digital Image Processing"
# (4th ed.), ch. 3 (box, Gaussian, Laplacian, sharpening) and ch. 10 (Prewitt and Sobel
# edge operators); the emboss kernel is the usual one from the "Kernel (image
# processing)" article on Wikipedia. Edge kernels are written for cross-correlation:
# "Vertical edges" responds positively where the image gets brighter to the right,
# "Horizontal edges" where it gets brighter downwards.
KERNELS: dict[str, np.ndarray] = {
    "Identity": _frozen([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
    "Box blur": _frozen([[1, 1, 1], [1, 1, 1], [1, 1, 1]], 1 / 9),
    "Gaussian blur": _frozen([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 1 / 16),
    "Sharpen": _frozen([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "Horizontal edges": _frozen([[-1, -1, -1], [0, 0, 0], [1, 1, 1]]),  # Prewitt
    "Vertical edges": _frozen([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]),  # Prewitt
    # The negative Laplacian: positive on the bright side of an edge, so ReLU keeps
    # the inside rim of a stroke (the plain Laplacian would keep the outside).
    "Laplacian edges": _frozen([[0, -1, 0], [-1, 4, -1], [0, -1, 0]]),
    "Sobel horizontal": _frozen([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
    "Sobel vertical": _frozen([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    "Emboss": _frozen([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
}


class Playground(NamedTuple):
    """The three stages of one filter, each float32: conv (H, W), ReLU (H, W), pooled (H/2, W/2)."""

    conv: np.ndarray
    relu: np.ndarray
    pooled: np.ndarray


def preset(name: str) -> np.ndarray:
    """A writable copy of a preset, to start an edited kernel from."""
    try:
        return KERNELS[name].copy()
    except KeyError:
        raise NnvizError(
            f"no kernel preset named {name!r}; choose one of {', '.join(KERNELS)}"
        ) from None


def _image(image: Any) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr / np.float32(255)
    if arr.ndim == 3 and arr.shape[0] == 1:  # one channel, as a model's input is
        arr = arr[0]
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise NnvizError(f"the playground takes one grey image (H, W), not shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise NnvizError("the image must hold finite numbers")
    return arr.astype(np.float32)


def _kernel(values: Any) -> np.ndarray:
    try:
        k = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise NnvizError("a kernel must be a grid of numbers") from None
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
        raise NnvizError(f"a kernel must be square with an odd side (3x3), not {k.shape}")
    if not np.isfinite(k).all():
        raise NnvizError("every kernel value must be a finite number")
    return k


def convolve(image: Any, kernel: Any) -> np.ndarray:
    """Cross-correlate ``image`` (H, W) with an odd square ``kernel``: same size, zero padding.

    ``out[i, j] = sum(kernel[a, b] * image[i + a - r, j + b - r])`` with r the kernel's
    radius and pixels outside the image counted as 0, exactly as
    ``F.conv2d(x, k, padding=r)`` computes it.
    """
    img, k = _image(image), _kernel(kernel)
    r = k.shape[0] // 2
    height, width = img.shape
    padded = np.pad(img, r)
    out = np.zeros_like(img)
    # One shifted copy of the image per kernel value: 9 vector operations for a 3x3.
    for a in range(k.shape[0]):
        for b in range(k.shape[1]):
            if k[a, b] != 0:
                out += k[a, b] * padded[a : a + height, b : b + width]
    return out


def relu(values: np.ndarray) -> np.ndarray:
    """max(0, x), element by element, as a new float32 array."""
    return np.maximum(np.asarray(values, dtype=np.float32), np.float32(0))


def max_pool2x2(values: np.ndarray) -> np.ndarray:
    """The largest value of each 2x2 block; an odd last row or column is dropped, as in torch."""
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim != 2 or min(arr.shape) < 2:
        raise NnvizError(f"2x2 max pooling needs an image of at least 2x2, not {arr.shape}")
    h, w = arr.shape[0] // 2 * 2, arr.shape[1] // 2 * 2
    return arr[:h, :w].reshape(h // 2, 2, w // 2, 2).max(axis=(1, 3))


def playground(image: Any, kernel: Any) -> Playground:
    """The filter's output on ``image``, after ReLU, and after 2x2 max pooling."""
    conv = convolve(image, kernel)
    rectified = relu(conv)
    return Playground(conv, rectified, max_pool2x2(rectified))
