"""The colours of signed values, one choice for every panel and legend.

A weight, a gradient or a convolution's output can be positive or negative; every view
of such values (Weights, Receptive fields, Filters, Network, Activations, Feature maps,
Convolution, the signed overlays) colours them with the same map: ``current()`` says
which, ``choose`` changes it (kept in the app's settings under ``SETTING``) and
``changed`` tells the panels to redraw. Blue for negative and orange for positive is
the default: the two stay apart for the common colour-vision deficiencies, where red
and green do not. 3Blue1Brown's green (+) and red (-) is the other choice.

Zero is drawn in the background's own shade, a little towards the text colour (as an
unlit activation cell is), so a value near zero recedes on light and dark themes alike
and the two hues grow out of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from psygnal import Signal
from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QActionGroup, QColor, QPalette
from PySide6.QtWidgets import QMenu, QWidget

from nnviz.qt.theme import mix

SETTING = "colours/signed"
SIGNED = "signed"  # the name of the signed colour map, whichever colours it has
ZERO_SHADE = 0.12  # how far zero's colour is from the background towards the text
MINUS = "\u2212"


@dataclass(frozen=True)
class SignedColours:
    """One way to colour signed values: a colour and a word for each side."""

    key: str  # stored in the settings
    title: str  # in the menu
    positive: str  # a colour name Qt reads ("#e8601c")
    negative: str
    positive_word: str
    negative_word: str

    @property
    def legend(self) -> str:
        """Which side is which, in words: "orange +, blue −"."""
        return f"{self.positive_word} +, {self.negative_word} {MINUS}"

    def legend_html(self) -> str:
        """The legend with each word in its own colour, for a rich-text label."""
        return (
            f"<b style='color:{self.positive}'>{self.positive_word}</b> +, "
            f"<b style='color:{self.negative}'>{self.negative_word}</b> {MINUS}"
        )

    def colour(self, positive: bool) -> QColor:
        return QColor(self.positive if positive else self.negative)


# Orange and blue of the activation cells: both read on white and on near-black.
BLUE_ORANGE = SignedColours(
    "blue-orange",
    "Blue \u2212 / orange + (colour-blind safe)",
    "#e8601c",
    "#2878d2",
    "orange",
    "blue",
)
# The red and green of 3Blue1Brown's video on this network.
GREEN_RED = SignedColours(
    "green-red", "Red \u2212 / green + (3Blue1Brown)", "#3cd75a", "#eb3c32", "green", "red"
)
SCHEMES = {s.key: s for s in (BLUE_ORANGE, GREEN_RED)}
DEFAULT = BLUE_ORANGE


class _Choice:
    """Holds the ``changed`` signal: psygnal, so it needs no QApplication and panels
    connect to it as they do to the Session's events."""

    changed = Signal(object)  # the new SignedColours


_choice = _Choice()
changed = _choice.changed


def _settings() -> QSettings:
    # The app's settings file (the main window's ``app_settings`` opens the same one).
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "nnviz", "nnviz")


def current() -> SignedColours:
    """The colours signed values are drawn in now (the default if the setting is unknown)."""
    return SCHEMES.get(str(_settings().value(SETTING, DEFAULT.key)), DEFAULT)


def choose(key: str) -> None:
    """Draw signed values in scheme ``key`` from now on, in every panel; remembered."""
    scheme = SCHEMES.get(key)
    if scheme is None:
        raise ValueError(f"unknown colours {key!r}: choose one of {', '.join(SCHEMES)}")
    if scheme == current():
        return
    _settings().setValue(SETTING, key)
    changed.emit(scheme)


def zero_colour(palette: QPalette) -> QColor:
    """The colour of zero: the background, a little towards the text."""
    base = palette.color(QPalette.ColorRole.Base)
    return mix(base, palette.color(QPalette.ColorRole.WindowText), ZERO_SHADE)


def colormap(palette: QPalette, scheme: SignedColours | None = None) -> pg.ColorMap:
    """Negative, zero, positive as one pyqtgraph map over [0, 1], named ``SIGNED``."""
    scheme = scheme or current()
    return pg.ColorMap(
        [0.0, 0.5, 1.0],
        [QColor(scheme.negative), zero_colour(palette), QColor(scheme.positive)],
        name=SIGNED,
    )


def lookup_table(palette: QPalette, points: int = 256, alpha: bool = False) -> np.ndarray:
    """The map as a (points, 3 or 4) uint8 table, for ImageItem.setLookupTable."""
    return colormap(palette).getLookupTable(0.0, 1.0, points, alpha=alpha)


def signed_colours_menu(parent: QWidget | None = None) -> QMenu:
    """A "Colours of +/− values" menu with one checkable entry per scheme."""
    menu = QMenu(f"Colours of +/{MINUS} values", parent)
    group = QActionGroup(menu)
    shown = current()
    for scheme in SCHEMES.values():
        action = QAction(scheme.title, menu, checkable=True)
        action.setData(scheme.key)
        action.setChecked(scheme == shown)
        action.triggered.connect(lambda _=False, k=scheme.key: choose(k))
        group.addAction(action)
        menu.addAction(action)

    def tick(scheme: SignedColours) -> None:
        for action in group.actions():
            action.setChecked(action.data() == scheme.key)

    # Also ticked when the choice changes elsewhere; the menu's own slot goes with it.
    changed.connect(tick)
    menu.destroyed.connect(lambda: changed.disconnect(tick))
    return menu
