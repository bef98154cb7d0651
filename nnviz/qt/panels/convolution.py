"""The convolution playground: one 3x3 kernel over the current digit, then ReLU, then pooling.

What one filter of a CNN's first layer does, step by step, with a kernel the user picks
from the textbook presets or types in: the input, the kernel's output (the app's
signed colours, ``nnviz.qt.colours``; zero in the background's shade), the same after
ReLU (the negatives gone), and after 2x2 max pooling (half the size, drawn as large as
the rest so its pixels show). The three stages share one colour scale, so a value
keeps its colour from picture to picture.
It follows the current input live: the whole chain costs about 0.2 ms.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPalette, QResizeEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGraphicsRectItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.errors import NnvizError
from nnviz.core.kernels import KERNELS, Playground, playground, preset
from nnviz.qt import colours
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.mosaic import readout_label, symmetric_limit
from nnviz.state import Session

# Magenta: stands out on grey ink and on either choice of signed colours (orange and
# blue, green and red).
MARK = QColor(230, 30, 230)
CUSTOM = "Custom"  # the combo's entry for a kernel edited by hand
SIDE = 28  # every picture spans 28 view units, the pooled one too (its pixels drawn 2x2)
HOVER_HINT = "Point at a pixel to read its value"
NO_INPUT = "Draw a digit or pick one in the Input panel: the kernel runs over it"
EXPLAIN = (
    "Each output pixel is the sum of the 9 pixels around it, each times the kernel's "
    "number in the same place (zero outside the picture). A CNN learns such numbers."
)


class _Picture(QWidget):
    """A titled picture with a line or two of explanation under it."""

    def __init__(self, name: str, explanation: str) -> None:
        super().__init__()
        self.name = name
        self.title = QLabel(name)
        self.title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.view = pg.GraphicsLayoutWidget()
        self.view.ci.setContentsMargins(0, 0, 0, 0)
        self.view.setMinimumSize(72, 72)
        self.box: pg.ViewBox = self.view.addViewBox()
        self.box.setAspectLocked(True)
        self.box.invertY(True)
        self.box.setMouseEnabled(False, False)
        self.box.setMenuEnabled(False)
        self.box.setRange(xRange=(0, SIDE), yRange=(0, SIDE), padding=0.02)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        # Where the pixel under the pointer comes from (or goes), in every picture.
        self.marker = QGraphicsRectItem()
        self.marker.setPen(pg.mkPen(MARK, width=2, cosmetic=True))
        self.marker.setZValue(10)
        self.marker.hide()
        self.box.addItem(self.marker)
        self.explanation = QLabel(explanation)
        self.explanation.setWordWrap(True)
        self.explanation.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        # Fixed: the panel gives all four the same height, so the pictures line up.
        self.explanation.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.title)
        column.addWidget(self.view, 1)
        column.addWidget(self.explanation)
        column.addStretch(0)  # what height the square picture leaves goes under the text

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt)
        # No taller than wide: blank bands above and below a square picture push its
        # title and explanation away from it.
        self.view.setMaximumHeight(max(self.view.minimumHeight(), event.size().width()))
        super().resizeEvent(event)

    def set_values(self, values: np.ndarray, levels: tuple[float, float]) -> None:
        """Show ``values`` (28x28 or the pooled 14x14) with fixed colour ``levels``."""
        self.image.setImage(values, autoLevels=False, levels=levels)
        # Pooled maps are smaller: stretched over the same 28 units, their pixels show.
        self.image.setRect(QRectF(0, 0, SIDE, SIDE))


class ConvolutionPanel(Panel):
    """A 3x3 kernel (a preset or typed in) over the current input: conv, ReLU, max pool."""

    title = "Convolution"
    object_name = "convolution"
    area: ClassVar = Qt.DockWidgetArea.BottomDockWidgetArea

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.kernel = preset("Vertical edges")  # the panel's own copy; the grid shows it
        self.result: Playground | None = None  # what the pictures show
        self.shown_image: np.ndarray | None = None  # the input the result belongs to

        self.preset_choice = QComboBox()
        self.preset_choice.addItems([*KERNELS, CUSTOM])
        self.preset_choice.setToolTip("A textbook 3x3 kernel; edit the numbers for your own")
        self.cells = [[self._cell(r, c) for c in range(3)] for r in range(3)]
        grid = QGridLayout()
        grid.setSpacing(2)
        for r, row in enumerate(self.cells):
            for c, cell in enumerate(row):
                grid.addWidget(cell, r, c)
        picker = QHBoxLayout()
        picker.addWidget(QLabel("Kernel"))
        picker.addWidget(self.preset_choice, 1)
        kernel_column = QVBoxLayout()
        kernel_column.setSpacing(4)
        kernel_column.addLayout(picker)
        kernel_column.addLayout(grid)
        self.explanation = QLabel()  # how a kernel works, and what this one's sum does
        self.explanation.setTextFormat(Qt.TextFormat.RichText)
        self.explanation.setWordWrap(True)
        self.explanation.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.explanation.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        controls = QHBoxLayout()
        controls.setSpacing(12)
        controls.addLayout(kernel_column)
        controls.addWidget(self.explanation, 1)

        self.input_picture = _Picture("Input", "The digit the views show (ink 1, paper 0).")
        self.conv_picture = _Picture("Convolution", "The kernel's output.")
        self.relu_picture = _Picture("ReLU", "")  # the words name the signed colours
        self.pool_picture = _Picture("2×2 max pool", "The largest of each 2×2 block: 14×14.")
        self.pictures = [self.input_picture, self.conv_picture, self.relu_picture]
        self.pictures.append(self.pool_picture)
        self.input_picture.image.setLookupTable(None)  # grey: ink white on black, as MNIST
        row = QHBoxLayout()
        row.setSpacing(8)
        for picture in self.pictures:
            row.addWidget(picture, 1)
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.readout = readout_label()
        self.readout.setText(HOVER_HINT)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(6)
        layout.addLayout(controls)
        layout.addLayout(row, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.readout)
        self.setMinimumSize(420, 300)

        self.preset_choice.currentTextChanged.connect(self.choose_preset)
        for picture in self.pictures:
            picture.view.scene().sigMouseMoved.connect(lambda pos, p=picture: self._hover(p, pos))
        self.listen(session.input_changed, self.mark_stale)
        self.listen(colours.changed, self._colours_changed)
        self.preset_choice.setCurrentText("Vertical edges")
        self._show_kernel()
        self.palette_changed()

    def _cell(self, row: int, col: int) -> QDoubleSpinBox:
        cell = QDoubleSpinBox()
        cell.setRange(-99.0, 99.0)
        cell.setDecimals(3)
        cell.setSingleStep(0.25)
        cell.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
        cell.setAlignment(Qt.AlignmentFlag.AlignRight)
        cell.setToolTip(f"Kernel row {row}, column {col}: the weight of that neighbour")
        cell.setMaximumWidth(cell.fontMetrics().horizontalAdvance("-00.000") + 14)
        cell.valueChanged.connect(lambda value, r=row, c=col: self.set_weight(r, c, value))
        return cell

    # ----- what the user does ------------------------------------------------------------
    def choose_preset(self, name: str) -> None:
        """Load a preset into the grid ("Custom" keeps the numbers as they are)."""
        if name == CUSTOM:
            return
        try:
            self.kernel = preset(name)
        except NnvizError as exc:
            self.session.report_error(str(exc))
            return
        self._show_kernel()
        self.mark_stale()

    def set_weight(self, row: int, col: int, value: float) -> None:
        """One number of the kernel, as typed; the kernel is then the user's own."""
        self.kernel[row, col] = np.float32(value)
        if self.preset_choice.currentText() != CUSTOM:
            self.preset_choice.blockSignals(True)
            self.preset_choice.setCurrentText(CUSTOM)
            self.preset_choice.blockSignals(False)
        self._show_sum()
        self.mark_stale()

    def _show_kernel(self) -> None:
        # The grid shows the numbers rounded; the kernel keeps them exact (1/9, not 0.111).
        for r, row in enumerate(self.cells):
            for c, cell in enumerate(row):
                cell.blockSignals(True)
                cell.setValue(float(self.kernel[r, c]))
                cell.setToolTip(f"Kernel row {r}, column {c}: {float(self.kernel[r, c]):g}")
                cell.blockSignals(False)
        self._show_sum()

    def _show_sum(self) -> None:
        total = float(self.kernel.sum())
        if abs(total - 1) < 1e-3:
            effect = "flat areas keep their brightness"
        elif abs(total) < 1e-3:
            effect = "flat areas give 0, only changes show"
        else:
            effect = f"flat areas are scaled by {total:.3g}"
        self.explanation.setText(f"{EXPLAIN}<br><br>This kernel sums to {total:.3g}: {effect}.")

    # ----- drawing -----------------------------------------------------------------------
    def redraw(self) -> None:
        current = self.session.current_input
        if current is None:
            self.result = self.shown_image = None
            for picture in self.pictures:
                picture.image.clear()
            self.message.setText(NO_INPUT)
            self.message.show()
            return
        try:
            result = playground(current.image, self.kernel)
        except NnvizError as exc:
            self.message.setText(f"Cannot run the kernel: {exc}")
            self.message.show()
            return
        self.message.hide()
        self.result, self.shown_image = result, current.image
        self.input_picture.set_values(current.image, (0.0, 1.0))
        limit = symmetric_limit(result.conv)
        for picture, values in zip(self.pictures[1:], result, strict=True):
            picture.set_values(values, (-limit, limit))
        lo, hi = float(result.conv.min()), float(result.conv.max())
        self.conv_picture.explanation.setText(
            f"The kernel's output, {lo:+.2f} to {hi:+.2f}: {colours.current().legend}, faint 0."
        )
        self._fit_explanations()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt)
        super().resizeEvent(event)  # the layout has placed the pictures by now
        self._fit_explanations()

    def _fit_explanations(self) -> None:
        """One height for the four explanations: as many lines as the longest needs."""
        lines = 1
        for picture in self.pictures:
            label = picture.explanation
            width = max(label.width(), 40)
            text = label.fontMetrics().boundingRect(
                0, 0, width, 10_000, Qt.TextFlag.TextWordWrap, label.text()
            )
            lines = max(lines, round(text.height() / label.fontMetrics().lineSpacing()))
        height = lines * self.fontMetrics().lineSpacing() + 2
        for picture in self.pictures:
            picture.explanation.setFixedHeight(height)

    def _hover(self, picture: _Picture, scene_pos: QPointF) -> None:
        """Read out the value under the pointer and mark where it comes from and goes."""
        point = picture.box.mapSceneToView(scene_pos)
        x, y = point.x(), point.y()
        if self.result is None or not (0 <= x < SIDE and 0 <= y < SIDE):
            self.readout.setText(HOVER_HINT)
            for p in self.pictures:
                p.marker.hide()
            return
        self.point_at(picture, int(y), int(x))

    def point_at(self, picture: _Picture, row: int, col: int) -> str:
        """What the pointer on 28x28 pixel (``row``, ``col``) of ``picture`` reads out."""
        assert self.result is not None and self.shown_image is not None
        if picture is self.pool_picture:
            top, left = row // 2 * 2, col // 2 * 2
            value = self.result.pooled[row // 2, col // 2]
            where = f"block row {row // 2}, col {col // 2} (the largest of its 2\u00d72 block)"
            # The block, and the 4x4 of input pixels its four kernels read.
            marks = [(top - 1, left - 1, 4), (top, left, 2), (top, left, 2), (top, left, 2)]
        else:
            values = {
                self.input_picture: self.shown_image,
                self.conv_picture: self.result.conv,
                self.relu_picture: self.result.relu,
            }[picture]
            value = values[row, col]
            where = f"row {row}, col {col}"
            if picture is not self.input_picture:
                where += " (the 9 input pixels marked, times the kernel, summed)"
            pooled = (row // 2 * 2, col // 2 * 2, 2)
            marks = [(row - 1, col - 1, 3), (row, col, 1), (row, col, 1), pooled]
        for p, (top, left, side) in zip(self.pictures, marks, strict=True):
            p.marker.setRect(QRectF(left, top, side, side))
            p.marker.show()
        text = f"{picture.name} \u00b7 {where} \u00b7 value {float(value):+.3f}"
        self.readout.setText(text)
        return text

    def _colours_changed(self, *_: object) -> None:
        self.palette_changed()
        self.mark_stale()

    def palette_changed(self) -> None:
        background = self.palette().color(QPalette.ColorRole.Window)
        for picture in self.pictures:
            picture.view.setBackground(QColor(background))
        lut = colours.lookup_table(self.palette())
        for picture in self.pictures[1:]:
            picture.image.setLookupTable(lut)
        negatives = colours.current().negative_word
        self.relu_picture.explanation.setText(f"max(0, x): the negatives ({negatives}) become 0.")
