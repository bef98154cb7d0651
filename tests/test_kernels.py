"""The convolution playground: presets checked against results worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from nnviz.core.errors import NnvizError
from nnviz.core.kernels import (
    KERNELS,
    convolve,
    max_pool2x2,
    playground,
    preset,
    relu,
)


@pytest.fixture
def vertical_edge():
    """6x6: three dark columns, then three bright ones (an edge between columns 2 and 3)."""
    image = np.zeros((6, 6), dtype=np.float32)
    image[:, 3:] = 1.0
    return image


def test_identity_returns_the_image():
    image = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    np.testing.assert_array_equal(convolve(image, KERNELS["Identity"]), image)


@pytest.mark.parametrize("name", ["Box blur", "Gaussian blur", "Sharpen", "Emboss", "Identity"])
def test_kernels_that_sum_to_one_keep_a_constant_image_inside(name):
    image = np.full((7, 9), 0.6, dtype=np.float32)
    out = convolve(image, KERNELS[name])
    np.testing.assert_allclose(out[1:-1, 1:-1], 0.6, rtol=1e-6)


def test_box_blur_counts_the_zero_padding_at_the_rim():
    out = convolve(np.ones((5, 5), dtype=np.float32), KERNELS["Box blur"])
    # A corner sees 4 of its 9 neighbours inside the image, an edge pixel 6.
    assert out[0, 0] == pytest.approx(4 / 9)
    assert out[0, 2] == pytest.approx(6 / 9)
    assert out[2, 0] == pytest.approx(6 / 9)
    assert out[2, 2] == pytest.approx(1.0)


def test_vertical_edge_kernel_finds_the_edge(vertical_edge):
    # Prewitt [-1 0 1] on each of 3 rows: +1 per row whose right neighbour is bright
    # and left one dark; 2 rows at the top and bottom (the third is padding); the right
    # rim sees bright on the left and padding (0) on the right.
    inner = [0, 0, 3, 3, 0, -3]
    rim = [0, 0, 2, 2, 0, -2]
    expected = np.array([rim, inner, inner, inner, inner, rim], dtype=np.float32)
    np.testing.assert_array_equal(convolve(vertical_edge, KERNELS["Vertical edges"]), expected)


def test_sobel_weights_the_middle_row_twice(vertical_edge):
    inner = [0, 0, 4, 4, 0, -4]  # 1 + 2 + 1
    rim = [0, 0, 3, 3, 0, -3]  # the middle row and one outer row
    expected = np.array([rim, inner, inner, inner, inner, rim], dtype=np.float32)
    np.testing.assert_array_equal(convolve(vertical_edge, KERNELS["Sobel vertical"]), expected)


def test_horizontal_edge_kernels_see_no_vertical_edge(vertical_edge):
    for name in ("Horizontal edges", "Sobel horizontal"):
        out = convolve(vertical_edge, KERNELS[name])
        # Rows 1-4 see the same column above and below: nothing changes downwards.
        np.testing.assert_array_equal(out[1:-1], 0)
        # The top row's upper neighbours are padding, so bright columns look like an edge.
        assert out[0, 4] > 0 and out[-1, 4] < 0


def test_laplacian_is_zero_on_a_ramp_and_marks_a_dot():
    ramp = np.tile(np.arange(6, dtype=np.float32), (6, 1))
    np.testing.assert_array_equal(convolve(ramp, KERNELS["Laplacian edges"])[1:-1, 1:-1], 0)
    dot = np.zeros((5, 5), dtype=np.float32)
    dot[2, 2] = 1
    out = convolve(dot, KERNELS["Laplacian edges"])
    assert out[2, 2] == 4
    assert out[1, 2] == out[3, 2] == out[2, 1] == out[2, 3] == -1
    assert out[1, 1] == 0


def test_convolve_is_cross_correlation_like_torch():
    rng = np.random.default_rng(1)
    image = rng.random((28, 28), dtype=np.float32)
    kernel = rng.normal(size=(3, 3)).astype(np.float32)  # not symmetric: a flip would show
    expected = F.conv2d(
        torch.from_numpy(image)[None, None], torch.from_numpy(kernel)[None, None], padding=1
    )[0, 0].numpy()
    np.testing.assert_allclose(convolve(image, kernel), expected, atol=1e-5)


def test_relu_and_max_pooling_by_hand():
    values = np.array(
        [[1, -2, 3, 0], [-1, 5, -3, 2], [0, 0, -1, -2], [7, -8, -4, -5]], dtype=np.float32
    )
    np.testing.assert_array_equal(relu(values), np.clip(values, 0, None))
    np.testing.assert_array_equal(max_pool2x2(values), [[5, 3], [7, -1]])
    # An odd size drops its last row and column, as torch's max_pool2d does.
    odd = np.arange(25, dtype=np.float32).reshape(5, 5)
    np.testing.assert_array_equal(max_pool2x2(odd), [[6, 8], [16, 18]])


def test_playground_on_a_real_digit(small_mnist):
    digit = small_mnist.test.images[0]  # uint8, scaled to [0, 1] by the playground
    conv, rectified, pooled = playground(digit, KERNELS["Vertical edges"])
    assert conv.shape == rectified.shape == (28, 28) and pooled.shape == (14, 14)
    assert conv.min() < 0 < conv.max()  # both sides of each stroke
    np.testing.assert_array_equal(rectified, np.maximum(conv, 0))
    np.testing.assert_array_equal(pooled, rectified.reshape(14, 2, 14, 2).max(axis=(1, 3)))
    assert conv.max() <= 3.0  # three rows of at most 1 - 0


def test_presets_are_textbook_and_protected():
    assert all(k.shape == (3, 3) and k.dtype == np.float32 for k in KERNELS.values())
    for name in ("Box blur", "Gaussian blur"):
        assert KERNELS[name].sum() == pytest.approx(1.0)
    for name in ("Horizontal edges", "Vertical edges", "Laplacian edges", "Sobel vertical"):
        assert KERNELS[name].sum() == 0
    with pytest.raises(ValueError):
        KERNELS["Sharpen"][1, 1] = 0
    edited = preset("Sharpen")
    edited[1, 1] = 9
    assert KERNELS["Sharpen"][1, 1] == 5


@pytest.mark.parametrize(
    ("image", "kernel", "words"),
    [
        (np.zeros((28, 28)), np.ones((2, 2)), "odd side"),
        (np.zeros((28, 28)), [[0, 0, 0], [0, np.nan, 0], [0, 0, 0]], "finite"),
        (np.zeros((28, 28)), "abc", "grid of numbers"),
        (np.zeros((2, 28, 28)), np.eye(3), "one grey image"),
        (np.full((4, 4), np.inf), np.eye(3), "finite"),
    ],
)
def test_bad_input_gets_a_clear_message(image, kernel, words):
    with pytest.raises(NnvizError, match=words):
        convolve(image, kernel)


def test_unknown_preset_names_the_presets():
    with pytest.raises(NnvizError, match="Sobel vertical"):
        preset("sobel")
