"""The preprocessing of a drawing, step by step, as four small pictures in a row.

1. the ink and its bounding box; 2. the box scaled so its longer side is 20 px;
3. that placed in the 28x28 frame, its centre of mass marked and the shift to the
middle drawn; 4. the 28x28 image the network receives, each pixel a visible square.
The pictures keep MNIST's black background in both themes: it is what the network
sees. See ``nnviz.core.preprocess`` for why these steps. Captions, and the Draw
panel's status line (``FittingLabel``), stay on one line in a narrow dock: a shorter
wording rather than a second line that gets cut off.
"""

from __future__ import annotations

from html import escape

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
)
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from nnviz.core.preprocess import BOX, FRAME, TARGET_COM, Preprocessed
from nnviz.qt.canvas import grey_to_qimage
from nnviz.qt.panels.text_line import plain_text

BOX_COLOUR = QColor(255, 140, 40)  # orange: reads on black and on white ink
TARGET_COLOUR = QColor(60, 200, 255)  # cyan: the middle of the frame
GRID_COLOUR = QColor(90, 90, 90)


class FittingLabel(QLabel):
    """One line of rich text that never wraps: the longest of its forms that fits.

    A wrapped label in a dock that is short of height gets its second line cut off, or
    runs into the widget below it; this one picks a shorter wording instead, and when
    even the last one is too long it is elided ("…").
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.forms: tuple[str, ...] = ()
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(self.fontMetrics().lineSpacing())

    def set_forms(self, *forms: str) -> None:
        """The same message from longest to shortest, as rich text; the tooltip says the
        longest in full."""
        if forms != self.forms:
            self.forms = forms
            self.setToolTip(plain_text(forms[0]) if forms else "")
            self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt)
        super().resizeEvent(event)
        self._fit()

    def fits(self, form: str, room: int | None = None) -> bool:
        """Whether ``form`` fits on one line ``room`` px wide (default: this label's width)."""
        room = self.contentsRect().width() if room is None else room
        font = QFont(self.font())
        font.setBold("<b>" in form)  # measured in bold where any word is bold: the widest
        return QFontMetrics(font).horizontalAdvance(plain_text(form)) <= room

    def _fit(self) -> None:
        for form in self.forms:
            if self.fits(form):
                self.setText(form)
                return
        if not self.forms:
            self.setText("")
            return
        room, metrics = self.contentsRect().width(), self.fontMetrics()
        shortest = plain_text(self.forms[-1])
        self.setText(escape(metrics.elidedText(shortest, Qt.TextElideMode.ElideRight, room)))


class StepView(QWidget):
    """One picture of a step: an image in a black square, with optional marks on top."""

    MINIMUM = 40  # px: four in a row fit beside the canvas in a 520 px wide dock

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.array: np.ndarray | None = None  # float32 (H, W) in [0, 1], what is shown
        self._image: QImage | None = None
        self.smooth = False  # smooth scaling for a picture; crisp squares for pixels
        self.grid = False
        self.box: QRectF | None = None  # in image pixels
        self.centre: QPointF | None = None  # the centre of mass, in image pixels
        self.target: QPointF | None = None  # where it goes, in image pixels
        self._grid: list[QLineF] = []
        self._grid_key: tuple = ()
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        policy.setHeightForWidth(True)  # square: a layout gives it no blank bands
        self.setSizePolicy(policy)
        self.setMinimumSize(self.MINIMUM, self.MINIMUM)
        # It paints every pixel, the margins beside its square too: its repaint at every
        # move of a stroke then leaves the widgets beneath it alone.
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(112, 112)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt)
        return max(width, self.MINIMUM)

    def set_array(self, array: np.ndarray | None, picture: QImage | None = None) -> None:
        """Show ``array`` (float in [0, 1]); ``picture``, if given, is that array already
        as an 8-bit grey image (the canvas's own), used instead of converting it back."""
        self.array = None if array is None else np.asarray(array, np.float32)
        self._image = picture if self.array is not None else None
        if self.array is not None and picture is None:
            # In place: the ink is 280x280 and changes at every move of a stroke.
            grey = self.array * np.float32(255)
            grey += np.float32(0.5)
            self._image = grey_to_qimage(np.clip(grey, 0, 255, out=grey))
        if self._image is not None:
            # Qt scales an 8-bit grey image pixel by pixel in its generic path, an RGB32
            # one in its fast path: 214 vs 36 us for a 28x28 picture drawn at 196 px,
            # the conversion 4 us (33 us for the 280x280 ink, whose drawing 415 -> 142 us).
            self._image = self._image.convertToFormat(QImage.Format.Format_RGB32)
        self.update()

    def _grid_lines(self, square: QRectF, w: int, h: int) -> list[QLineF]:
        """The lines between the pixels, kept while the size stays: one call draws them
        (one call per line was a tenth of the stroke's paint)."""
        key = (square.x(), square.y(), square.width(), w, h)
        if self._grid_key != key:
            sx, sy = square.width() / w, square.height() / h
            left, top, right, bottom = square.left(), square.top(), square.right(), square.bottom()
            self._grid = [QLineF(left + i * sx, top, left + i * sx, bottom) for i in range(1, w)]
            self._grid += [QLineF(left, top + i * sy, right, top + i * sy) for i in range(1, h)]
            self._grid_key = key
        return self._grid

    def square(self) -> QRectF:
        side = float(min(self.width(), self.height()))
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt)
        with QPainter(self) as painter:
            square = self.square()
            if self.width() != self.height():
                painter.fillRect(self.rect(), self.palette().color(self.backgroundRole()))
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
                    painter.drawLines(self._grid_lines(square, w, h))
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


def _cross(painter: QPainter, p: QPointF, arm: float) -> None:
    painter.drawLine(QLineF(p.x() - arm, p.y(), p.x() + arm, p.y()))
    painter.drawLine(QLineF(p.x(), p.y() - arm, p.x(), p.y() + arm))


class PreprocessingSteps(QWidget):
    """The four steps from drawing to network input: four pictures in a row, each with a
    one-line caption.

    A caption never wraps into the picture below it: each step has captions from long
    ("2. Scaled 16×20") to short ("Scaled"), and shows the longest that fits its cell;
    the tooltip always has the whole story. The row's height follows its width
    (the pictures' ``heightForWidth``), so a box layout gives them exactly their squares.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ink, self.scaled, self.centred, self.final = (StepView() for _ in range(4))
        self.views = [self.ink, self.scaled, self.centred, self.final]
        self.ink.smooth = True
        self.scaled.grid = self.final.grid = True
        self.captions = [QLabel() for _ in range(4)]
        self._forms: list[tuple[str, ...]] = []  # each caption, longest first
        self._details: tuple[str | None, ...] = ()  # what the captions were made from
        self._tips = (
            "The drawing as ink, with the box around all of it",
            f"The box scaled so its longer side is {BOX} px, keeping its shape, as MNIST did",
            f"Placed in the {FRAME}x{FRAME} frame: the centre of mass (dot) is moved to the "
            "middle (cross)",
            f"The {FRAME}x{FRAME} image the network receives, each square one input pixel",
        )
        self.cells: list[QWidget] = []
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(6)
        for i, (view, caption) in enumerate(zip(self.views, self.captions, strict=True)):
            caption.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            cell = QWidget()
            column = QVBoxLayout(cell)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(2)
            column.addWidget(view, 1)
            column.addWidget(caption)
            self.cells.append(cell)
            self.grid.addWidget(cell, 0, i)
        # As tall as its squares (StepView's heightForWidth) and one line of captions: a
        # box layout gives it that, and spare height to items with a stretch. (Fixed
        # would cap it at its size hint, below the squares of a wide row.)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.show_steps(None)

    # ----- content -----------------------------------------------------------------------
    def show_steps(self, pre: Preprocessed | None, ink: QImage | None = None) -> None:
        """Show how ``pre`` was made (None or no ink: the ink alone, the rest empty).
        ``ink``: its ink as an 8-bit grey image, when the caller has one (the canvas):
        converting the 280x280 floats back was most of the cost of the ink picture."""
        self.ink.set_array(None if pre is None else pre.ink, ink)
        self.ink.box = None
        if pre is None or not pre.has_ink:
            for view in (self.scaled, self.centred, self.final):
                view.set_array(None)
            self.centred.centre = self.centred.target = None
            self._caption((None,) * 4)
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
            (
                f"{right - left}×{bottom - top}",
                f"{w}×{h}",
                _shift_words(drow, dcol),
                f"{FRAME}×{FRAME}",
            )
        )

    def _caption(self, details: tuple[str | None, ...]) -> None:
        """Captions from "2. Scaled 16×20" down to "Scaled"; the tooltips say all of it."""
        if details == self._details:
            return  # most moves of a stroke: the same sizes and shift as the last one
        self._details = details
        names = ("Ink", "Scaled", "Centred", "Input")
        self._forms = []
        for i, (name, detail, tip) in enumerate(zip(names, details, self._tips, strict=True)):
            numbered = f"{i + 1}. {name}"
            full = numbered if detail is None else f"{numbered}{': ' if i == 2 else ' '}{detail}"
            self._forms.append((full, numbered, name))
            if self.cells[i].toolTip() != f"{full}\n{tip}":
                self.cells[i].setToolTip(f"{full}\n{tip}")
        self._fit_captions()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt)
        super().resizeEvent(event)
        self._fit_captions()

    def _fit_captions(self) -> None:
        """Each caption in the longest wording that fits its cell; numbered only if all
        four can be, so the row reads alike."""
        room = (self.width() - 3 * self.grid.spacing()) // 4
        metrics = self.fontMetrics()

        def fits(text: str) -> bool:
            return metrics.horizontalAdvance(text) <= room

        numbered = all(fits(forms[1]) for forms in self._forms)
        for label, (full, with_number, bare) in zip(self.captions, self._forms, strict=True):
            if numbered:
                text = full if fits(full) else with_number
            else:  # even the shortest may not fit: elided, never cut at both ends
                text = metrics.elidedText(bare, Qt.TextElideMode.ElideRight, room)
            if label.text() != text:  # a new text re-lays out the dock: only when it differs
                label.setText(text)


def _shift_words(drow: int, dcol: int) -> str:
    """A shift in the words of the picture: '2 down, 1 left', or 'no shift'."""
    parts = []
    if drow:
        parts.append(f"{abs(drow)} {'down' if drow > 0 else 'up'}")
    if dcol:
        parts.append(f"{abs(dcol)} {'right' if dcol > 0 else 'left'}")
    return ", ".join(parts) if parts else "no shift"
