"""The main window: panels in docks, menus, toolbar, status bar and the frame timer.

It comes up in two steps so that a person sees it at once. The window itself (menus,
toolbar, a "Loading" line) needs only Qt and is shown first; ``attach`` then adds the
Session, the training runner and the panels, which need torch (over a second to import).
The panels and where they go are listed in ``nnviz.qt.panel_list``.
"""

from __future__ import annotations

import gc
import math
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QChildEvent, QEvent, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenuBar,
    QMessageBox,
    QTabBar,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from nnviz.about import about_text
from nnviz.core.errors import NnvizError
from nnviz.core.memory import give_back_freed_memory
from nnviz.qt.banner import MessageBanner
from nnviz.qt.frame_rate import FrameRate
from nnviz.qt.redraw_budget import RedrawBudget
from nnviz.qt.theme import THEMES, apply_theme
from nnviz.qt.window_layout import (
    DEFAULT_SIZE,
    default_layout,
    panel_dock,
    place_on_screen,
    restore_docks,
    restore_geometry,
)

if TYPE_CHECKING:
    from nnviz.qt.documents import Documents
    from nnviz.qt.panels.base import Panel
    from nnviz.qt.runner import TrainingRunner
    from nnviz.state import Session

FRAME_MS = 33  # panels redraw at most 30 times a second
# Python time the frame timer may spend redrawing panels per tick (30 ticks a second):
# about a tenth of the GUI thread, the rest left to painting and to the trainer's GIL.
FRAME_BUDGET_S = 0.003
# What the user does by hand (a stroke on the canvas) is shown at once rather than at
# the next tick, at most 60 times a second: moves that come faster are coalesced.
PROMPT_FPS = 60.0
# Frames that may come at once: a stroke's end and the next one's start (release, clear,
# press) come together, and with room for only two the first move of the new stroke
# waited for the frame they had used up.
PROMPT_BURST = 3.0
# While a person draws, the views that follow training wait: a stroke's frames go to the
# canvas and the views that follow it, and the rest catch up this long after the last move.
HANDS_ON_S = 0.15
# While training runs flat out, the views that follow it may use this share of a core
# (the GUI thread holds the GIL while it redraws and paints; see redraw_budget.py).
# Training loses about as much of its speed as the GUI thread holds the GIL, and a
# redraw holds it for milliseconds at a time: at a tenth of a core lenet's ratio sat at
# the 0.90 target (0.88-0.96 over four full bench runs), and at 8%, once the status bar
# and the news took less of the share and the views more, one run gave 0.88. At 7% the
# views in the default layout redraw 1.5-1.7 times a second beside lenet and 0.9-1.1
# beside mlp-3b1b; with all twenty panels on screen each redraws every 2-5 s.
GUI_SHARE_WHILE_TRAINING = 0.07
# After Reset layout, a resize this soon is the window manager's answer to it.
RELAYOUT_S = 1.0
GIVE_BACK_MEMORY_MS = 1500  # after a model switch: the views have redrawn by then
GUI_BURST_S = 0.05
_LEFT = Qt.DockWidgetArea.LeftDockWidgetArea
_RIGHT = Qt.DockWidgetArea.RightDockWidgetArea
_NO_LIMIT = 16777215  # QWIDGETSIZE_MAX
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")  # dropped: the canvas's


def app_settings() -> QSettings:
    """nnviz's settings (an INI file in the user's config folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "nnviz", "nnviz")


class MainWindow(QMainWindow):
    def __init__(self, session: Session | None = None, *, remember_layout: bool = True) -> None:
        """The window without its panels; ``attach`` (or ``create_window``) adds them.

        Passing a ``session`` attaches at once.
        """
        super().__init__()
        self.session: Session | None = None
        self.runner: TrainingRunner | None = None
        self.documents: Documents | None = None
        self.panels: dict[str, Panel] = {}
        self._followers: list[Panel] | None = None  # the canvas and the views that follow it
        self.docks: dict[str, QDockWidget] = {}
        self._relayout_until = 0.0
        self._message_had_data = False
        self._relayout = QTimer(self)
        self._relayout.setSingleShot(True)
        self._relayout.setInterval(0)
        self._relayout.timeout.connect(lambda: default_layout(self))
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        # Messages go at the top of the window, under the menus and across its width:
        # in the central strip they sat between the two rows of docks, a line and a
        # half tall. The menu bar and the banner share the window's menu widget.
        self.menu_bar = QMenuBar()
        self.banner = MessageBanner()
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(0)
        top_layout.addWidget(self.menu_bar)
        top_layout.addWidget(self.banner)
        self.setMenuWidget(top)
        self.loading = QLabel("Loading PyTorch…")
        self.loading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loading, 1)
        self.setCentralWidget(central)
        self.statusBar().showMessage("Starting…")
        self._build_actions()
        self._build_menus()
        # A screenshot or benchmark run shows the default layout and leaves the user's alone.
        self.remember_layout = remember_layout
        if remember_layout:
            self._restore_geometry()
        else:
            self.resize(*DEFAULT_SIZE)
        self.setWindowTitle("nnviz")
        for action in self._model_actions():
            action.setEnabled(False)
        self._frame = QTimer(self)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self.refresh_panels)
        self._prompt = QTimer(self)
        self._prompt.setSingleShot(True)
        self._prompt.timeout.connect(self.refresh_now)
        self._last_prompt = 0.0
        self._prompt_rate = FrameRate(PROMPT_FPS, burst=PROMPT_BURST)
        # After a model switch, once the views have rebuilt for the new one, what the old
        # one held (weights, history, the views' arrays) goes back to the system.
        self._give_back_memory = QTimer(self)
        self._give_back_memory.setSingleShot(True)
        self._give_back_memory.setInterval(GIVE_BACK_MEMORY_MS)
        self._give_back_memory.timeout.connect(give_back_freed_memory)
        self.redraw_budget = RedrawBudget(GUI_SHARE_WHILE_TRAINING, GUI_BURST_S)
        if session is not None:
            self.attach(session)

    def attach(self, session: Session | None = None) -> None:
        """Add the Session, runner, panels and status bar: the window becomes the app."""
        from nnviz.qt.documents import Documents
        from nnviz.qt.runner import TrainingRunner
        from nnviz.qt.status import TrainingStatusBar
        from nnviz.state import Session

        size = self.size()  # adding docks to a shown window would widen it to fit them
        self.session = session or Session()
        self.runner = TrainingRunner(self.session, self)
        self.documents = Documents(self)
        self.status = TrainingStatusBar(self.session)
        self.setStatusBar(self.status)
        self.loading.hide()
        self._fit_central()
        # No garbage collection while the docks are built and laid out: one that ran
        # inside the first layout's resizes freed a slot pyqtgraph's ViewBox still
        # signalled, and the process died (4 of 4 starts at one point of this change,
        # none since; the cause was not pinned down). Start-up collects and freezes
        # everything it made once the window is up.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._add_panels()
            default_layout(self, size)
        finally:
            if collecting:
                gc.enable()
        if not self.isMaximized():
            self.resize(size)
            # The dock layout settles on the next turn of the event loop (or at show) and
            # widens the window to the docks' preferred sizes: put the size back after it.
            QTimer.singleShot(0, lambda: self.isMaximized() or self.resize(size))
        if self.remember_layout:
            # Restored once the window has settled with its model open: restored here,
            # the left column grew by 15 px at every relaunch (and without scrolling
            # docks the Draw panel shrank by a third).
            QTimer.singleShot(0, self._restore_layout)
        self._fill_menus()
        self._wire()
        if "canvas" in self.panels:
            self.panels["canvas"].canvas.drawing_changed.connect(self.request_refresh)
        self.documents.update_recent_menu()
        self.update_title()
        self._update_actions()
        self._frame.start()

    @property
    def attached(self) -> bool:
        return self.session is not None

    def _fit_central(self) -> None:
        """The docks fill the window; the central strip shows only "Loading…"."""
        central = self.centralWidget()
        central.setMaximumHeight(_NO_LIMIT if self.loading.isVisibleTo(central) else 0)

    # ----- construction ------------------------------------------------------------------
    def _add_panels(self) -> None:
        from nnviz.qt.panel_list import PANELS

        for panel_type, _, _ in PANELS:
            self._add_panel(panel_type(self.session))

    def tile_all_panels(self) -> None:
        """Every panel on screen at once, none behind a tab (for the benchmark)."""
        from nnviz.qt.panel_list import PANELS

        docks = [self.docks[t.object_name] for t, area, _ in PANELS if area != _LEFT]
        for dock in docks:
            dock.setVisible(True)
            self.addDockWidget(_RIGHT, dock)
        half = (len(docks) + 1) // 2
        for a, b in zip(docks[:half], docks[half:], strict=False):
            self.splitDockWidget(a, b, Qt.Orientation.Vertical)

    def _add_panel(self, panel: Panel) -> QDockWidget:
        """A dock for ``panel``; ``default_layout`` puts it in its place."""
        dock = panel_dock(panel, self)
        dock.visibilityChanged.connect(lambda visible, p=panel: visible and p.mark_stale())
        self.panels[panel.object_name] = panel
        self.docks[panel.object_name] = dock
        self._followers = None
        return dock

    def _action(
        self, text: str, slot: object, shortcut: QKeySequence | str | None = None, tip: str = ""
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(
            f"{tip or text} ({QKeySequence(shortcut).toString()})" if shortcut else tip or text
        )
        action.triggered.connect(slot)
        return action

    def _documents(self, method: str):  # noqa: ANN202
        """A slot for a Documents method; the actions exist before ``attach`` makes Documents."""
        return lambda *_: getattr(self.documents, method)()

    def _build_actions(self) -> None:
        d = self._documents
        self.act_open = self._action("&Open…", d("open_dialog"), QKeySequence.StandardKey.Open)
        self.act_save = self._action("&Save", d("save"), QKeySequence.StandardKey.Save)
        self.act_save_as = self._action("Save &As…", d("save_as"), "Ctrl+Shift+S")
        self.act_quit = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_train = self._action("&Train", self.train, "F5", "Start or resume training")
        self.act_pause = self._action("&Pause", self.pause, "F6", "Pause training")
        self.act_step = self._action("S&tep", self.step, "F10", "Take one training step")
        self.act_stop = self._action("St&op", self.stop_training, "Shift+F5", "Stop training")
        self.act_reinit = self._action("&Reinitialise weights", d("reinitialise"))
        self.act_custom = self._action(
            "&Custom architecture…", d("custom_architecture"), "Ctrl+Shift+N"
        )
        self.act_reset_layout = self._action("&Reset layout", self.reset_layout)
        self.act_restore_units = self._action(
            "Restore all s&witched-off units",
            lambda: self.session.restore_all(),
            "Ctrl+Shift+R",
            "Every switched-off or clamped unit computes its own output again",
        )

    def _build_menus(self) -> None:
        bar = self.menu_bar
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.act_open)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addAction(self.act_save)
        file_menu.addAction(self.act_save_as)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)

        self.model_menu = model_menu = bar.addMenu("&Model")
        self.presets_menu = model_menu.addMenu("New from &preset")  # filled by ``attach``
        model_menu.addAction(self.act_custom)
        model_menu.addAction(self.act_reinit)
        model_menu.addSeparator()
        model_menu.addAction(self.act_restore_units)

        self.data_menu = data_menu = bar.addMenu("&Data")
        self.data_group = QActionGroup(self)
        for label, source in (
            ("Bundled &MNIST", "mnist"),
            ("&Fashion-MNIST (download)", "fashion-mnist"),
        ):
            act = data_menu.addAction(label, lambda s=source: self.documents.use_data(s))
            act.setCheckable(True)
            act.setData(source)
            self.data_group.addAction(act)
        data_menu.addAction("Folder of IDX files…", self._documents("pick_data_folder"))

        train_menu = bar.addMenu("&Train")
        for act in (self.act_train, self.act_pause, self.act_step, self.act_stop):
            train_menu.addAction(act)

        self.view_menu = bar.addMenu("&View")  # ``attach`` lists the panels above the line
        self._view_separator = self.view_menu.addSeparator()
        theme_menu = self.view_menu.addMenu("T&heme")
        self.theme_group = QActionGroup(self)
        for theme in THEMES:
            act = theme_menu.addAction(theme.capitalize(), lambda t=theme: self.set_theme(t))
            act.setCheckable(True)
            act.setData(theme)
            self.theme_group.addAction(act)
        self.view_menu.addAction(self.act_reset_layout)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction("&About nnviz", self.show_about)

        tools = QToolBar("Main toolbar")
        tools.setObjectName("toolbar_main")
        for act in (self.act_open, self.act_save):
            tools.addAction(act)
        tools.addSeparator()
        for act in (self.act_train, self.act_pause, self.act_step, self.act_stop):
            tools.addAction(act)
        self.addToolBar(tools)

    def _fill_menus(self) -> None:
        """What needs the panels and the presets: each panel in View, each preset in Model,
        the colours of signed values (pyqtgraph's colour maps) under the theme."""
        from nnviz.qt.colours import signed_colours_menu

        self.view_menu.insertMenu(self.act_reset_layout, signed_colours_menu(self))
        for dock in self.docks.values():
            self.view_menu.insertAction(self._view_separator, dock.toggleViewAction())
        for name in self.documents.preset_names():
            self.presets_menu.addAction(name, lambda n=name: self.documents.new_from_preset(n))

    def _model_actions(self) -> list[QAction]:
        """What waits for ``attach``: everything that needs a model, data or the runner."""
        return [
            self.act_open,
            self.act_save,
            self.act_save_as,
            self.act_train,
            self.act_pause,
            self.act_step,
            self.act_stop,
            self.act_reinit,
            self.act_custom,
            self.act_restore_units,
            self.recent_menu.menuAction(),
            self.model_menu.menuAction(),
            self.data_menu.menuAction(),
        ]

    def _wire(self) -> None:
        s = self.session
        s.error.connect(self.show_error)
        # A message about the old model or data goes when they are replaced; connected
        # first, so that one a panel gives about the new ones stays.
        s.model_loaded.connect(lambda *_: self.banner.hide(), priority=100)
        s.data_changed.connect(self._data_replaced, priority=100)
        s.status_changed.connect(lambda _: self._update_actions())
        s.model_loaded.connect(self.update_title)
        s.model_loaded.connect(self._model_switched)
        s.model_loaded.connect(self._update_actions)
        s.dirty_changed.connect(lambda _: self.update_title())
        s.data_changed.connect(self.update_data_menu)
        s.interventions_changed.connect(self._update_actions)
        training = self.panels["training"]
        training.lr_changed.connect(self.runner.set_lr)
        training.weight_decay_changed.connect(self.runner.set_weight_decay)
        training.pace_changed.connect(self.runner.set_pace)

    # ----- frame timer ---------------------------------------------------------------
    def refresh_panels(self) -> None:
        """Redraw visible, stale panels (at most 30 times a second), within a time budget.

        With every panel open, redrawing them all on each new snapshot took a third of
        the GUI thread and, through the GIL, of the trainer. Each tick now redraws the
        panels that waited longest until ``FRAME_BUDGET_S`` is spent (at least one); the
        others get their turn on the next ticks, so the cost stays bounded however many
        panels are open, and each still follows within a fraction of a second. While
        training runs flat out they also keep within ``redraw_budget``, and while a person
        draws on the canvas they wait for the stroke (``HANDS_ON_S``).
        """
        start = time.perf_counter()
        allowed = self.redraw_budget.allow(start, time.thread_time(), limited=self.runner.flat_out)
        if start - self._last_prompt < HANDS_ON_S:
            return  # a person is drawing: the stroke's frames are theirs
        if allowed:
            for panel in sorted(self.panels.values(), key=lambda p: p.last_redraw):
                if time.perf_counter() - start > FRAME_BUDGET_S:
                    break
                panel.refresh(throttle=True)
        self.status.refresh()

    def _model_switched(self) -> None:
        self._give_back_memory.start()

    def request_refresh(self) -> None:
        """Show a change the user made by hand now (within a 60 Hz frame), not at the tick."""
        if self._prompt.isActive():
            return  # already coming: this change is drawn with it
        wait = self._prompt_rate.wait(time.perf_counter())
        if wait <= 0:
            # Due now: draw it in this turn of the event loop. A zero-time timer would
            # wait behind whatever else is queued (2.6 ms median while lenet trains).
            self.refresh_now()
        else:
            self._prompt.start(math.ceil(wait * 1000))

    def refresh_now(self) -> None:
        """Redraw the canvas and the visible, stale views that follow the input; the rest
        (made stale by training) wait for their tick."""
        self._last_prompt = time.perf_counter()
        self._prompt_rate.take(self._last_prompt)
        # Training's news waits too: taking a snapshot in (new weights for the view
        # model, the loss curve's points) between two moves of a stroke is what made
        # its slowest frames.
        self.runner.hold(HANDS_ON_S)
        if self._followers is None:
            # The canvas first: it sets the input, which the views then follow.
            self._followers = sorted(
                (
                    panel
                    for panel in self.panels.values()
                    if panel.listens_to(self.session.input_changed) or panel.object_name == "canvas"
                ),
                key=lambda panel: panel.object_name != "canvas",
            )
        followers = self._followers
        for _ in range(3):
            # Asked again only if shown: a view behind a tab stays stale, and asking it
            # every round cost a visibility check each time. One found stale and shown
            # here is not asked again by its refresh (force); one that goes stale during
            # the round (the canvas sets the input) is asked there.
            checked = [(p, p.stale) for p in followers if not p.stale or p.is_shown()]
            followers = [panel for panel, _ in checked]
            if not any([panel.refresh(force=seen) for panel, seen in checked]):
                break

    # ----- training ------------------------------------------------------------------
    def train(self) -> None:
        from nnviz.state import RUNNING

        try:
            if self.runner.active:
                self.runner.resume()
                self.session.set_status(RUNNING)
            else:
                self.runner.start()
        except NnvizError as exc:
            self.show_error(str(exc))
        self._update_actions()

    def pause(self) -> None:
        self.runner.pause()
        self._update_actions()

    def step(self) -> None:
        try:
            self.runner.step()
        except NnvizError as exc:
            self.show_error(str(exc))
        self._update_actions()

    def stop_training(self) -> None:
        self.runner.stop()
        self._update_actions()

    def _update_actions(self) -> None:
        from nnviz.state import PAUSED, RUNNING

        for action in self._model_actions()[-3:]:  # the menus that wait for ``attach``
            action.setEnabled(True)
        status = self.session.status
        trainable = self.session.trainable
        active = self.runner.active
        self.act_train.setEnabled(trainable and status != RUNNING)
        self.act_train.setText("&Resume" if active and status == PAUSED else "&Train")
        self.act_pause.setEnabled(active and status == RUNNING)
        self.act_step.setEnabled(trainable)
        self.act_stop.setEnabled(active)
        for act in (self.act_reinit, self.act_save, self.act_save_as):
            act.setEnabled(trainable and not (active and status == RUNNING))
        self.act_custom.setEnabled(not active)
        self.act_open.setEnabled(not active)
        self.act_restore_units.setEnabled(bool(self.session.interventions))

    # ----- messages, title, theme, layout ----------------------------------------------
    def show_error(self, message: str) -> None:
        self.banner.show_message(message, "error")
        # Data that arrives where there was none (at start-up) does not answer the message.
        self._message_had_data = self.session is not None and self.session.data is not None
        self.statusBar().showMessage(message.splitlines()[0], 8000)

    def _data_replaced(self, *_: object) -> None:
        if self._message_had_data:
            self.banner.hide()

    def show_about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About nnviz", about_text(), parent=self)
        box.open()

    def update_title(self) -> None:
        loaded = self.session.loaded
        name = loaded.display_name if loaded is not None else "no model"
        self.setWindowTitle(f"{name}{self.documents.title_note()}[*] — nnviz")
        self.setWindowModified(self.session.dirty)

    def update_data_menu(self) -> None:
        for act in self.data_group.actions():
            act.setChecked(act.data() == self.session.data_source)

    def set_theme(self, theme: str) -> None:
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        apply_theme(app, theme)
        app_settings().setValue("theme", theme)
        for act in self.theme_group.actions():
            act.setChecked(act.data() == theme)
        for panel in self.panels.values():
            panel.mark_stale()

    def reset_layout(self) -> None:
        """The window and its docks as a first start on this screen puts them."""
        if self.remember_layout:
            place_on_screen(self)
            # A window manager maximises or resizes a little later: the docks are sized
            # again for the size it gives.
            self._relayout_until = time.perf_counter() + RELAYOUT_S
        default_layout(self)

    def childEvent(self, event: QChildEvent) -> None:  # noqa: N802 - Qt override
        super().childEvent(event)
        # The docks' tab bars (made by the window as docks are tabbed): whole titles and
        # arrows when they do not fit, not "Act… Featu… N…".
        if event.type() == QEvent.Type.ChildPolished and isinstance(event.child(), QTabBar):
            event.child().setElideMode(Qt.TextElideMode.ElideNone)
            event.child().setUsesScrollButtons(True)

    def resizeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        super().resizeEvent(event)
        if self.attached and time.perf_counter() < self._relayout_until:
            self._relayout.start()  # once, after the last of the resizes that come together

    def _restore_geometry(self) -> None:
        """Size and place the window as last time (before it is shown, so it does not jump)."""
        settings = app_settings()
        if not restore_geometry(self, settings.value("window/geometry")):
            place_on_screen(self)
        theme = str(settings.value("theme", "system"))
        for act in self.theme_group.actions():
            act.setChecked(act.data() == theme)

    def _restore_layout(self) -> bool:
        """The docks as last time (once they exist); False when none was saved."""
        from nnviz.qt.panel_list import LAYOUT_VERSION

        return restore_docks(self, app_settings(), LAYOUT_VERSION)

    def _save_layout(self) -> None:
        from nnviz.qt.panel_list import LAYOUT_VERSION

        settings = app_settings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState(LAYOUT_VERSION))

    # ----- drag and drop, closing ------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        if not self.attached:
            return
        for url in event.mimeData().urls():
            if url.isLocalFile() and url.toLocalFile().lower().endswith(IMAGE_SUFFIXES):
                self.panels["canvas"].open_image_file(url.toLocalFile())  # a digit to read
                event.acceptProposedAction()
                return
            if url.isLocalFile():
                self.documents.open_path(url.toLocalFile())
                event.acceptProposedAction()
                return

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if not self.attached:  # closed while still loading: nothing to save or stop
            event.accept()
            return
        if self.session.dirty and self.session.trainable:
            if self.runner.active:
                self.runner.pause()
            answer = self.documents.ask_to_save()
            if answer == "cancel":
                event.ignore()
                return
            if answer == "save" and not self.documents.save():
                event.ignore()
                return
        self._frame.stop()
        self.runner.stop()
        if self.remember_layout:
            self._save_layout()
        for panel in self.panels.values():
            panel.close_panel()
        event.accept()
