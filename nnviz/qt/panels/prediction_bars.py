"""Ten probability bars, one per class, the model's pick highlighted.

One BarGraphItem and one text item per class, built when the classes change and
updated in place afterwards (``setOpts``/``setText``), so a redraw at the frame rate
costs next to nothing. A message (e.g. "no ink") replaces the bars when there is no
prediction to show; the class names stay, so the panel keeps its shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QWidget

HIGHLIGHT = QColor(232, 96, 28)  # the activations panel's orange: readable on both themes
ON_BAR = QColor(255, 255, 255)  # a label inside the orange bar


class PredictionBars(pg.PlotWidget):
    """Horizontal bars of class probabilities, class names down the left."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.probabilities = np.zeros(0, np.float32)
        self.message = ""
        self.classes: list[str] = []
        plot = self.getPlotItem()
        plot.setMouseEnabled(False, False)
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.invertY(True)
        plot.hideAxis("bottom")
        plot.setXRange(0, 104, padding=0)  # a full bar holds its label; shorter ones are followed
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.72, width=[])
        plot.addItem(self.bars)
        self.labels: list[pg.TextItem] = []
        self.message_item = pg.TextItem(anchor=(0.5, 0.5))
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        self.message_item.setFont(font)
        plot.addItem(self.message_item)
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
        plot = self.getPlotItem()
        for label in self.labels:
            plot.removeItem(label)
        self.classes = names
        n = len(names)
        plot.getAxis("left").setTicks([list(enumerate(names))])
        plot.setYRange(-0.6, n - 0.4, padding=0)
        self.labels = [pg.TextItem(anchor=(0, 0.5)) for _ in range(n)]
        self._shown: list[tuple] = [("", None, None, None)] * n  # what each label shows
        for label in self.labels:
            plot.addItem(label)
        self.message_item.setPos(52, (n - 1) / 2)  # the middle of the x range
        self._recolour_labels()
        self.show_message(self.message)

    def show_probabilities(self, probs: np.ndarray) -> None:
        """One bar per class, the most likely one highlighted and labelled."""
        probs = np.asarray(probs, np.float32).reshape(-1)[: len(self.classes)]
        self.probabilities = probs
        self.message = ""
        self.message_item.setText("")
        n = len(probs)
        top = int(np.argmax(probs)) if n else -1
        brushes = [self._on if i == top else self._off for i in range(n)]
        self.bars.setOpts(x0=np.zeros(n), y=np.arange(n), width=probs * 100.0, brushes=brushes)
        for i in range(len(self.labels)):
            text = f"{probs[i]:.1%}" if i < n else ""
            if text and (i == top or text != "0.0%"):  # a column of 0.0% says nothing
                # A long bar holds its own label; otherwise it would run off the end.
                inside = bool(probs[i] >= 0.6)
                colour = ON_BAR if inside else self._fg if i == top else self._dim
                x = float(probs[i]) * 100.0 + (-1.5 if inside else 1.5)
                self._set_label(i, text, inside, x, colour)
            else:
                self._set_label(i, "", False, 0.0, self._dim)

    def _set_label(self, i: int, text: str, inside: bool, x: float, colour: QColor) -> None:
        # Setting a TextItem's text or colour re-lays out its HTML (about 0.2 ms each);
        # while a person draws, most labels stay as they are, so only changes are sent.
        label, shown = self.labels[i], self._shown[i]
        if shown[0] != text:
            label.setText(text)
        if text and shown[1] != inside:
            label.setAnchor((1, 0.5) if inside else (0, 0.5))
        if text and shown[2] != x:
            label.setPos(x, i)
        if text and shown[3] != colour.rgba():
            label.setColor(colour)
        self._shown[i] = (text, inside, x, colour.rgba()) if text else ("", None, None, None)

    def show_message(self, text: str) -> None:
        """No bars, just ``text`` (e.g. "no ink") where they would be."""
        self.probabilities = np.zeros(0, np.float32)
        self.message = text
        self.bars.setOpts(x0=[], y=[], width=[], brushes=[])
        for i in range(len(self.labels)):
            self._set_label(i, "", False, 0.0, self._dim)
        self.message_item.setText(text)

    def top_class(self) -> int | None:
        """The highlighted bar: the class the model picks, or None without bars."""
        return int(np.argmax(self.probabilities)) if len(self.probabilities) else None

    def apply_palette(self, pal: QPalette) -> None:
        bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.WindowText)
        self.setBackground(bg)
        self._fg, self._dim = fg, _mix(bg, fg, 0.65)
        self._on, self._off = pg.mkBrush(HIGHLIGHT), pg.mkBrush(_mix(bg, fg, 0.3))
        axis = self.getPlotItem().getAxis("left")
        axis.setPen(_mix(bg, fg, 0.4))
        axis.setTextPen(fg)
        self.message_item.setColor(_mix(bg, fg, 0.6))
        self._recolour_labels()
        if len(self.probabilities):
            self.show_probabilities(self.probabilities)

    def _recolour_labels(self) -> None:
        for label in self.labels:
            label.setColor(self._dim)
        self._shown = [("", None, None, None)] * len(self.labels)  # colours to send again


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    """``a`` moved a fraction ``t`` of the way to ``b``."""
    return QColor.fromRgbF(
        *[(1 - t) * x + t * y for x, y in zip(a.getRgbF(), b.getRgbF(), strict=True)]
    )
