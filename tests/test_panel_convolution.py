"""The convolution playground panel, offscreen, on real MNIST digits with real key presses."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QPalette

from nnviz.core.kernels import KERNELS, playground
from nnviz.core.modelfile import load_model
from nnviz.qt.panels.convolution import CUSTOM, HOVER_HINT, NO_INPUT, ConvolutionPanel
from nnviz.state import Session

pytestmark = pytest.mark.usefixtures("row_major_images")

LENET = str(importlib.resources.files("nnviz.sample_models") / "lenet.nnviz")


@pytest.fixture
def panel(open_session, show_panel, data):
    """The panel on screen at the insides dock's size, over lenet and MNIST test #0."""
    return show_panel(ConvolutionPanel, open_session(LENET, data, 0))


def _assert_shows(panel, image, kernel):
    """The four pictures are exactly the input and ``playground(image, kernel)``."""
    expected = playground(image, kernel)
    shown = [p.image.image for p in panel.pictures]
    np.testing.assert_array_equal(shown[0], image)
    for got, want in zip(shown[1:], expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert shown[3].shape == (14, 14)
    # One colour scale for the three stages, symmetric about zero and holding every value.
    levels = [tuple(float(v) for v in p.image.levels) for p in panel.pictures]
    assert levels[0] == (0.0, 1.0)
    lo, hi = levels[1]
    assert lo == -hi and hi >= np.abs(expected.conv).max() and levels[1] == levels[2] == levels[3]
    # The pooled map is drawn as large as the others: its pixels show as 2x2 blocks.
    sizes = {(p.image.boundingRect().width() * p.image.transform().m11()) for p in panel.pictures}
    assert sizes == {28.0}
    return expected


def test_every_preset_shows_exactly_the_playground_of_the_current_input(panel):
    image = panel.session.current_input.image
    assert panel.preset_choice.currentText() == "Vertical edges"
    for name, kernel in KERNELS.items():
        panel.preset_choice.setCurrentText(name)
        assert panel.refresh()
        np.testing.assert_array_equal(panel.kernel, kernel)
        _assert_shows(panel, image, kernel)
        grid = np.array([[cell.value() for cell in row] for row in panel.cells])
        np.testing.assert_allclose(grid, kernel, atol=5e-4)  # shown to 3 decimals
    # An edge kernel's output has both signs; ReLU keeps only the positive side.
    panel.preset_choice.setCurrentText("Sobel vertical")
    panel.refresh()
    conv, relu = panel.conv_picture.image.image, panel.relu_picture.image.image
    assert conv.min() < -1 and conv.max() > 1
    assert relu.min() == 0 and np.array_equal(relu > 0, conv > 0)
    assert "sums to 0" in panel.explanation.text()
    assert f"{conv.min():+.2f} to {conv.max():+.2f}" in panel.conv_picture.explanation.text()


def test_typing_into_the_grid_makes_a_custom_kernel(panel, qtbot):
    image = panel.session.current_input.image
    panel.preset_choice.setCurrentText("Box blur")
    panel.refresh()
    centre = panel.cells[1][1]
    centre.setFocus()
    centre.selectAll()
    qtbot.keyClicks(centre, "-2.5")
    qtbot.keyClick(centre, Qt.Key.Key_Return)
    assert panel.preset_choice.currentText() == CUSTOM
    expected = KERNELS["Box blur"].copy()
    expected[1, 1] = -2.5
    # The eight untouched weights keep their exact value (1/9), not the shown 0.111.
    np.testing.assert_array_equal(panel.kernel, expected)
    assert panel.stale and panel.refresh()
    result = _assert_shows(panel, image, expected)
    assert result.conv.min() < 0  # the edited centre made the ink negative
    assert "sums to -1.61" in panel.explanation.text()  # 8/9 - 2.5
    # Picking "Custom" again changes nothing; a preset replaces the edit.
    panel.preset_choice.setCurrentText(CUSTOM)
    np.testing.assert_array_equal(panel.kernel, expected)
    panel.preset_choice.setCurrentText("Identity")
    panel.refresh()
    assert panel.cells[1][1].value() == 1.0
    _assert_shows(panel, image, KERNELS["Identity"])
    np.testing.assert_array_equal(panel.conv_picture.image.image, image)


def test_it_follows_the_current_input(panel, data, show_digit):
    s = panel.session
    before = panel.conv_picture.image.image.copy()
    show_digit(s, data, 1)
    assert panel.stale and panel.refresh()
    _assert_shows(panel, s.current_input.image, KERNELS["Vertical edges"])
    assert not np.array_equal(before, panel.conv_picture.image.image)
    s.set_input(np.zeros((28, 28), np.float32), None, "your drawing (empty)")
    panel.refresh()
    assert not panel.conv_picture.image.image.any()  # nothing drawn, nothing found


def test_pointing_at_a_pixel_reads_it_and_marks_where_it_comes_from(panel, qtbot):
    panel.preset_choice.setCurrentText("Sobel horizontal")
    panel.refresh()
    qtbot.wait(50)  # let the views lay out before mapping positions
    conv = panel.conv_picture.image.image
    row, col = np.unravel_index(int(np.argmax(conv)), conv.shape)
    picture = panel.conv_picture
    where = picture.view.mapFromScene(picture.box.mapViewToScene(QPointF(col + 0.5, row + 0.5)))

    def pointer_on_the_pixel():
        qtbot.mouseMove(picture.view.viewport(), where)
        return f"row {row}, col {col}" in panel.readout.text()

    qtbot.waitUntil(pointer_on_the_pixel, timeout=3000)
    assert f"value {conv[row, col]:+.3f}" in panel.readout.text()
    # The 3x3 input pixels it sums, the pixel itself, and the pooling block it falls in.
    rects = [p.marker.rect() for p in panel.pictures]
    assert (rects[0].x(), rects[0].y(), rects[0].width()) == (col - 1, row - 1, 3)
    assert (rects[1].x(), rects[1].y(), rects[1].width()) == (col, row, 1)
    assert (rects[3].x(), rects[3].y(), rects[3].width()) == (col // 2 * 2, row // 2 * 2, 2)
    # On the pooled map: the value of a 14x14 block, the max of its 2x2 of ReLU outputs.
    text = panel.point_at(panel.pool_picture, 2 * 5 + 1, 2 * 7)
    relu = panel.relu_picture.image.image
    assert "block row 5, col 7" in text
    assert f"{relu[10:12, 14:16].max():+.3f}" in text
    assert panel.relu_picture.marker.rect().topLeft() == QPointF(14, 10)

    margin = [QPoint(2, 2), QPoint(3, 3)]  # view coordinates below 0: off the picture

    def pointer_off_the_picture():
        # Moved again on each try (offscreen Qt can drop a move), never to the same spot.
        margin.reverse()
        qtbot.mouseMove(picture.view.viewport(), margin[0])
        return panel.readout.text() == HOVER_HINT

    qtbot.waitUntil(pointer_off_the_picture, timeout=3000)
    assert not panel.input_picture.marker.isVisible()


def test_without_an_input_it_says_what_to_do(qtbot, data, show_digit):
    s = Session()
    s.set_model(load_model("mlp-3b1b"))  # the playground needs no conv layer in the model
    panel = ConvolutionPanel(s)
    qtbot.addWidget(panel)
    panel.resize(600, 350)
    panel.show()
    try:
        assert panel.refresh()
        assert panel.message.isVisible() and panel.message.text() == NO_INPUT
        assert panel.result is None
        show_digit(s, data, 2)
        assert panel.refresh() and not panel.message.isVisible()
        _assert_shows(panel, s.current_input.image, KERNELS["Vertical edges"])
    finally:
        panel.close_panel()


def test_a_dark_palette_and_a_small_dock(panel, qtbot):
    dark = QPalette(panel.palette())
    dark.setColor(QPalette.ColorRole.Window, QColor(40, 40, 44))
    dark.setColor(QPalette.ColorRole.WindowText, QColor(225, 225, 228))
    panel.setPalette(dark)
    panel.resize(600, 350)
    qtbot.wait(20)
    assert panel.refresh(force=True)
    assert panel.input_picture.view.backgroundBrush().color() == QColor(40, 40, 44)
    # Everything still on the panel: pictures of a usable size, texts not cut off.
    for picture in panel.pictures:
        assert picture.view.width() >= 100 and picture.view.height() >= 100
        label = picture.explanation
        needed = label.fontMetrics().boundingRect(
            0, 0, label.width(), 10_000, Qt.TextFlag.TextWordWrap, label.text()
        )
        assert needed.height() <= label.height()
        bottom = label.mapTo(panel, label.rect().bottomLeft()).y()
        assert bottom <= panel.height()
    assert panel.readout.mapTo(panel, panel.readout.rect().bottomLeft()).y() <= panel.height()
