"""One 28x28 picture with a map laid over it, shared by the Why and Fool it panels.

``PictureCard`` is a title, the picture and a line of plain words under it. The picture
is two ImageItems made once and fed with ``setImage``: the digit (grey, ink white on
black as in MNIST, or a signed map in the app's signed colours, ``nnviz.qt.colours``)
and, above it, an RGBA overlay whose alpha comes from the map, so the digit shows
through where the map is weak.

``interventions_applied`` lets the gradient views see the units the user switched off,
as ``Session.probabilities`` does, so the class they explain is the class the app shows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPalette, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.errors import NnvizError
from nnviz.core.gradients import hookable
from nnviz.core.interventions import edits_for
from nnviz.qt import colours
from nnviz.qt.panels.mosaic import fit, image_plot

GREY = "grey"  # black to white: ink white on black, as in MNIST
HEAT = "inferno"
# Inferno's top end is nearly white: over white ink it would vanish. The heat stops at
# orange-yellow, and a little above black so that weak heat is still a colour.
HEAT_RANGE = (0.15, 0.85)
GAMMA = 0.7  # overlay strength = (|value| / peak) ** GAMMA


def _rgba(colour: str) -> np.ndarray:
    return np.array(QColor(colour).getRgb(), np.uint8)


# The signed overlay's two sides (RGBA) in the default signed colours, readable over
# black and white ink alike; ``signed_colours`` draws in the colours chosen now.
POSITIVE = _rgba(colours.DEFAULT.positive)  # pushes towards the class
NEGATIVE = _rgba(colours.DEFAULT.negative)  # pushes away from it


def _lut(name: str, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """(256, 4) uint8 colours of a pyqtgraph colormap between ``low`` and ``high``."""
    return pg.colormap.get(name).map(np.linspace(low, high, 256), mode="byte")


def _colormap(name: str) -> pg.ColorMap:
    if name == GREY:  # plain linear grey: the digit exactly as the network gets it
        return pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)], name=GREY)
    return pg.colormap.get(name)


_HEAT_LUT = _lut(HEAT, *HEAT_RANGE)


def _peak(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    peak = float(finite.max()) if finite.size else 0.0
    return peak if peak > 0 else 1.0


def _strength(values: np.ndarray, peak: float) -> np.ndarray:
    """|values| / peak in [0, 1], raised to GAMMA: gradients are spiky, and on a linear
    scale everything but the peak fades away."""
    return np.clip(np.abs(np.nan_to_num(values)) / peak, 0.0, 1.0) ** GAMMA


def heat_colours(values: np.ndarray, opacity: float) -> np.ndarray:
    """An RGBA (H, W, 4) uint8 overlay of a map that is never negative, scaled to its
    peak: hot colours where it is high, see-through where it is zero."""
    share = _strength(np.maximum(values, 0), _peak(values))
    rgba = _HEAT_LUT[np.round(share * 255).astype(np.intp)]
    rgba[..., 3] = np.round(share * (255 * float(opacity))).astype(np.uint8)
    return np.ascontiguousarray(rgba)


def signed_colours(values: np.ndarray, opacity: float) -> np.ndarray:
    """An RGBA (H, W, 4) uint8 overlay of a signed map, symmetric about zero, in the app's
    signed colours (orange where it is positive, blue where negative, by default), more
    opaque the larger, see-through at zero."""
    # Pure hues, not the signed map's pale middle: small values would fog the digit.
    scheme = colours.current()
    share = _strength(values, _peak(values))
    positive, negative = _rgba(scheme.positive), _rgba(scheme.negative)
    rgba = np.where((np.nan_to_num(values) >= 0)[..., None], positive, negative)
    rgba[..., 3] = np.round(share * (255 * float(opacity))).astype(np.uint8)
    return np.ascontiguousarray(rgba)


@contextmanager
def interventions_applied(
    model: Any, interventions: Mapping[str, Mapping[int, float]]
) -> Iterator[bool]:
    """While open, ``model`` (the views' own copy) gives the units in ``interventions``
    their forced values, for gradients too. Yields False when it cannot: a TorchScript or
    exported model, whose layers take no hooks (nothing is changed then)."""
    edits = edits_for(interventions)
    if not edits:
        yield True
        return
    try:
        modules = dict(hookable(model, "switching units off").named_modules())
    except NnvizError:
        yield False
        return
    handles = []
    try:
        for name, edit in edits.items():
            if name in modules:
                # Returning the edited output hands it to the next layer, with its graph.
                hook = modules[name].register_forward_hook(lambda _m, _i, out, e=edit: e(out))
                handles.append(hook)
        yield True
    finally:
        for handle in handles:
            handle.remove()


class PictureCard(QWidget):
    """A titled picture of one input, an optional overlay, and a caption in plain words.

    ``show_note`` puts a sentence where the picture was (e.g. "this model has no conv
    layer"); ``show_image`` brings the picture back.
    """

    def __init__(
        self, title: str = "", parent: QWidget | None = None, *, controls: bool = False
    ) -> None:
        super().__init__(parent)
        self._colormap: tuple = ()  # what the picture's colour map was made from
        self._shape: tuple[int, ...] = ()
        self.title = QLabel(title)
        bold = QFont(self.title.font())
        bold.setBold(True)
        self.title.setFont(bold)
        self.title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.caption.setTextFormat(Qt.TextFormat.RichText)
        # Ignored widths: a long title or caption wraps or is cut, never widens the dock.
        for label in (self.title, self.caption):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.caption.setMinimumHeight(3 * self.caption.fontMetrics().lineSpacing())

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setMinimumSize(90, 90)
        self.plot, self.image = image_plot()
        self.graphics.addItem(self.plot)
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setZValue(1)
        self.plot.addItem(self.overlay)
        self.outline = QGraphicsRectItem()
        self.outline.setZValue(2)
        self.plot.addItem(self.outline)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.graphics)
        self.pages.addWidget(self.note)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        # A row for the card's own controls, as tall in every card of a panel so that
        # the pictures beside each other come out the same size.
        self.control_row = QHBoxLayout()
        self.control_row.setContentsMargins(0, 0, 0, 0)
        if controls:
            bar = QWidget()
            bar.setLayout(self.control_row)
            bar.setFixedHeight(QComboBox().sizeHint().height())
            layout.addWidget(bar)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.caption)
        self.apply_palette(self.palette())

    # ----- what it shows ---------------------------------------------------------------------
    def set_title(self, text: str) -> None:
        if self.title.text() != text:
            self.title.setText(text)

    def set_caption(self, html: str) -> None:
        if self.caption.text() != html:
            self.caption.setText(html)

    def show_image(
        self,
        values: np.ndarray,
        levels: tuple[float, float] = (0.0, 1.0),
        colormap: str = GREY,
    ) -> None:
        """The picture: ``values`` (H, W) coloured by ``colormap`` between ``levels``
        (``SIGNED``: the app's signed colours as chosen now, on this card's theme)."""
        signed = colormap == colours.SIGNED
        key = (colormap, colours.current(), self.palette().color(QPalette.ColorRole.Base).rgb())
        if key != self._colormap:
            self._colormap = key
            cmap = colours.colormap(self.palette()) if signed else _colormap(colormap)
            self.image.setColorMap(cmap)
        values = np.ascontiguousarray(values, dtype=np.float32)
        self.image.setImage(values, autoLevels=False, levels=levels)
        if values.shape != self._shape:
            self._shape = values.shape
            h, w = values.shape
            self.outline.setRect(QRectF(-0.25, -0.25, w + 0.5, h + 0.5))
            fit(self.plot, values.shape)
        self.pages.setCurrentIndex(0)

    def show_overlay(self, rgba: np.ndarray | None) -> None:
        """An RGBA (H, W, 4) uint8 layer over the picture; None takes it away."""
        if rgba is None:
            self.overlay.clear()
            self.overlay.hide()
            return
        self.overlay.setImage(rgba, autoLevels=False, levels=None)
        self.overlay.show()

    def show_note(self, text: str) -> None:
        """A sentence where the picture was."""
        self.note.setText(text)
        self.pages.setCurrentIndex(1)

    def showing_note(self) -> bool:
        return self.pages.currentIndex() == 1

    def set_dimmed(self, dimmed: bool) -> None:
        """Faded: what it shows no longer matches the input or the weights."""
        opacity = 0.3 if dimmed else 1.0
        self.image.setOpacity(opacity)
        self.overlay.setOpacity(opacity)
        for label in (self.title, self.caption):
            label.setEnabled(not dimmed)

    def apply_palette(self, pal: QPalette) -> None:
        base, text = pal.color(QPalette.ColorRole.Base), pal.color(QPalette.ColorRole.WindowText)
        self.graphics.setBackground(base)
        # Half way between text and background: the black digit's edge shows on a dark
        # theme without shouting on a light one.
        mid = QColor.fromRgbF(
            *[(a + b) / 2 for a, b in zip(base.getRgbF(), text.getRgbF(), strict=True)]
        )
        pen = QPen(mid)
        pen.setCosmetic(True)
        pen.setWidthF(1.0)
        self.outline.setPen(pen)
