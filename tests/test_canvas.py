"""The drawing canvas and the Draw panel, offscreen, with real mouse events, real MNIST
digits and the trained lenet sample."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QInputDevice,
    QPalette,
    QPointingDevice,
    QTabletEvent,
)
from PySide6.QtWidgets import QApplication

from nnviz.core.modelfile import load_model
from nnviz.core.preprocess import fit_to_square, preprocess_drawing
from nnviz.core.training import TrainConfig, Trainer
from nnviz.qt.canvas import CANVAS_SIDE, UNDO_LIMIT, grey_to_qimage
from nnviz.qt.panels.canvas import NO_INK, CanvasPanel
from nnviz.qt.panels.input import InputPanel
from nnviz.state import Session

pytestmark = pytest.mark.usefixtures("row_major_images")

LENET = str(importlib.resources.files("nnviz.sample_models") / "lenet.nnviz")
LEFT, RIGHT = Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton


def _show(qtbot, panel, size=(900, 600)):
    qtbot.addWidget(panel)
    panel.resize(*size)
    panel.show()
    qtbot.waitExposed(panel)
    panel.activateWindow()  # shortcuts only fire in the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is panel.window(), timeout=2000)
    panel.refresh()
    return panel


@pytest.fixture
def shown(qtbot):
    """A Draw panel on screen over a session (lenet unless told): ``shown(session=None)``."""
    panels = []

    def show(session=None, size=(900, 600)):
        if session is None:
            session = Session()
            session.set_model(load_model(LENET))
        panels.append(_show(qtbot, CanvasPanel(session), size))
        return panels[-1]

    yield show
    for panel in panels:
        panel.close_panel()


def _at(canvas, x, y) -> QPoint:
    """Canvas pixel (x, y) in the widget's coordinates."""
    square = canvas.square()
    scale = square.width() / CANVAS_SIDE
    return QPoint(round(square.left() + x * scale), round(square.top() + y * scale))


def stroke(qtbot, canvas, points, button=LEFT, release=True, moves=12):
    """Drag through ``points`` (canvas pixels) with real mouse events."""
    qtbot.mousePress(canvas, button, pos=_at(canvas, *points[0]))
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        for t in np.linspace(0, 1, moves + 1)[1:]:
            qtbot.mouseMove(canvas, _at(canvas, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t))
    if release:
        qtbot.mouseRelease(canvas, button, pos=_at(canvas, *points[-1]))


def _thickness(column: np.ndarray) -> int:
    return int((column > 0.5).sum())


def _errors(session):
    seen = []
    session.error.connect(seen.append)
    return seen


def _correctly_read_digits(session, data, count):
    """Indices of test digits the loaded model reads right as they are in MNIST."""
    found = []
    for i in range(len(data.test)):
        session.set_input(data.test.images[i] / 255.0, None, "probe")
        if int(np.argmax(session.probabilities())) == int(data.test.labels[i]):
            found.append(i)
            if len(found) == count:
                return found
    raise AssertionError("the lenet sample reads almost no digits right")


# ----- drawing ---------------------------------------------------------------------------
def test_a_vertical_stroke_is_read_as_a_one(qtbot, shown):
    panel = shown()
    s, canvas = panel.session, panel.canvas
    assert panel.bars.message == NO_INK and canvas.is_empty()
    stroke(qtbot, canvas, [(140, 40), (140, 240)])
    ink = canvas.image_array()
    assert ink.dtype == np.float32 and ink.shape == (CANVAS_SIDE, CANVAS_SIDE)
    assert ink[140, 140] == 1.0 and ink[140, 60] == 0.0 and ink[20, 140] == 0.0
    assert panel.refresh()
    assert panel.predicted_class() == 1
    assert "Prediction: <b>1</b>" in panel.prediction.text()
    assert s.current_input.description == "your drawing" and s.current_input.label is None
    # The views get exactly the preprocessed drawing, and the bars are their prediction.
    np.testing.assert_array_equal(s.current_input.image, preprocess_drawing(ink).image)
    np.testing.assert_array_equal(panel.bars.probabilities, s.probabilities())
    assert panel.canvas._is_current and "your drawing" in panel.status.text()
    # The steps show the box around the stroke and the network's input.
    top, left, bottom, right = panel.preprocessed.bbox
    assert top < 40 < 240 < bottom and left < 140 < right and right - left < 40
    np.testing.assert_array_equal(panel.steps.final.array, s.current_input.image)
    # The ink picture is the drawing: bright on the stroke, black beside it.
    view = panel.steps.ink
    picture, square = view.grab().toImage(), view.square()

    def grey_at(row: float, col: float) -> int:
        x = square.left() + col / CANVAS_SIDE * square.width()
        y = square.top() + row / CANVAS_SIDE * square.height()
        return picture.pixelColor(int(x), int(y)).red()

    assert grey_at(140, 140) > 200 and grey_at(140, 60) == 0 and grey_at(140, 220) == 0


def test_clear_gives_no_ink_with_the_button_and_with_escape(qtbot, shown):
    panel = shown()
    canvas = panel.canvas
    for clear in ("button", "escape"):
        stroke(qtbot, canvas, [(80, 60), (200, 220)])
        panel.refresh()
        assert panel.bars.message == "" and panel.predicted_class() is not None
        if clear == "button":
            qtbot.mouseClick(panel.drawing_toolbar.widgetForAction(canvas.clear_action), LEFT)
        else:
            canvas.setFocus()
            qtbot.keyClick(canvas, Qt.Key.Key_Escape)
        assert canvas.is_empty()
        panel.refresh()
        assert panel.bars.message == NO_INK and panel.predicted_class() is None
        assert not panel.preprocessed.has_ink
        # The views follow the canvas: an empty input, said so, not the drawing that is gone.
        current = panel.session.current_input
        assert not current.image.any() and current.description == "your drawing (empty)"


def test_undo_and_redo_by_key_and_by_button(qtbot, shown):
    panel = shown()
    canvas = panel.canvas
    assert not canvas.undo_action.isEnabled() and not canvas.redo_action.isEnabled()
    stroke(qtbot, canvas, [(140, 40), (140, 240)])
    before = canvas.image_array()
    stroke(qtbot, canvas, [(60, 140), (220, 140)])
    after = canvas.image_array()
    assert not np.array_equal(before, after)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(canvas.image_array(), before)
    assert canvas.redo_action.isEnabled()
    panel.refresh()
    np.testing.assert_array_equal(
        panel.session.current_input.image, preprocess_drawing(before).image
    )
    qtbot.keyClick(
        canvas,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    np.testing.assert_array_equal(canvas.image_array(), after)
    assert not canvas.redo_action.isEnabled()
    # The toolbar's buttons do the same; undo twice goes back to the empty canvas.
    undo = panel.drawing_toolbar.widgetForAction(canvas.undo_action)
    qtbot.mouseClick(undo, LEFT)
    qtbot.mouseClick(undo, LEFT)
    assert canvas.is_empty() and not canvas.undo_action.isEnabled()
    qtbot.mouseClick(panel.drawing_toolbar.widgetForAction(canvas.redo_action), LEFT)
    np.testing.assert_array_equal(canvas.image_array(), before)
    # A new stroke after an undo drops what could have been redone.
    stroke(qtbot, canvas, [(40, 40), (60, 60)])
    assert not canvas.can_redo


def test_the_undo_history_is_bounded(qtbot, shown):
    canvas = shown().canvas
    for i in range(UNDO_LIMIT + 5):
        stroke(qtbot, canvas, [(10 + 4 * i, 20), (10 + 4 * i, 30)], moves=1)
    undone = 0
    while canvas.can_undo:
        canvas.undo()
        undone += 1
    assert undone == UNDO_LIMIT
    assert not canvas.is_empty()  # the oldest strokes can no longer be undone


def test_the_right_button_and_the_erase_toggle_rub_out(qtbot, shown):
    panel = shown()
    canvas = panel.canvas
    stroke(qtbot, canvas, [(40, 140), (240, 140)])
    stroke(qtbot, canvas, [(100, 60), (100, 220)], button=RIGHT)
    ink = canvas.image_array()
    assert ink[140, 100] == 0.0  # rubbed out where the right button crossed
    assert ink[140, 60] == 1.0 and ink[140, 200] == 1.0  # the rest of the line stays
    assert not ink[60:220, 100].any()  # and the eraser left no ink of its own
    panel.erase.trigger()  # the toolbar's Erase: the left button rubs out too
    assert panel.erase.isChecked()
    stroke(qtbot, canvas, [(180, 60), (180, 220)])
    assert canvas.image_array()[140, 180] == 0.0
    panel.erase.trigger()
    stroke(qtbot, canvas, [(180, 60), (180, 220)])
    assert canvas.image_array()[140, 180] == 1.0


def test_brush_size_sets_the_stroke_width(qtbot, shown):
    panel = shown()
    canvas = panel.canvas
    widths = {}
    for size in (8, 20, 44):
        canvas.clear()
        panel.brush.setValue(size)
        assert panel.brush_label.text() == f"{size} px" and canvas.brush_width == size
        stroke(qtbot, canvas, [(40, 140), (240, 140)])
        widths[size] = _thickness(canvas.image_array()[:, 140])
    for size, width in widths.items():
        assert abs(width - size) <= 2, widths


def test_tablet_pressure_scales_the_pen(qtbot, shown):
    panel = shown()
    canvas = panel.canvas
    pen = QPointingDevice(
        "test pen",
        1001,
        QInputDevice.DeviceType.Stylus,
        QPointingDevice.PointerType.Pen,
        QInputDevice.Capability.Position | QInputDevice.Capability.Pressure,
        1,
        2,
    )

    def tablet(kind, x, y, pressure):
        pos = QPointF(_at(canvas, x, y))
        buttons = LEFT if kind != QEvent.Type.TabletRelease else Qt.MouseButton.NoButton
        event = QTabletEvent(
            kind, pen, pos, QPointF(canvas.mapToGlobal(pos)), pressure,
            0.0, 0.0, 0.0, 0.0, 0.0, Qt.KeyboardModifier.NoModifier, LEFT, buttons,
        )  # fmt: skip
        QApplication.sendEvent(canvas, event)

    widths = []
    for pressure in (0.2, 1.0):
        canvas.clear()
        tablet(QEvent.Type.TabletPress, 40, 140, pressure)
        for x in range(50, 250, 10):
            tablet(QEvent.Type.TabletMove, x, 140, pressure)
        tablet(QEvent.Type.TabletRelease, 240, 140, pressure)
        widths.append(_thickness(canvas.image_array()[:, 140]))
    light, firm = widths
    assert light < firm
    assert abs(firm - 1.2 * canvas.brush_width) <= 2 and abs(light - 0.56 * canvas.brush_width) <= 2


# ----- coalescing and following the session ---------------------------------------------
def test_one_input_per_frame_however_many_moves_and_live_during_the_stroke(qtbot, shown):
    panel = shown()
    s, canvas = panel.session, panel.canvas
    changes = []
    s.input_changed.connect(lambda: changes.append(s.current_input))
    stroke(qtbot, canvas, [(140, 40), (140, 150)], release=False, moves=30)
    assert changes == []  # 30 moves, no forward pass yet
    assert panel.refresh()
    assert len(changes) == 1
    mid = s.current_input.image.copy()
    for y in range(150, 241, 10):
        qtbot.mouseMove(canvas, _at(canvas, 140, y))
    assert panel.refresh()  # the prediction follows while the button is still down
    assert len(changes) == 2 and not np.array_equal(mid, s.current_input.image)
    with qtbot.waitSignal(canvas.stroke_finished):
        qtbot.mouseRelease(canvas, LEFT, pos=_at(canvas, 140, 240))
    assert not panel.refresh() and len(changes) == 2  # nothing new: no forward pass


def test_drawing_and_picking_a_sample_take_turns_as_the_current_input(qtbot, shown, data):
    s = Session()
    s.set_model(load_model(LENET))
    picker = _show(qtbot, InputPanel(s), (300, 480))
    s.set_data(data, "mnist")
    panel = shown(s)
    try:
        assert s.current_input.description == "MNIST test #0"
        panel.refresh()
        assert "MNIST test #0" in panel.status.text() and panel.bars.message == NO_INK
        assert panel.use_sample_action.isEnabled()

        stroke(qtbot, panel.canvas, [(140, 40), (140, 240)])
        panel.refresh()
        assert s.current_input.description == "your drawing"
        picker.refresh()
        assert picker.description.text() == "your drawing"
        assert not panel.use_sample_action.isEnabled() and not panel.show_mine.isVisible()

        qtbot.mouseClick(picker.next, LEFT)  # picking a sample makes it current
        assert s.current_input.description == "MNIST test #1"
        panel.refresh()
        assert not panel.drawing_is_current() and not panel.canvas._is_current
        assert "MNIST test #1" in panel.status.text()
        assert panel.show_mine.isVisible() and panel.predicted_class() is None
        panel.canvas.clear()  # wiping the canvas leaves the picked sample on show
        panel.refresh()
        assert s.current_input.description == "MNIST test #1"
        assert panel.bars.message == NO_INK and not panel.show_mine.isVisible()
        panel.canvas.undo()  # the drawing is back, and takes the views again
        panel.refresh()
        assert s.current_input.description == "your drawing" and panel.predicted_class() == 1
        qtbot.mouseClick(picker.next, LEFT)
        panel.refresh()
        assert s.current_input.description == "MNIST test #2" and panel.show_mine.isVisible()
        qtbot.mouseClick(panel.show_mine, LEFT)
        panel.refresh()
        assert s.current_input.description == "your drawing" and panel.predicted_class() == 1

        right = _correctly_read_digits(s, data, 1)[0]
        picker.pick(right)
        panel.refresh()
        panel.use_sample_action.trigger()  # the sample onto the canvas, its label with it
        panel.refresh()
        label = int(data.test.labels[right])
        assert s.current_input.description == f"your drawing (from MNIST test #{right})"
        assert s.current_input.label == label and panel.predicted_class() == label
        stroke(qtbot, panel.canvas, [(20, 20), (30, 30)])  # an edit: the label no longer holds
        panel.refresh()
        assert s.current_input.label is None and s.current_input.description == "your drawing"
    finally:
        picker.close_panel()


def test_the_prediction_improves_as_training_goes_on(qtbot, shown, data):
    s = Session()
    s.set_model(load_model("mlp-3b1b"))  # untrained: a near-uniform guess
    s.set_data(data, "mnist")
    panel = shown(s)
    right = data.test.images[0]
    panel.canvas.set_ink(fit_to_square(right / 255.0, CANVAS_SIDE))
    panel.refresh()
    before = panel.bars.probabilities.copy()
    trainer = Trainer(s.train_model, data, TrainConfig(batch_size=32, epochs=3, lr=0.05))
    trainer.run()
    s.publish(trainer.latest_snapshot(), [])
    assert panel.stale and panel.refresh()
    after = panel.bars.probabilities
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(after, s.probabilities())
    assert after[data.test.labels[0]] > before[data.test.labels[0]]


# ----- pictures in and out ---------------------------------------------------------------
def test_an_mnist_digit_saved_as_png_is_read_as_its_label(qtbot, shown, data, tmp_path):
    panel = shown()
    s = panel.session
    for n, i in enumerate(_correctly_read_digits(s, data, 4)):
        digit = data.test.images[i]
        path = tmp_path / f"digit{i}.png"
        # Half of them dark ink on white paper, as a scan would be.
        Image.fromarray(digit if n % 2 else 255 - digit).save(path)
        assert panel.open_image_file(str(path))
        panel.refresh()
        assert panel.predicted_class() == data.test.labels[i], i
        assert s.current_input.description == f"your drawing (from digit{i}.png)"
    panel.canvas.undo()  # a loaded picture is undoable like a stroke
    panel.refresh()
    assert s.current_input.description == "your drawing"


def test_saving_writes_a_png_that_reopens_to_the_same_drawing(qtbot, shown, tmp_path):
    panel = shown()
    canvas = panel.canvas
    stroke(qtbot, canvas, [(70, 60), (200, 70), (110, 230)])
    drawn = canvas.image_array()
    path = tmp_path / "mine.png"
    assert panel.save_drawing_to(path)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.png"]  # no temporary file left
    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == "L" and img.size == (CANVAS_SIDE, CANVAS_SIDE)
    canvas.clear()
    assert panel.open_image_file(str(path))
    np.testing.assert_array_equal(canvas.image_array(), drawn)


def test_unreadable_pictures_give_a_message_and_leave_the_drawing(qtbot, shown, tmp_path):
    panel = shown()
    errors = _errors(panel.session)
    stroke(qtbot, panel.canvas, [(140, 40), (140, 240)])
    drawn = panel.canvas.image_array()
    fake = tmp_path / "seven.png"
    fake.write_text("not a picture")
    assert not panel.open_image_file(str(fake))
    assert not panel.save_drawing_to(tmp_path / "no such folder" / "x.png")
    QGuiApplication.clipboard().setText("just words")
    assert not panel.paste()
    assert len(errors) == 3
    assert errors[0].startswith("Cannot open the image:") and "seven.png" in errors[0]
    assert "could not save" in errors[1] and "no image to paste" in errors[2]
    np.testing.assert_array_equal(panel.canvas.image_array(), drawn)
    assert panel.refresh() and panel.predicted_class() == 1  # still working


def _drop(canvas, mime):
    pos = _at(canvas, 140, 140)
    enter = QDragEnterEvent(
        pos, Qt.DropAction.CopyAction, mime, LEFT, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(canvas, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(
        QPointF(pos), Qt.DropAction.CopyAction, mime, LEFT, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(canvas, drop)
    return drop.isAccepted()


def test_images_dropped_or_pasted_land_on_the_canvas(qtbot, shown, data, tmp_path):
    panel = shown()
    s, canvas = panel.session, panel.canvas
    i = _correctly_read_digits(s, data, 1)[0]
    digit = data.test.images[i]
    path = tmp_path / "dropped.png"
    Image.fromarray(digit).save(path)
    expected = fit_to_square(digit / 255.0, CANVAS_SIDE)

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    assert _drop(canvas, mime)
    np.testing.assert_allclose(canvas.image_array(), expected, atol=1 / 255)
    panel.refresh()
    assert panel.predicted_class() == data.test.labels[i]

    model = QMimeData()  # a model file is not for the canvas: the main window takes it
    model.setUrls([QUrl.fromLocalFile(LENET)])
    canvas.clear()
    assert not _drop(canvas, model) and canvas.is_empty()

    picture = QMimeData()  # image data, as from a browser
    picture.setImageData(grey_to_qimage(255 - digit))
    assert _drop(canvas, picture)
    np.testing.assert_allclose(canvas.image_array(), expected, atol=1 / 255)

    canvas.clear()
    QGuiApplication.clipboard().setImage(grey_to_qimage(digit))
    assert panel.paste()
    np.testing.assert_allclose(canvas.image_array(), expected, atol=1 / 255)
    panel.refresh()
    assert s.current_input.description == "your drawing (from the clipboard)"


# ----- look and helpers ------------------------------------------------------------------
def test_dark_palette_and_a_narrow_dock(qtbot, shown):
    panel = shown(size=(320, 820))
    assert panel.body.direction().name == "TopToBottom"
    assert panel.canvas.width() <= 320 and panel.canvas.height() >= 250
    stroke(qtbot, panel.canvas, [(140, 40), (140, 240)])
    dark = QPalette(panel.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor(30, 30, 34))
    dark.setColor(QPalette.ColorRole.WindowText, QColor(225, 225, 228))
    panel.setPalette(dark)
    assert panel.refresh()
    assert panel.bars.background == QColor(30, 30, 34)
    assert panel.bars.text_colour == QColor(225, 225, 228)
    bars = panel.bars.grab().toImage()
    assert bars.pixelColor(2, 2) == QColor(30, 30, 34)  # painted in the dark theme's colours
    assert not panel.grab().isNull()
    panel.resize(900, 600)
    qtbot.waitUntil(lambda: panel.body.direction().name == "LeftToRight", timeout=2000)


def _inside(widget, panel):
    """``widget``'s rectangle in the panel's coordinates lies within the panel."""
    top_left = widget.mapTo(panel, widget.rect().topLeft())
    bottom_right = widget.mapTo(panel, widget.rect().bottomRight())
    return panel.rect().contains(top_left) and panel.rect().contains(bottom_right)


def _reads_well(panel):
    """Nothing cut off or overlapping: captions under their pictures on one line, in the
    same wording, and the status line whole."""
    forms = []
    for view, caption in zip(panel.steps.views, panel.steps.captions, strict=True):
        assert abs(view.width() - view.height()) <= 1  # square, no blank bands
        assert (
            caption.mapTo(panel, caption.rect().topLeft()).y()
            >= view.mapTo(panel, view.rect().bottomLeft()).y()
        )
        text = caption.text()
        assert caption.fontMetrics().horizontalAdvance(text) <= caption.width(), text
        assert caption.height() < 2 * caption.fontMetrics().lineSpacing()  # one line
        forms.append(text[0].isdigit())
    assert len(set(forms)) == 1  # all numbered, or none
    status = panel.status
    assert status.fits(status.text()) and _inside(status, panel)
    assert status.height() < 2 * status.fontMetrics().lineSpacing()
    assert panel.bars.height() >= 150 and _inside(panel.bars, panel)
    if panel.show_mine.isVisible():
        assert _inside(panel.show_mine, panel)


@pytest.mark.parametrize("size", [(560, 400), (520, 400), (600, 350)])
def test_the_draw_dock_beside_the_views_reads_well(qtbot, shown, data, size):
    """In the main window the Draw dock is about 560 x 400: the canvas with the steps and
    bars beside it, every caption and the status line whole."""
    s = Session()
    s.set_model(load_model(LENET))
    panel = shown(s, size=size)
    stroke(qtbot, panel.canvas, [(140, 40), (140, 240)])
    panel.refresh()
    assert panel.body.direction().name == "LeftToRight"
    assert panel.canvas.height() >= 250
    _reads_well(panel)
    assert panel.status.text() == "Every view shows <b>your drawing</b>."
    s.set_input(data.test.images[0] / 255.0, 7, "MNIST test #0")  # a sample takes the views
    panel.refresh()
    qtbot.wait(10)  # "Show my drawing" appears: the status line gets narrower
    _reads_well(panel)
    assert "MNIST test #0" in panel.status.text() and panel.show_mine.isVisible()
    assert panel.status.toolTip() == "The views show MNIST test #0. Draw here to show yours."


def test_a_narrow_dock_shortens_the_captions_and_the_status(qtbot, shown, data):
    panel = shown(size=(300, 720))
    stroke(qtbot, panel.canvas, [(140, 40), (140, 240)])
    panel.refresh()
    narrow_captions = [c.text() for c in panel.steps.captions]
    description = "MNIST test #9999 of a long description that cannot fit"
    panel.session.set_input(data.test.images[0] / 255.0, 7, description)
    panel.refresh()
    qtbot.wait(10)
    assert panel.body.direction().name == "TopToBottom"
    _reads_well(panel)
    # The full sentence does not fit: a shorter one (elided at the end) and a tooltip.
    assert not panel.status.text().startswith("The views show")
    assert panel.status.toolTip() == f"The views show {description}. Draw here to show yours."
    panel.resize(1300, 650)  # a floating dock: room for the details in the captions
    qtbot.waitUntil(lambda: panel.body.direction().name == "LeftToRight", timeout=2000)
    qtbot.wait(50)  # the new direction is laid out on the next turn of the event loop
    assert [c.text() for c in panel.steps.captions] != narrow_captions
    top, left, bottom, right = panel.preprocessed.bbox
    assert panel.steps.captions[0].text() == f"1. Ink {right - left}×{bottom - top}"
    assert panel.steps.captions[3].text() == "4. Input 28×28"
    _reads_well(panel)


def test_mnist_digits_survive_the_trip_through_the_canvas(data):
    """A sample copied onto the canvas (enlarged 10x, smoothly) reads as the sample does."""
    digits, labels = data.test.images[:300], data.test.labels[:300]
    direct = np.stack([preprocess_drawing(d).image for d in digits])
    via = np.stack(
        [preprocess_drawing(fit_to_square(d / 255.0, CANVAS_SIDE)).image for d in digits]
    )
    corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(direct, via, strict=True)]
    assert np.mean(corr) > 0.93  # a little softer, never another digit
    model = load_model(LENET).module
    with torch.inference_mode():
        read_direct = model(torch.from_numpy(direct).unsqueeze(1)).argmax(1).numpy()
        read_via = model(torch.from_numpy(via).unsqueeze(1)).argmax(1).numpy()
    assert (read_via == labels).mean() >= (read_direct == labels).mean() - 0.01
    square = np.random.default_rng(0).random((CANVAS_SIDE, CANVAS_SIDE)).astype(np.float32)
    np.testing.assert_array_equal(fit_to_square(square, CANVAS_SIDE), square)
    wide = fit_to_square(np.ones((10, 40), np.float32), CANVAS_SIDE)
    assert wide[:, 0].sum() == 70 and not wide[:100].any()  # aspect kept, centred


def test_before_shift_is_the_frame_the_centre_of_mass_was_measured_in(data):
    pre = preprocess_drawing(data.test.images[3])
    frame = pre.before_shift()
    rows, cols = np.arange(28), np.arange(28)
    total = frame.sum()
    assert frame.sum(1) @ rows / total == pytest.approx(pre.centre_of_mass[0], abs=1e-4)
    assert frame.sum(0) @ cols / total == pytest.approx(pre.centre_of_mass[1], abs=1e-4)
    np.testing.assert_array_equal(np.roll(frame, pre.shift, axis=(0, 1)), pre.image)
    assert preprocess_drawing(np.zeros((28, 28))).before_shift() is None


def test_each_move_repaints_every_pixel_it_changes(qtbot, shown):
    # A mouse move repaints only its segment's neighbourhood; whatever it changed on the
    # canvas must lie inside what it repainted, or the screen would show stale ink.
    from PySide6.QtCore import QObject
    from PySide6.QtGui import QRegion

    panel = shown()
    canvas = panel.canvas

    class Painted(QObject):
        region = QRegion()
        on = False

        def eventFilter(self, watched, event):  # noqa: N802 (Qt)
            if self.on and event.type() == QEvent.Type.Paint:
                self.region = self.region.united(event.region())
            return False

    painted = Painted()
    canvas.installEventFilter(painted)
    qtbot.mousePress(canvas, LEFT, pos=_at(canvas, 60, 60))
    qtbot.wait(20)
    partial = 0
    for x, y in [(90, 70), (130, 80), (170, 110), (160, 160), (130, 200), (120, 230)]:
        before = canvas.grab().toImage()
        painted.region, painted.on = QRegion(), True
        qtbot.mouseMove(canvas, _at(canvas, x, y))
        qtbot.wait(20)  # the repaint it asked for
        painted.on = False
        after = canvas.grab().toImage()
        changed = [
            QPoint(px, py)
            for py in range(0, after.height(), 2)
            for px in range(0, after.width(), 2)
            if before.pixel(px, py) != after.pixel(px, py)
        ]
        assert changed, "the move drew nothing"
        assert all(painted.region.contains(p) for p in changed)
        partial += painted.region.boundingRect().width() < canvas.width() / 2
    assert partial >= 4  # most moves repainted a small part, not the whole canvas
    qtbot.mouseRelease(canvas, LEFT, pos=_at(canvas, 120, 230))
