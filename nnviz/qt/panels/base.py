"""The panel contract: a panel gets state from the Session and draws it; nothing more.

A panel never reaches into the trainer or the model being trained. It subscribes to
Session events in ``__init__`` (through ``listen`` so ``close`` disconnects them),
marks itself stale when something it shows changed, and the main window's frame timer
calls ``refresh`` at most 30 times a second; a hidden panel does not redraw at all.
What the user asks for (change the learning rate, pick a layer) leaves a panel as a
Qt signal, never as a direct call into other parts of the app.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from PySide6.QtCore import QEvent, QPoint, QRect, Qt
from PySide6.QtWidgets import QWidget

from nnviz.state import Session


class Panel(QWidget):
    """Base class of every dock's content."""

    title: ClassVar[str] = "Panel"
    object_name: ClassVar[str] = "panel"  # stable: QSettings stores the layout under it
    area: ClassVar[Qt.DockWidgetArea] = Qt.DockWidgetArea.RightDockWidgetArea
    shown_by_default: ClassVar[bool] = True
    # Most views are cheap and follow at the frame rate; a costly one (a plot with many
    # points) sets a lower rate so the GUI thread leaves the GIL to the trainer.
    max_fps: ClassVar[float] = 30.0

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Opaque: when something inside redraws, Qt repaints from the panel down, not
        # the dock and the main window beneath it (which doubled every repaint's cost).
        self.setAutoFillBackground(True)
        self.session = session
        self._stale = True
        self._palette_changed = False
        self._last_redraw = 0.0
        self._connections: list[tuple[Any, Callable]] = []

    def listen(self, signal: Any, slot: Callable) -> None:
        """Connect to a Session (psygnal) signal; undone by ``close_panel``."""
        signal.connect(slot)
        self._connections.append((signal, slot))

    def listens_to(self, signal: Any) -> bool:  # noqa: ANN401 - a psygnal SignalInstance
        """Whether this panel follows ``signal`` (connected with ``listen``)."""
        return any(connected is signal for connected, _ in self._connections)

    def mark_stale(self, *_: Any) -> None:
        self._stale = True

    @property
    def last_redraw(self) -> float:
        """When it last redrew (``time.perf_counter``; 0 if never)."""
        return self._last_redraw

    @property
    def stale(self) -> bool:
        return self._stale

    def is_shown(self) -> bool:
        """Visible on screen: its dock is open and not hidden behind another tab (the
        window keeps a dock behind a tab outside its own rectangle).

        Some of it inside every parent's rectangle: not ``visibleRegion`` alone, which leaves
        out what opaque children cover. A panel its children covered, in a dock that
        scrolled its last rows out of sight, had an empty region and never redrew.
        """
        if not self.isVisible():
            return False
        if not self.visibleRegion().isEmpty():
            return True  # the usual answer, in 1.4 us (the walk below takes 18)
        window = self.window()
        if not window.rect().intersects(QRect(self.mapTo(window, QPoint(0, 0)), self.size())):
            return False  # behind a tab: the window keeps the dock outside itself
        rect, widget = self.rect(), self
        while not widget.isWindow():
            parent = widget.parentWidget()
            rect = rect.translated(widget.pos()).intersected(parent.rect())
            if rect.isEmpty():
                return False
            widget = parent
        return True

    def refresh(self, force: bool = False, throttle: bool = False) -> bool:
        """Redraw if stale and visible (or forced); True if it drew.

        ``throttle`` (the frame timer's calls) also holds the panel to ``max_fps``.
        """
        if not self._stale or not (force or self.is_shown()):
            return False
        now = time.perf_counter()
        if throttle and now - self._last_redraw < 1.0 / self.max_fps:
            return False
        self._stale = False
        self._last_redraw = now
        if self._palette_changed:
            self._palette_changed = False
            self.palette_changed()
        self.redraw()
        return True

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        # A new theme is taken at the next redraw: the panel is fully built by then
        # (palette events also arrive during construction), and a hidden panel waits.
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._palette_changed = True
            self.mark_stale()

    def palette_changed(self) -> None:
        """Take the colours of a new theme (from ``self.palette()``); called before a redraw."""

    def redraw(self) -> None:
        """Draw the latest state; called on the GUI thread, at most 30 times a second."""

    def close_panel(self) -> None:
        for signal, slot in self._connections:
            signal.disconnect(slot)
        self._connections.clear()
