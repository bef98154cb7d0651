"""The whole window as a person sees it on one screen: first start, a theme switch, a
relaunch and Reset layout, each checked and saved as a screenshot.

Run by tests/test_window_layout.py in a child process per screen (a QApplication takes
its screen from QT_QPA_PLATFORM once), or by hand:

    QT_QPA_PLATFORM=offscreen python tests/layout_check.py 1366x768 --out shots/

It prints one JSON object: the problems found in each state (empty lists when all is
well), the shown docks' geometries, and the screenshots written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

USABLE_CANVAS_PX = 200  # the drawing canvas's shorter side, in logical pixels
USABLE_PICTURE_PX = 80  # a plot or picture in a shown panel
USABLE_CONTROL_PX = 12  # no button, box or label squeezed below this height


def screen_file(spec: str, folder: Path) -> Path:
    """An offscreen screen: 'WxH' or 'WxH@2' (device pixel ratio 2, logical W x H)."""
    size, _, ratio = spec.partition("@")
    width, height = (int(v) for v in size.split("x"))
    path = folder / f"screen-{spec.replace('@', '_at')}.json"
    screen = {
        "name": spec,
        "x": 0,
        "y": 0,
        "width": width,
        "height": height,
        "logicalDpi": 96,
        "logicalBaseDpi": 96,
        "dpr": float(ratio or 1),
    }
    path.write_text(json.dumps({"screens": [screen]}))
    return path


def settle(app, seconds: float) -> None:  # noqa: ANN001
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def shown(widget) -> bool:  # noqa: ANN001
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


def dock_geometries(window) -> dict[str, list[int]]:  # noqa: ANN001
    out = {}
    for name, dock in window.docks.items():
        if shown(dock):
            g = dock.geometry()
            out[name] = [g.x(), g.y(), g.width(), g.height()]
    return out


def _global_rect(widget):  # noqa: ANN001, ANN202
    from PySide6.QtCore import QRect

    return QRect(widget.mapToGlobal(widget.rect().topLeft()), widget.size())


def _name(widget) -> str:  # noqa: ANN001
    parts = []
    w = widget
    while w is not None and len(parts) < 4:
        parts.append(w.objectName() or type(w).__name__)
        w = w.parentWidget()
    return "/".join(reversed(parts))


def problems(window) -> list[str]:  # noqa: ANN001
    """What a person would see wrong in the window as it is now."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractScrollArea,
        QAbstractSpinBox,
        QComboBox,
        QLabel,
        QScrollBar,
        QStackedWidget,
        QTabBar,
        QWidget,
    )

    found: list[str] = []
    room = window.screen().availableGeometry()
    frame = window.frameGeometry()
    if not room.contains(frame):
        found.append(f"window {frame.getRect()} is not inside the screen's room {room.getRect()}")
    if window.minimumSizeHint().width() > room.width() or (
        window.minimumSizeHint().height() > room.height()
    ):
        found.append(f"window asks for at least {window.minimumSizeHint().toTuple()}")
    screen_rect = window.screen().geometry()
    widgets = [w for w in window.findChildren(QWidget) if shown(w)]
    for w in widgets:
        if w.isWindow():
            continue
        r = _global_rect(w).intersected(_global_rect(window))
        if not screen_rect.contains(r) and not r.isEmpty():
            found.append(f"{_name(w)} reaches outside the screen: {r.getRect()}")
        if isinstance(w, QLabel) and w.text() and not w.wordWrap() and w.pixmap().isNull():
            need = w.fontMetrics().horizontalAdvance(w.text().replace("&&", "&"))
            if "<" not in w.text() and need > w.contentsRect().width() + 1:
                found.append(f"label {_name(w)} {w.text()!r} is cut: {need} px in {w.width()}")
        if isinstance(w, (QAbstractButton, QComboBox, QAbstractSpinBox)):
            if w.height() < USABLE_CONTROL_PX or w.width() < USABLE_CONTROL_PX:
                found.append(f"control {_name(w)} is {w.width()}x{w.height()} px")
            if isinstance(w, QAbstractButton) and w.text() and w.sizeHint().width() > w.width():
                text = w.text().replace("&", "")
                if w.fontMetrics().horizontalAdvance(text) > w.width():
                    found.append(f"button {_name(w)} {text!r} is cut to {w.width()} px")
        if isinstance(w, QTabBar) and w.elideMode().name != "ElideNone":
            for i in range(w.count()):
                text = w.tabText(i).replace("&", "")
                if w.tabRect(i).width() < w.fontMetrics().horizontalAdvance(text) + 8:
                    found.append(f"tab {text!r} is cut to {w.tabRect(i).width()} px")
        if isinstance(w, pg.GraphicsView) and min(w.width(), w.height()) < USABLE_PICTURE_PX:
            found.append(f"picture {_name(w)} is only {w.width()}x{w.height()} px")
        # Siblings that cover each other (a stack's pages and scroll bars are meant to).
        parent = w.parentWidget()
        if parent is None or isinstance(parent, (QStackedWidget, QAbstractScrollArea)):
            continue
        if isinstance(w, QScrollBar) or w.objectName().startswith("qt_"):
            continue
        for other in parent.children():
            if (
                other is w
                or not isinstance(other, QWidget)
                or other.isWindow()
                or not shown(other)
                or isinstance(other, QScrollBar)
                or other.objectName().startswith("qt_")
                or id(other) < id(w)
            ):
                continue
            overlap = w.geometry().intersected(other.geometry())
            if overlap.width() > 1 and overlap.height() > 1:
                found.append(f"{_name(w)} and {_name(other)} overlap by {overlap.getRect()}")
    canvas = window.panels["canvas"].canvas if "canvas" in window.panels else None
    if (
        canvas is not None
        and shown(canvas)
        and min(canvas.width(), canvas.height()) < USABLE_CANVAS_PX
    ):
        found.append(f"the canvas is only {canvas.width()}x{canvas.height()} px")
    found += unreadable_buttons(window)
    found += unreachable_docks(window)
    return found


def _luma(image) -> np.ndarray:  # noqa: ANN001
    """A QImage as an (H, W) array of brightness, 0-255."""
    from PySide6.QtGui import QImage

    image = image.convertToFormat(QImage.Format.Format_RGB32)
    width, height = image.width(), image.height()
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(height, image.bytesPerLine())
    bgr = pixels[:, : 4 * width].reshape(height, width, 4)[..., :3].astype(float)
    return bgr @ np.array([0.114, 0.587, 0.299])


def unreadable_buttons(window) -> list[str]:  # noqa: ANN001
    """Text buttons of a panel's tool bar, as drawn in the window: enabled ones stand out
    from their background, disabled ones visibly less (after a theme switch, buttons
    under a style sheet once kept the old theme's dim text)."""
    from PySide6.QtWidgets import QToolBar, QToolButton

    luma = _luma(window.grab().toImage())
    ratio = luma.shape[1] / window.width()
    found = []
    for bar in window.findChildren(QToolBar):
        if not shown(bar) or bar.parentWidget() is window:
            continue
        strength = {}
        for button in bar.findChildren(QToolButton):
            if not shown(button) or not button.text():
                continue
            top_left = button.mapTo(window, button.rect().topLeft())
            x, y = round(top_left.x() * ratio), round(top_left.y() * ratio)
            patch = luma[
                y : y + round(button.height() * ratio), x : x + round(button.width() * ratio)
            ]
            if patch.size:
                strength[button] = float(np.abs(patch - np.median(patch)).max())
        enabled = [v for b, v in strength.items() if b.isEnabled()]
        disabled = [v for b, v in strength.items() if not b.isEnabled()]
        if enabled and min(enabled) < 120:
            found.append(f"a button of {_name(bar)} hardly stands out ({min(enabled):.0f})")
        if enabled and disabled and max(disabled) > min(enabled) - 30:
            found.append(f"a disabled button of {_name(bar)} looks enabled")
    return found


def unreachable_docks(window) -> list[str]:  # noqa: ANN001
    """Docks shown by default that a person can neither see nor pick from a visible tab."""
    from PySide6.QtWidgets import QTabBar

    titles = set()
    for bar in window.findChildren(QTabBar):
        if shown(bar):
            titles |= {bar.tabText(i).replace("&", "") for i in range(bar.count())}
    return [
        f"dock {name} cannot be reached"
        for name, dock in window.docks.items()
        if dock.isVisible() and not shown(dock) and dock.windowTitle() not in titles
    ]


def open_app(settle_s: float):  # noqa: ANN201
    """The app as ``nnviz`` starts it: the window first, then the panels and the model."""
    from nnviz.qt.app import attach, create_shell, load_default_data, open_first_model

    app, window = create_shell(remember_layout=True)
    window.show()
    settle(app, 0.3)
    attach(window)
    open_first_model(window, None)
    load_default_data(window)
    settle(app, settle_s)
    return app, window


def close_app(app, window) -> None:  # noqa: ANN001
    import shiboken6

    window.session.set_dirty(False)
    window.close()
    settle(app, 0.1)
    shiboken6.delete(window)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("screen", help="WxH or WxH@2 (device pixel ratio 2)")
    parser.add_argument("--out", default=None, help="folder for the screenshots")
    parser.add_argument("--settle", type=float, default=1.5, help="seconds to settle")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="nnviz-layout-"))
    out = Path(args.out or work)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={screen_file(args.screen, work)}"
    os.environ.setdefault("XDG_CONFIG_HOME", str(work / "config"))
    tag = args.screen.replace("@", "_at")
    report: dict = {"screen": args.screen, "states": {}, "screenshots": []}

    def look(state: str, window) -> None:  # noqa: ANN001
        report["states"][state] = problems(window)
        path = out / f"{tag}-{state}.png"
        window.grab().save(str(path))
        report["screenshots"].append(str(path))

    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "cfg"))
    app, window = open_app(args.settle)
    window.set_theme("light")
    settle(app, 0.3)
    first = dock_geometries(window)
    look("first-start-light", window)
    window.set_theme("dark")
    settle(app, 0.5)
    look("first-start-dark", window)
    saved = dock_geometries(window)
    close_app(app, window)

    app, window = open_app(args.settle)
    report["relaunch_moved"] = _moved(saved, dock_geometries(window))
    look("relaunch-dark", window)
    window.reset_layout()
    settle(app, 1.2)
    report["reset_moved"] = _moved(first, dock_geometries(window))
    look("reset-dark", window)
    window.set_theme("light")
    close_app(app, window)
    print(json.dumps(report))
    return 0


def _moved(before: dict, after: dict) -> dict:
    return {
        name: [before.get(name), after.get(name)]
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


if __name__ == "__main__":
    sys.exit(main())
