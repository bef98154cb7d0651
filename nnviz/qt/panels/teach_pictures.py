"""Pictures and words shared by the Teach & dream sections.

Digits are drawn as MNIST draws them, white ink on black, with levels fixed to [0, 1]
so a faint picture looks faint. Captions are pyqtgraph titles in the theme's text
colour; ``Captions`` keeps their words so a new theme can recolour them.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QComboBox, QLabel, QProgressBar, QWidget

from nnviz.qt.panels.mosaic import fit, image_plot

CAPTION_SIZE = "9pt"


def digit_plot() -> tuple[pg.PlotItem, pg.ImageItem]:
    """A still, square plot showing a 28x28 picture."""
    plot, image = image_plot()
    fit(plot, (28, 28))
    return plot, image


def show_digit(item: pg.ImageItem, picture: np.ndarray) -> None:
    """Ink in [0, 1] as grey: 0 black, 1 white."""
    item.setImage(np.ascontiguousarray(picture, np.float32), autoLevels=False, levels=(0.0, 1.0))


def percent(p: float) -> str:
    """A probability as a person reads it: 87%, 99.6%, >99.9%, 0.4%, <0.1%."""
    if 0.9995 <= p < 1:
        return ">99.9%"  # never "100.0%" for a model that is not quite sure
    if 0 < p < 0.001:
        return "<0.1%"
    return f"{p:.1%}" if p < 0.01 or p >= 0.995 else f"{p:.0%}"


def answer(names: Sequence[str], probabilities: np.ndarray) -> str:
    """The model's pick and how sure it is, e.g. "9 (87%)"."""
    k = int(np.argmax(probabilities))
    return f"{class_name(names, k)} ({percent(float(probabilities[k]))})"


def class_name(names: Sequence[str], k: int) -> str:
    return names[k] if 0 <= k < len(names) else str(k)


def fill_classes(combo: QComboBox, names: Sequence[str]) -> None:
    """The model's classes in ``combo`` (data = class number), keeping the choice if it fits."""
    items = [combo.itemText(i) for i in range(combo.count())]
    if items == list(names):
        return
    previous = combo.currentIndex()
    combo.blockSignals(True)
    combo.clear()
    for k, name in enumerate(names):
        combo.addItem(name, k)
    combo.setCurrentIndex(previous if 0 <= previous < len(names) else min(7, len(names) - 1))
    combo.blockSignals(False)


def busy_bar(tip: str) -> QProgressBar:
    """A thin bar that moves while slow work runs, hidden otherwise."""
    bar = QProgressBar()
    bar.setRange(0, 0)  # no known end: it sweeps
    bar.setTextVisible(False)
    bar.setMaximumHeight(8)
    bar.setToolTip(tip)
    bar.hide()
    return bar


def hint_label(text: str = "") -> QLabel:
    """A wrapped line of secondary text (recoloured by ``Captions.apply``)."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)  # "<0.1%" is not a tag
    label.setWordWrap(True)
    return label


class Captions:
    """Backgrounds and titles of picture plots, in the colours of the current theme."""

    def __init__(self, widget: QWidget) -> None:
        self.widget = widget
        self.views: list[pg.GraphicsLayoutWidget] = []
        self.hints: list[QLabel] = []
        self._titles: dict[int, tuple[pg.PlotItem, str]] = {}
        self.fg = QColor()

    def set_title(self, plot: pg.PlotItem, text: str) -> None:
        """Plain ``text`` over ``plot`` (a newline starts a second line)."""
        if self._titles.get(id(plot), (None, None))[1] == text:
            return
        self._titles[id(plot)] = (plot, text)
        plot.setTitle(escape(text).replace("\n", "<br>"), color=self.fg, size=CAPTION_SIZE)

    def apply(self) -> None:
        """Take the widget's palette (dark or light theme)."""
        pal = self.widget.palette()
        bg, fg = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.WindowText)
        self.fg = fg
        for view in self.views:
            view.setBackground(bg)
        for plot, text in self._titles.values():
            plot.setTitle(escape(text).replace("\n", "<br>"), color=fg, size=CAPTION_SIZE)
        hint = QColor.fromRgbF(
            *[0.35 * b + 0.65 * f for f, b in zip(fg.getRgbF(), bg.getRgbF(), strict=True)]
        )
        for label in self.hints:
            label.setStyleSheet(f"color: {hint.name()};")
