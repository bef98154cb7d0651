"""The Draw panel: draw a digit and watch the model read it, live, while it trains.

What is drawn becomes the current input of every view (``session.set_input``), once a
frame however fast the pointer moves: the canvas only raises a flag, and ``redraw``
(called by the main window's frame timer) preprocesses the drawing and sets the input
once. Picking a sample in the Input panel makes that sample current instead; the
canvas keeps the drawing, its frame dims and the status line says what the views
show, until the user draws again, presses "Show my drawing", or "Use this sample"
copies the sample onto the canvas. The prediction comes from the Session's shared,
cached ``probabilities()`` on the views' copy of the weights, so it follows training.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import ClassVar

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication, QImage, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.errors import NnvizError
from nnviz.core.preprocess import Preprocessed, fit_to_square, load_image, preprocess_drawing
from nnviz.qt.canvas import CANVAS_SIDE, DEFAULT_BRUSH, MAX_BRUSH, MIN_BRUSH, DrawingCanvas
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.canvas_files import IMAGE_FILTER, mime_ink, qimage_to_ink, save_drawing
from nnviz.qt.panels.canvas_steps import FittingLabel, PreprocessingSteps
from nnviz.qt.panels.prediction_bars import PredictionBars
from nnviz.qt.panels.text_line import TextLine
from nnviz.state import CurrentInput, Session

DRAWING = "your drawing"  # the input's description while the drawing is current
NO_INK = "no ink"
UNLIMITED = 16777215  # Qt's QWIDGETSIZE_MAX


class CanvasPanel(Panel):
    """A canvas to draw a digit on, its preprocessing step by step, and the prediction."""

    title = "Draw"
    object_name = "canvas"
    area: ClassVar = Qt.DockWidgetArea.LeftDockWidgetArea

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self._drawing_dirty = False  # the canvas changed since the input was last set
        self._mine: CurrentInput | None = None  # the input this panel set last
        self._setting_input = False
        # Where a loaded picture came from and its true label, while it is unedited.
        self._origin: str | None = None
        self._label: int | None = None
        self._loading = False
        self.preprocessed: Preprocessed = preprocess_drawing(np.zeros((28, 28), np.float32))

        self.canvas = DrawingCanvas()
        self.steps = PreprocessingSteps()
        self.bars = PredictionBars()
        self.prediction = TextLine()
        self.status = FittingLabel()  # one line: a wrapped second line got cut off
        self.show_mine = QPushButton("Show my drawing")
        self.show_mine.setToolTip("Make the drawing the input of every view again")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 4)
        layout.setSpacing(4)
        self.drawing_toolbar = self._drawing_tools()
        self.picture_toolbar = self._picture_tools()
        layout.addWidget(self.drawing_toolbar)
        layout.addWidget(self.picture_toolbar)
        self.body = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.body.setSpacing(10)
        right = QVBoxLayout()
        right.setSpacing(6)
        right.addWidget(self.steps)
        right.addWidget(self.prediction)
        right.addWidget(self.bars, 1)
        self.body.addWidget(self.canvas, 3)
        self.body.addLayout(right, 2)
        layout.addLayout(self.body, 1)
        # Under everything, the whole width: what the views show, and the way back.
        status_row = QHBoxLayout()
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.show_mine)
        layout.addLayout(status_row)
        self.setMinimumSize(260, 320)

        self.canvas.drawing_changed.connect(self._drawing_changed)
        self.canvas.file_dropped.connect(self.open_image_file)
        self.canvas.image_dropped.connect(self._image_dropped)
        self.show_mine.clicked.connect(self.show_drawing)
        self.listen(session.input_changed, self._input_changed)
        self.listen(session.snapshot_changed, self.mark_stale)
        self.listen(session.interventions_changed, self.mark_stale)  # units switched off
        self.listen(session.model_loaded, self.mark_stale)
        self.bars.apply_palette(self.palette())

    # ----- construction ------------------------------------------------------------------
    def _toolbar(self) -> QToolBar:
        bar = QToolBar()
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        # No style sheet: a toolbar under one kept the colours it was polished with, and
        # after a switch to the dark theme its buttons' text stayed a dim grey.
        bar.setMovable(False)
        bar.layout().setContentsMargins(0, 0, 0, 0)
        return bar

    def _drawing_tools(self) -> QToolBar:
        bar = self._toolbar()
        self.brush = QSlider(Qt.Orientation.Horizontal)
        self.brush.setRange(MIN_BRUSH, MAX_BRUSH)
        self.brush.setValue(DEFAULT_BRUSH)
        self.brush.setMaximumWidth(120)
        self.brush.setToolTip("Brush size, in canvas pixels (the canvas is 280 wide)")
        self.brush_label = QLabel()
        self.brush_label.setMinimumWidth(self.brush_label.fontMetrics().horizontalAdvance("60 px"))
        self.brush.valueChanged.connect(self.set_brush_size)
        bar.addWidget(QLabel("Brush "))
        bar.addWidget(self.brush)
        bar.addWidget(self.brush_label)
        self.erase = QAction("Erase", self)
        self.erase.setCheckable(True)
        self.erase.setToolTip("The left button rubs out (the right button always does)")
        self.erase.toggled.connect(self._erase_toggled)
        bar.addAction(self.erase)
        bar.addSeparator()
        c = self.canvas
        c.undo_action.setToolTip("Undo the last stroke (Ctrl+Z)")
        c.redo_action.setToolTip("Redo (Ctrl+Shift+Z)")
        c.clear_action.setToolTip("Wipe the canvas (Esc)")
        for action in (c.undo_action, c.redo_action, c.clear_action):
            bar.addAction(action)
            self.addAction(action)  # the keys work wherever the focus is in the panel
        self.set_brush_size(DEFAULT_BRUSH)
        return bar

    def _picture_tools(self) -> QToolBar:
        bar = self._toolbar()
        self.open_action = QAction("Open image…", self)
        self.open_action.setToolTip("Put a PNG or JPG of a digit on the canvas")
        self.open_action.triggered.connect(self.open_dialog)
        self.paste_action = QAction("Paste", self)
        self.paste_action.setShortcut(QKeySequence.StandardKey.Paste)
        self.paste_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.paste_action.setToolTip("Put the image on the clipboard on the canvas (Ctrl+V)")
        self.paste_action.triggered.connect(self.paste)
        self.addAction(self.paste_action)
        self.use_sample_action = QAction("Use this sample", self)
        self.use_sample_action.setToolTip(
            "Copy the digit the views show now (picked in the Input panel) onto the canvas"
        )
        self.use_sample_action.triggered.connect(self.use_sample)
        self.save_action = QAction("Save drawing…", self)
        self.save_action.setToolTip("Save the canvas as a PNG")
        self.save_action.triggered.connect(self.save_dialog)
        for action in (self.open_action, self.paste_action, self.use_sample_action):
            bar.addAction(action)
        bar.addSeparator()
        bar.addAction(self.save_action)
        return bar

    # ----- what the user does ------------------------------------------------------------
    def set_brush_size(self, size: int) -> None:
        if self.brush.value() != size:
            self.brush.setValue(size)  # comes back through valueChanged
            return
        self.canvas.brush_width = float(size)
        self.brush_label.setText(f"{size} px")
        self.canvas.update()

    def _erase_toggled(self, on: bool) -> None:
        self.canvas.erasing = on

    def _drawing_changed(self) -> None:
        self._drawing_dirty = True
        if not self._loading:  # an edit: the picture is no longer the one loaded
            self._origin, self._label = None, None
        self.mark_stale()

    def show_drawing(self) -> None:
        """Make the drawing the current input again (after a sample was picked)."""
        self._drawing_dirty = True
        self.mark_stale()

    def use_sample(self) -> None:
        """Copy the current input (a sample from the data) onto the canvas."""
        current = self.session.current_input
        if current is not None and current is not self._mine:
            self._load_ink(current.image, current.description, current.label)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image of a digit", "", IMAGE_FILTER)
        if path:
            self.open_image_file(path)

    def open_image_file(self, path: str) -> bool:
        """Put an image file on the canvas; a file that can't be read is reported."""
        try:
            ink = load_image(path)
        except NnvizError as exc:
            self.session.report_error(f"Cannot open the image: {exc}")
            return False
        return self._load_ink(ink, Path(path).name)

    def paste(self) -> bool:
        try:
            ink, origin = mime_ink(QGuiApplication.clipboard().mimeData())
        except NnvizError as exc:
            self.session.report_error(f"Cannot paste: {exc}")
            return False
        return self._load_ink(ink, origin)

    def _image_dropped(self, image: QImage) -> None:
        try:
            ink = qimage_to_ink(image)
        except NnvizError as exc:
            self.session.report_error(f"Cannot use the dropped image: {exc}")
            return
        self._load_ink(ink, "a dropped image")

    def _load_ink(self, ink: np.ndarray, origin: str, label: int | None = None) -> bool:
        try:
            fitted = fit_to_square(ink, CANVAS_SIDE)
        except NnvizError as exc:
            self.session.report_error(f"Cannot put {origin} on the canvas: {exc}")
            return False
        # Named before it is drawn: the views may follow the new drawing at once.
        previous = self._origin, self._label
        self._origin, self._label = origin, label
        self._loading = True
        try:
            self.canvas.set_ink(fitted)
        except Exception:
            self._origin, self._label = previous
            raise
        finally:
            self._loading = False
        return True

    def save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the drawing", "drawing.png", "PNG image (*.png)"
        )
        if path:
            self.save_drawing_to(path if path.lower().endswith(".png") else path + ".png")

    def save_drawing_to(self, path: str | Path) -> bool:
        """Write the canvas as a PNG (atomically); a failure is reported."""
        try:
            save_drawing(path, self.canvas.image_array())
        except NnvizError as exc:
            self.session.report_error(str(exc))
            return False
        return True

    # ----- following the session ---------------------------------------------------------
    def _input_changed(self) -> None:
        if not self._setting_input:
            self.mark_stale()

    def drawing_is_current(self) -> bool:
        current = self.session.current_input
        return current is not None and current is self._mine

    def redraw(self) -> None:
        if self._drawing_dirty:
            self._drawing_dirty = False
            self._set_input_from_drawing()
        current = self.session.current_input
        mine = self.drawing_is_current()
        self.canvas.set_current(mine)
        self.use_sample_action.setEnabled(current is not None and not mine)
        self.show_mine.setVisible(not mine and self.preprocessed.has_ink)
        self.status.set_forms(*self._status_text(current, mine))
        self._show_prediction(mine)

    def _set_input_from_drawing(self) -> None:
        """Preprocess the canvas once and make it every view's input."""
        try:
            picture = self.canvas.image()
            pre = preprocess_drawing(self.canvas.pixels())
        except NnvizError as exc:
            self.session.report_error(f"Cannot read the drawing: {exc}")
            return
        self.preprocessed = pre
        self.steps.show_steps(pre, picture)  # the ink is the canvas's picture
        if not pre.has_ink and not self.drawing_is_current():
            return  # wiping the canvas does not take the views from a sample the user picked
        if pre.has_ink:
            image, label = pre.image, self._label
            description = DRAWING + (f" (from {self._origin})" if self._origin else "")
        else:
            # The views show the empty canvas rather than a drawing that is gone.
            image, label, description = np.zeros((28, 28), np.float32), None, DRAWING + " (empty)"
        self._setting_input = True
        try:
            self.session.set_input(image, label, description)
        finally:
            self._setting_input = False
        self._mine = self.session.current_input

    def _status_text(self, current: CurrentInput | None, mine: bool) -> tuple[str, ...]:
        """What the views show, from the full sentence to a few words."""
        if mine and self.preprocessed.has_ink:
            return ("Every view shows <b>your drawing</b>.", "Views: <b>your drawing</b>")
        if mine:
            return ("Every view shows the empty canvas: draw a digit.", "Draw a digit")
        if current is None:
            return ("Draw a digit: it becomes the input of every view.", "Draw a digit")
        shown = f"<b>{escape(current.description)}</b>"
        return (
            f"The views show {shown}. Draw here to show yours.",
            f"The views show {shown}.",
            f"Views: {shown}",
        )

    def _show_prediction(self, mine: bool) -> None:
        s = self.session
        self.prediction.setText("Prediction")
        if s.loaded is None:
            return self.bars.show_message("load a model")
        if not self.preprocessed.has_ink:
            return self.bars.show_message(NO_INK)
        if not mine:
            return self.bars.show_message("another input\nis shown")
        try:
            probs = s.probabilities()
        except NnvizError as exc:
            self.bars.show_message("no prediction")
            self.prediction.setText(f"Cannot predict: {escape(str(exc))}")
            return None
        if probs is None or not len(probs):
            return self.bars.show_message("no prediction")
        name = self.bars.show_prediction(s.loaded.class_names, probs)
        self.prediction.setText(f"Prediction: <b>{escape(name)}</b> ({float(np.max(probs)):.1%})")
        return None

    def predicted_class(self) -> int | None:
        """The class the bars highlight, or None when they show a message."""
        return self.bars.top_class()

    # ----- layout and theme --------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt)
        # Wide: the canvas with the steps and bars beside it; tall: stacked.
        wide = event.size().width() >= 1.15 * event.size().height()
        direction = QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        if self.body.direction() != direction:
            self.body.setDirection(direction)
        self.body.setStretch(0, 3 if wide else 0)
        self.body.setStretch(1, 2 if wide else 1)
        # Stacked, spare height goes to the bars, not to blank bands around the canvas.
        self.canvas.setMaximumHeight(UNLIMITED if wide else event.size().width() - 8)
        super().resizeEvent(event)

    def palette_changed(self) -> None:
        self.bars.apply_palette(self.palette())
        self.canvas.update()
