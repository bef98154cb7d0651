"""Where the window goes and where its docks go: sized to the screen it opens on, laid
out for the room it has, and put back as it was at the next start.

The first start, View > Reset layout and a relaunch with no saved layout all use
``default_layout``, so each gives the same picture for the same window size. Dock sizes
are shares of the room the window has, not fixed pixels: at 1366x768 the old fixed
sizes (made for 1600x1000) asked for more than the screen held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QRect, QSettings, QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea

if TYPE_CHECKING:
    from nnviz.qt.main_window import MainWindow
    from nnviz.qt.panels.base import Panel

DEFAULT_SIZE = (1600, 1000)  # a window on a large screen (and the screenshots')
# Below this room (in the screen's logical pixels) the window opens maximised and the
# left column stacks Training and History as tabs: three panels one above the other
# left the Input panel's prediction line under History at 1366x768.
COMPACT_BELOW = QSize(1500, 900)
LEFT_WIDTH = 0.2  # of the window's width, at least LEFT_MIN_PX
LEFT_MIN_PX = 300  # the Input panel (272 px at its smallest) and a scroll bar
TOP_SHARE = 0.5  # the top row's share of the docks' height (the bottom holds the canvas)
CANVAS_SHARE = 0.45  # the Draw panel's share of the bottom row's width
# The left column's heights (Training, Input, History), as shares of the column.
COLUMN_SHARES = (0.40, 0.40, 0.20)
COMPACT_COLUMN_SHARES = (0.45, 0.55)  # Training (History behind it), Input
COMPACT_TABS = {"history": "training"}  # on a small screen, panel -> the tab it joins

_LEFT = Qt.DockWidgetArea.LeftDockWidgetArea
_TOP = Qt.DockWidgetArea.TopDockWidgetArea
_BOTTOM = Qt.DockWidgetArea.BottomDockWidgetArea


def panel_dock(panel: Panel, window: QMainWindow) -> QDockWidget:
    """A dock for ``panel``, which scrolls when the dock is smaller than the panel can be.

    Without the scroll area each panel's smallest size added up across a row or column
    of docks, and the window asked for more than the screen: 1276x791 at 1366x768 (at
    2560x1440 and scale 2, 1280x720 of room, the bottom tabs went off screen).
    """
    dock = QDockWidget(panel.title, window)
    dock.setObjectName(f"dock_{panel.object_name}")
    scroll = QScrollArea()
    scroll.setObjectName(f"scroll_{panel.object_name}")
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidgetResizable(True)
    scroll.setWidget(panel)
    dock.setWidget(scroll)
    return dock


def available_room(window: QMainWindow) -> QRect:
    """The part of the window's screen that windows may use (no task bars), in logical
    pixels: a 2560x1440 screen at scale 2 gives 1280x720."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry()


def is_compact(room: QRect | QSize) -> bool:
    return room.width() < COMPACT_BELOW.width() or room.height() < COMPACT_BELOW.height()


def place_on_screen(window: QMainWindow) -> None:
    """A first start (or Reset): maximised where the screen is smaller than the default
    size, else the default size centred on the screen."""
    room = available_room(window)
    width, height = DEFAULT_SIZE
    small = room.width() < width or room.height() < height  # every compact room is small
    if small and window.isMaximized():
        return
    if small:  # a normal size to come back to when the user un-maximises, inside the screen
        width, height = min(width, room.width() * 9 // 10), min(height, room.height() * 9 // 10)
    frame = QRect(0, 0, width, height)
    frame.moveCenter(room.center())
    window.setGeometry(frame)
    maximised = Qt.WindowState.WindowMaximized
    state = window.windowState()
    window.setWindowState(state | maximised if small else state & ~maximised)


def restore_geometry(window: QMainWindow, saved: object) -> bool:
    """The window's size and place from last time, if it still fits the screen it lands
    on (a window saved on a larger screen, or at another scale, is placed anew)."""
    if not isinstance(saved, QByteArray) or not window.restoreGeometry(saved):
        return False
    if window.windowState() & Qt.WindowState.WindowMaximized:
        return True
    room = available_room(window)
    if room.contains(window.frameGeometry()) or room.contains(window.geometry()):
        return True
    place_on_screen(window)
    return True


def default_layout(window: MainWindow, room: QSize | None = None) -> None:
    """Every dock where a first start puts it: placed, shown or hidden by default,
    tabbed, and sized for ``room`` (the window's size when not given)."""
    from nnviz.qt.panel_list import PANELS

    room = room or window.size()
    compact = is_compact(room)
    docks = window.docks
    window.setCorner(Qt.Corner.BottomLeftCorner, _LEFT)
    window.setCorner(Qt.Corner.TopLeftCorner, _LEFT)
    # Out of the layout first: tabbing docks that are already tabbed left stale tab
    # bars on screen, over the docks.
    for dock in docks.values():
        window.removeDockWidget(dock)
    fronts: dict[str, QDockWidget] = {}
    behind: list[tuple[QDockWidget, QDockWidget]] = []
    for panel_type, area, group in PANELS:
        dock = docks[panel_type.object_name]
        dock.setFloating(False)
        joins = COMPACT_TABS.get(panel_type.object_name) if compact else None
        if joins is not None:
            behind.append((docks[joins], dock))
        elif group is not None and group in fronts:
            behind.append((fronts[group], dock))
        else:
            window.addDockWidget(area, dock)
            if group is not None:
                fronts[group] = dock
        dock.setVisible(panel_type.shown_by_default)
    # Place the groups side by side first, then stack their other panels as tabs
    # (splitting a tabbed dock would pull it out of its tabs).
    top = [d for d in fronts.values() if window.dockWidgetArea(d) == _TOP]
    for a, b in zip(top, top[1:], strict=False):
        window.splitDockWidget(a, b, Qt.Orientation.Horizontal)
    for front, dock in behind:
        window.tabifyDockWidget(front, dock)
    for dock in fronts.values():
        dock.raise_()
    for front, _ in behind:
        front.raise_()
    _size_docks(window, room, compact, top, [d for d in fronts.values() if d not in top])


def _size_docks(
    window: MainWindow,
    room: QSize,
    compact: bool,
    top: list[QDockWidget],
    bottom: list[QDockWidget],
) -> None:
    from nnviz.qt.panel_list import PANELS

    docks = window.docks
    width, height = room.width(), room.height()
    left_names = [t.object_name for t, area, _ in PANELS if area == _LEFT]
    column = [docks[name] for name in left_names if not (compact and name in COMPACT_TABS)]
    left_px = max(LEFT_MIN_PX, round(width * LEFT_WIDTH))
    window.resizeDocks(column, [left_px] * len(column), Qt.Orientation.Horizontal)
    shares = COMPACT_COLUMN_SHARES if compact else COLUMN_SHARES
    window.resizeDocks(column, [round(s * height) for s in shares], Qt.Orientation.Vertical)
    right = width - left_px
    bottom = [d for d in bottom if window.dockWidgetArea(d) == _BOTTOM]
    beside_canvas = [d for d in bottom if d is not docks.get("canvas")]
    if top and bottom:
        top_px = round(height * TOP_SHARE)
        window.resizeDocks([top[0], bottom[0]], [top_px, height - top_px], Qt.Orientation.Vertical)
    if len(top) > 1:
        window.resizeDocks(top, [right // len(top)] * len(top), Qt.Orientation.Horizontal)
    if beside_canvas and "canvas" in docks:  # the views beside the canvas get the rest
        canvas_px = round(right * CANVAS_SHARE)
        window.resizeDocks(
            [docks["canvas"], beside_canvas[0]],
            [canvas_px, right - canvas_px],
            Qt.Orientation.Horizontal,
        )


def restore_docks(window: QMainWindow, settings: QSettings, version: int) -> bool:
    """The docks as they were saved, when a layout of this version was saved."""
    state = settings.value("window/state")
    return isinstance(state, QByteArray) and window.restoreState(state, version)
