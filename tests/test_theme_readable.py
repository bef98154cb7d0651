"""Every control readable in both themes, after a switch at run time too: enabled text
stands out from its background, disabled text visibly less, icons drawn in the theme's
text colour."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication, QToolBar

from nnviz.core.modelfile import load_model
from nnviz.qt.panels.canvas import CanvasPanel
from nnviz.qt.panels.history import HistoryPanel
from nnviz.qt.theme import apply_theme
from nnviz.state import Session

LENET = str(importlib.resources.files("nnviz.sample_models") / "lenet.nnviz")


@pytest.fixture
def themes():
    """Switch the application's theme; the light theme comes back after the test."""
    app = QApplication.instance()
    yield lambda theme: apply_theme(app, theme)
    apply_theme(app, "light")


def contrast(widget) -> float:
    """How far the widget's most different pixel is from its background (0-255 luma)."""
    image = widget.grab().toImage()
    pixels = np.array(
        [
            [image.pixelColor(x, y).lightness() for x in range(image.width())]
            for y in range(image.height())
        ],
        dtype=float,
    )
    background = np.median(pixels)
    return float(np.abs(pixels - background).max())


def _session() -> Session:
    session = Session()
    session.set_model(load_model(LENET))
    return session


@pytest.mark.parametrize("switched", [False, True], ids=["dark-at-start", "light-then-dark"])
def test_draw_panel_buttons_read_clearly_on_dark(qtbot, themes, switched):
    themes("light" if switched else "dark")
    panel = CanvasPanel(_session())
    qtbot.addWidget(panel)
    panel.resize(700, 500)
    panel.show()
    qtbot.waitExposed(panel)
    if switched:
        themes("dark")
        qtbot.wait(50)
    bars = panel.findChildren(QToolBar)
    buttons = {
        action.text().replace("&", ""): bar.widgetForAction(action)
        for bar in bars
        for action in bar.actions()
        if bar.widgetForAction(action) is not None and action.text()
    }
    enabled = [b for name, b in buttons.items() if b.isEnabled() and name]
    disabled = [b for b in buttons.values() if not b.isEnabled()]
    assert {"Erase", "Clear", "Paste"} <= set(buttons)
    assert disabled, "Undo and Redo start disabled (nothing drawn yet)"
    weakest_enabled = min(contrast(b) for b in enabled)
    strongest_disabled = max(contrast(b) for b in disabled)
    assert weakest_enabled > 150, "enabled text must stand out on the dark background"
    assert strongest_disabled < weakest_enabled - 40, "disabled text must look disabled"
    panel.close_panel()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_history_play_button_icon_is_visible(qtbot, themes, theme):
    themes("light" if theme == "dark" else "dark")
    panel = HistoryPanel(_session())
    qtbot.addWidget(panel)
    panel.resize(320, 200)
    panel.show()
    qtbot.waitExposed(panel)
    themes(theme)
    qtbot.wait(50)
    panel.refresh(force=True)
    icon = panel.play_button.icon().pixmap(16, 16).toImage()
    alpha = np.array(
        [[icon.pixelColor(x, y).alpha() for x in range(icon.width())] for y in range(icon.height())]
    )
    ink = [
        icon.pixelColor(x, y).lightness()
        for y in range(icon.height())
        for x in range(icon.width())
        if icon.pixelColor(x, y).alpha() > 200
    ]
    assert alpha.max() > 200 and ink, "the icon draws something"
    palette = panel.play_button.palette()
    background = palette.color(palette.ColorGroup.Active, palette.ColorRole.Button).lightness()
    assert abs(np.median(ink) - background) > 120, "the icon stands out from its button"
    panel.close_panel()
