"""The preprocessing of a drawing, step by step, as four small pictures.

1. the ink and its bounding box; 2. the box scaled so its longer side is 20 px;
3. that placed in the 28x28 frame, its centre of mass marked and the shift to the
middle drawn; 4. the 28x28 image the network receives, each pixel a visible square.
The pictures keep MNIST's black background in both themes: it is what the network
sees. See ``nnviz.core.preprocess`` for why these steps.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from nnviz.core.preprocess import BOX, FRAME, TARGET_COM, Preprocessed
from nnviz.qt.canvas import grey_to_qimage

BOX_COLOUR = QColor(255, 140, 40)  # orange: reads on black and on white ink
TARGET_COLOUR = QColor(60, 200, 255)  # cyan: the middle of the frame
GRID_COLOUR = QColor(90, 90, 90)


class StepView(QWidget):
    """One picture of a step: an image in a black square, with optional marks on top."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.array: np.ndarray | None = None  # float32 (H, W) in [0, 1], what is shown
        self._image: QImage | None = None
        self.smooth = False  # smooth scaling for a picture; crisp squares for pixels
        self.grid = False
        self.box: QRectF | None = None  # in image pixels
        self.centre: QPointF | None = None  # the centre of mass, in image pixels
        self.target: QPointF | None = None  # where it goes, in image pixels
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(56, 56)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(112, 112)

    def set_array(self, array: np.ndarray | None) -> None:
        self.array = None if array is None else np.asarray(array, np.float32)
        self._image = (
            None if self.array is None else grey_to_qimage(np.clip(self.array * 255 + 0.5, 0, 255))
        )
        self.update()

    def square(self) -> QRectF:
        side = float(min(self.width(), self.height()))
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt)
        painter = QPainter(self)
        square = self.square()
        painter.fillRect(square, Qt.GlobalColor.black)
        if self._image is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
            painter.drawImage(square, self._image)
            h, w = self.array.shape
            sx, sy = square.width() / w, square.height() / h

            def at(p: QPointF) -> QPointF:
                return QPointF(square.left() + p.x() * sx, square.top() + p.y() * sy)

            if self.grid and sx >= 3:
                painter.setPen(QPen(GRID_COLOUR, 0))
                for i in range(1, w):
                    x = square.left() + i * sx
                    painter.drawLine(QLineF(x, square.top(), x, square.bottom()))
                for i in range(1, h):
                    y = square.top() + i * sy
                    painter.drawLine(QLineF(square.left(), y, square.right(), y))
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            if self.box is not None:
                painter.setPen(QPen(BOX_COLOUR, 1.5))
                painter.drawRect(QRectF(at(self.box.topLeft()), at(self.box.bottomRight())))
            if self.centre is not None and self.target is not None:
                centre, target = at(self.centre), at(self.target)
                painter.setPen(QPen(TARGET_COLOUR, 2))
                _cross(painter, target, max(6.0, 1.5 * sx))
                painter.setPen(QPen(BOX_COLOUR, 2))
                painter.setBrush(BOX_COLOUR)
                radius = max(3.0, sx * 0.5)
                painter.drawEllipse(centre, radius, radius)
                if QLineF(centre, target).length() > 2 * radius:
                    painter.drawLine(QLineF(centre, target))
        painter.end()


def _cross(painter: QPainter, p: QPointF, arm: float) -> None:
    painter.drawLine(QLineF(p.x() - arm, p.y(), p.x() + arm, p.y()))
    painter.drawLine(QLineF(p.x(), p.y() - arm, p.x(), p.y() + arm))


class PreprocessingSteps(QWidget):
    """The four steps from drawing to network input, each a picture with a caption."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ink, self.scaled, self.centred, self.final = (StepView() for _ in range(4))
        self.ink.smooth = True
        self.scaled.grid = self.final.grid = True
        self.captions = [QLabel() for _ in range(4)]
        tips = (
            "The drawing as ink, with the box around all of it",
            f"The box scaled so its longer side is {BOX} px, keeping its shape, as MNIST did",
            f"Placed in the {FRAME}x{FRAME} frame: the centre of mass (dot) is moved to the "
            "middle (cross)",
            f"The {FRAME}x{FRAME} image the network receives, each square one input pixel",
        )
        self.cells: list[QWidget] = []
        for view, caption, tip in zip(
            (self.ink, self.scaled, self.centred, self.final), self.captions, tips, strict=True
        ):
            caption.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            caption.setWordWrap(True)
            caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            cell = QWidget()
            cell.setToolTip(tip)
            column = QVBoxLayout(cell)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(2)
            column.addWidget(view, 1)
            column.addWidget(caption)
            self.cells.append(cell)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(6)
        self.columns = 0
        self.set_columns(2)
        self.show_steps(None)

    def set_columns(self, columns: int) -> None:
        """Lay the four steps out in 1, 2 or 4 columns."""
        if columns == self.columns:
            return
        self.columns = columns
        for cell in self.cells:
            self.grid.removeWidget(cell)
        for i, cell in enumerate(self.cells):
            self.grid.addWidget(cell, i // columns, i % columns)
        # Captions of one height, so the pictures of a row line up (narrow cells wrap).
        lines = 3 if columns >= 4 else 1
        for caption in self.captions:
            caption.setMinimumHeight(lines * caption.fontMetrics().lineSpacing())

    def show_steps(self, pre: Preprocessed | None) -> None:
        """Show how ``pre`` was made (None or no ink: the ink alone, the rest empty)."""
        self.ink.set_array(None if pre is None else pre.ink)
        self.ink.box = None
        if pre is None or not pre.has_ink:
            for view in (self.scaled, self.centred, self.final):
                view.set_array(None)
            self.centred.centre = self.centred.target = None
            self._caption(["1. Ink", f"2. Scaled to {BOX} px", "3. Centred", "4. Input"])
            return
        top, left, bottom, right = pre.bbox
        self.ink.box = QRectF(left, top, right - left, bottom - top)
        h, w = pre.scaled.shape
        boxed = np.zeros((BOX, BOX), np.float32)
        boxed[(BOX - h) // 2 : (BOX - h) // 2 + h, (BOX - w) // 2 : (BOX - w) // 2 + w] = pre.scaled
        self.scaled.set_array(boxed)
        self.centred.set_array(pre.before_shift())
        # Pixel (i, j) covers [j, j+1) x [i, i+1) on screen: its centre is at +0.5.
        com_r, com_c = pre.centre_of_mass
        self.centred.centre = QPointF(com_c + 0.5, com_r + 0.5)
        self.centred.target = QPointF(TARGET_COM + 0.5, TARGET_COM + 0.5)
        self.final.set_array(pre.image)
        drow, dcol = pre.shift
        self._caption(
            [
                f"1. Ink {right - left}×{bottom - top}",
                f"2. Scaled {w}×{h}",
                f"3. Centred: {_shift_words(drow, dcol)}",
                f"4. Input {FRAME}×{FRAME}",
            ]
        )

    def _caption(self, texts: list[str]) -> None:
        for label, text in zip(self.captions, texts, strict=True):
            label.setText(text)


def _shift_words(drow: int, dcol: int) -> str:
    """A shift in the words of the picture: '2 down, 1 left', or 'no shift'."""
    parts = []
    if drow:
        parts.append(f"{abs(drow)} {'down' if drow > 0 else 'up'}")
    if dcol:
        parts.append(f"{abs(dcol)} {'right' if dcol > 0 else 'left'}")
    return ", ".join(parts) if parts else "no shift"
