"""Ten probability bars, one per class, the model's pick highlighted.

A plain widget that paints its bars with QPainter: it is redrawn on every mouse move
while a person draws, and a pyqtgraph plot (a bar item, an axis and ten text items)
cost 1.6 ms to update and 1.2 ms to paint per move; this costs a tenth of that. A
message (e.g. "no ink") replaces the bars when there is no prediction to show; the
class names stay, so the panel keeps its shape. Labels never overlap: when the rows are
shorter than a line of text (26 classes in a short dock), every k-th class is named and
a probability is written only where it has room, the top class's and the true class's
first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFontMetricsF,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QStaticText,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from nnviz.qt.theme import mix

HIGHLIGHT = QColor(232, 96, 28)  # the activations panel's orange: readable on both themes
ON_BAR = QColor(255, 255, 255)  # a label inside the orange bar
INSIDE_FROM = 0.6  # a bar this long holds its own label; a shorter one is followed by it
BAR_FILL = 0.72  # of each class's row height
MARGIN = 6  # pixels around the bars
MIN_ROW_PX = 5  # a bar is still seen, and hovered, in a row this tall
ROOMY_ROW_PX = 18  # more than this per class only spreads the bars out


class PredictionBars(QWidget):
    """Horizontal bars of class probabilities, class names down the left."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.probabilities = np.zeros(0, np.float32)
        self.message = ""
        self.classes: list[str] = []
        self.true_class: int | None = None  # outlined and labelled, when the input has one
        self._texts: dict[str, QStaticText] = {}  # laid-out labels, by text
        self._still: QPixmap | None = None  # see _still_parts
        self._still_key: tuple = ()
        self._geometry = (0.0, 0.0, 0.0)  # the bars' left and right ends, a row's height
        # Opaque and painted whole: nothing beneath needs repainting when it changes.
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(150)
        self.apply_palette(self.palette())
        self.set_classes([str(i) for i in range(10)])

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(260, 220)

    def set_classes(self, names: Sequence[str]) -> None:
        """The class names, top to bottom; resets the bars."""
        names = [str(n) for n in names]
        if names == self.classes:
            return
        self.classes = names
        self.show_message(self.message)

    def show_probabilities(self, probs: np.ndarray, true_class: int | None = None) -> None:
        """One bar per class, the most likely one highlighted and labelled; the bar of
        ``true_class`` (the input's label, if known) outlined and named so."""
        probs = np.asarray(probs, np.float32).reshape(-1)[: len(self.classes)]
        same = np.array_equal(probs, self.probabilities) and true_class == self.true_class
        if not self.message and same:
            return
        self.probabilities = probs.copy()
        self.true_class = true_class
        self.message = ""
        self.update()

    def show_prediction(self, class_names: Sequence[str], probs: np.ndarray) -> str:
        """The bars of ``probs`` under the model's class names (their indices where the
        names do not match the output); returns the name of the class picked."""
        probs = np.asarray(probs, np.float32).reshape(-1)
        names = list(class_names)
        self.set_classes(names if len(names) == len(probs) else range(len(probs)))
        self.show_probabilities(probs)
        return self.classes[int(np.argmax(probs))]

    def show_message(self, text: str) -> None:
        """No bars, just ``text`` (e.g. "no ink") where they would be."""
        self.probabilities = np.zeros(0, np.float32)
        self.true_class = None
        self.message = text
        self.update()

    def top_class(self) -> int | None:
        """The highlighted bar: the class the model picks, or None without bars."""
        return int(np.argmax(self.probabilities)) if len(self.probabilities) else None

    def labels(self, top: int | None = None) -> list[str]:
        """The text beside each bar as painted: the top class's and every non-zero
        probability (a column of "0.0%" says nothing); "" elsewhere. (``top``: the top
        class, if the caller has it.)"""
        probs = self.probabilities.tolist()
        top = self.top_class() if top is None else top
        out = []
        for i in range(len(self.classes)):
            text = f"{probs[i]:.1%}" if i < len(probs) else ""
            text = text if text and (i == top or i == self.true_class or text != "0.0%") else ""
            out.append(text + ", the true label" if text and i == self.true_class else text)
        return out

    # ----- room -------------------------------------------------------------------------
    def text_height(self) -> float:
        """The height of a label's line, in pixels."""
        return QFontMetricsF(self.font()).height()

    def height_for(self, row_px: float) -> int:
        """The widget height that gives each class a row ``row_px`` tall."""
        return round(len(self.classes) * row_px + 2 * MARGIN)

    def row_height(self) -> float:
        return (self.height() - 2 * MARGIN) / max(len(self.classes), 1)

    def named_classes(self) -> list[int]:
        """The classes named down the left: all of them when a row holds a line of text,
        else every k-th, so that no two names overlap."""
        every = max(1, math.ceil(self.text_height() / max(self.row_height(), 1e-6)))
        return list(range(0, len(self.classes), every))

    def placed_labels(self, top: int | None = None) -> list[tuple[int, str]]:
        """(class, text) of the probabilities written beside the bars: ``labels``, less
        those that would overlap one placed before them (the top class and the true
        class are placed first)."""
        texts = self.labels(top)
        top = self.top_class() if top is None else top
        order = [i for i in (top, self.true_class) if i is not None and i < len(texts)]
        order += [i for i in range(len(texts)) if i not in order]
        row, half = self.row_height(), self.text_height() / 2
        placed: list[tuple[int, str]] = []
        taken: list[float] = []  # the centres of the labels placed
        for i in order:
            centre = MARGIN + (i + 0.5) * row
            if texts[i] and all(abs(centre - c) >= 2 * half for c in taken):
                placed.append((i, texts[i]))
                taken.append(centre)
        return placed

    def class_at(self, pos: QPointF) -> int | None:
        """The class whose row is under ``pos`` (widget coordinates), if any."""
        n = len(self.classes)
        row = (self.height() - 2 * MARGIN) / max(n, 1)
        i = int((pos.y() - MARGIN) // row) if row > 0 else -1
        return i if 0 <= i < n and pos.y() >= MARGIN else None

    # ----- colours and painting ---------------------------------------------------------
    def apply_palette(self, pal: QPalette) -> None:
        bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.WindowText)
        self.background, self.text_colour = QColor(bg), QColor(fg)
        self._dim, self._axis = mix(bg, fg, 0.65), mix(bg, fg, 0.4)
        self._off, self._message_colour = mix(bg, fg, 0.3), mix(bg, fg, 0.6)
        self._still = None
        self.update()

    def _text(self, text: str) -> QStaticText:
        """``text`` laid out once: a label is drawn on every move while a person draws,
        and laying it out afresh each time was most of the paint's cost."""
        static = self._texts.get(text)
        if static is None:
            if len(self._texts) > 4000:  # every "x.y%" and its variants fit many times over
                self._texts.clear()
            static = QStaticText(text)
            static.setTextFormat(Qt.TextFormat.PlainText)
            static.prepare(font=self.font())
            self._texts[text] = static
        return static

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt)
        if event.type() == QEvent.Type.FontChange:
            self._texts.clear()
            self._still = None
        super().changeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt)
        with QPainter(self) as painter:
            painter.drawPixmap(0, 0, self._still_parts())
            n = len(self.classes)
            if not n:
                return
            left, right, row = self._geometry
            if self.message:
                painter.setPen(self._message_colour)
                font = painter.font()
                font.setPointSizeF(font.pointSizeF() * 1.4)
                painter.setFont(font)
                area = QRectF(left, MARGIN, right - left, self.height() - 2 * MARGIN)
                painter.drawText(area, Qt.AlignmentFlag.AlignCenter, self.message)
                return

            full = max(1.0, right - left) / 1.04  # a full bar leaves room for its label
            # Plain floats: numpy scalars made this loop several times slower.
            probs, top, true_class = self.probabilities.tolist(), self.top_class(), self.true_class
            bar_h, gap = row * BAR_FILL, row * (1 - BAR_FILL) / 2
            painter.setPen(Qt.PenStyle.NoPen)
            for i, p in enumerate(probs):
                if i == true_class:
                    painter.setPen(QPen(self.text_colour, 1))
                painter.setBrush(HIGHLIGHT if i == top else self._off)
                painter.drawRect(QRectF(left, MARGIN + i * row + gap, p * full, bar_h))
                if i == true_class:
                    painter.setPen(Qt.PenStyle.NoPen)
            for i, label in self.placed_labels(top):
                text = self._text(label)
                size = text.size()
                width = size.width()
                end = left + probs[i] * full
                # Inside a long bar, if the text fits there; otherwise after the bar's end.
                inside = i == top and probs[i] >= INSIDE_FROM and width + 8 <= end - left
                painter.setPen(ON_BAR if inside else self.text_colour if i == top else self._dim)
                x = end - 4 - width if inside else end + 4
                y = MARGIN + (i + 0.5) * row - size.height() / 2  # centred in its row
                painter.drawStaticText(QPointF(x, y), text)

    def _still_parts(self) -> QPixmap:
        """The background, the class names and the axis: drawn once per size, classes,
        font and theme, since they stay put while the bars change at every mouse move
        (drawing them each time was half the cost of a repaint)."""
        ratio = self.devicePixelRatioF()
        key = (self.width(), self.height(), ratio, tuple(self.classes))
        if self._still is not None and self._still_key == key:
            return self._still
        pixmap = QPixmap(max(1, round(self.width() * ratio)), max(1, round(self.height() * ratio)))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(self.background)
        n = len(self.classes)
        names = [self._text(c) for c in self.classes]
        names_w = max((t.size().width() for t in names), default=0.0) + 8
        left, right = MARGIN + names_w, self.width() - MARGIN
        row = (self.height() - 2 * MARGIN) / max(n, 1)
        self._geometry = (left, right, row)
        if n:
            with QPainter(pixmap) as painter:
                painter.setFont(self.font())
                painter.setPen(self._axis)
                painter.drawLine(int(left), MARGIN, int(left), self.height() - MARGIN)
                painter.setPen(self.text_colour)
                for i in self.named_classes():  # right-aligned against the axis
                    name = names[i]
                    size = name.size()
                    at = QPointF(
                        left - 6 - size.width(), MARGIN + (i + 0.5) * row - size.height() / 2
                    )
                    painter.drawStaticText(at, name)
        self._still, self._still_key = pixmap, key
        return pixmap
