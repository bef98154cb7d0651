"""The main window: panels in docks, menus, toolbar, status bar and the frame timer.

The window owns the Session, the training runner and the panels. Panels are listed
in ``PANELS`` with where they go; adding one is a new module with a ``Panel`` subclass
and one line here.
"""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QMainWindow,
    QMessageBox,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from nnviz.about import about_text
from nnviz.core.errors import NnvizError
from nnviz.qt.banner import MessageBanner
from nnviz.qt.documents import Documents
from nnviz.qt.panels.activations import ActivationsPanel
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.diagram import NetworkDiagramPanel
from nnviz.qt.panels.feature_maps import FeatureMapsPanel
from nnviz.qt.panels.filters import FiltersPanel
from nnviz.qt.panels.input import InputPanel
from nnviz.qt.panels.loss import LossPanel
from nnviz.qt.panels.receptive_fields import ReceptiveFieldsPanel
from nnviz.qt.panels.summary import SummaryPanel
from nnviz.qt.panels.training import TrainingPanel
from nnviz.qt.panels.weights import WeightsPanel
from nnviz.qt.runner import TrainingRunner
from nnviz.qt.status import TrainingStatusBar
from nnviz.qt.theme import THEMES, apply_theme
from nnviz.state import PAUSED, RUNNING, Session

FRAME_MS = 33  # panels redraw at most 30 times a second
_LEFT = Qt.DockWidgetArea.LeftDockWidgetArea
_RIGHT = Qt.DockWidgetArea.RightDockWidgetArea
_TOP = Qt.DockWidgetArea.TopDockWidgetArea
_BOTTOM = Qt.DockWidgetArea.BottomDockWidgetArea
# (panel, dock area, tab group): panels of one group share a dock as tabs, the first
# one in front. The left column holds the controls; the rest fill the window.
PANELS: list[tuple[type[Panel], Qt.DockWidgetArea, str | None]] = [
    (TrainingPanel, _LEFT, None),
    (InputPanel, _LEFT, None),
    (LossPanel, _TOP, "progress"),
    (SummaryPanel, _TOP, "progress"),
    (WeightsPanel, _TOP, "weights"),
    (ReceptiveFieldsPanel, _TOP, "weights"),
    (FiltersPanel, _TOP, "weights"),
    (ActivationsPanel, _BOTTOM, "insides"),
    (FeatureMapsPanel, _BOTTOM, "insides"),
    (NetworkDiagramPanel, _BOTTOM, "insides"),
]
LAYOUT_VERSION = 3  # bump when PANELS change so an old saved layout is not restored


def app_settings() -> QSettings:
    """nnviz's settings (an INI file in the user's config folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "nnviz", "nnviz")


class MainWindow(QMainWindow):
    def __init__(self, session: Session | None = None, *, remember_layout: bool = True) -> None:
        super().__init__()
        self.session = session or Session()
        self.runner = TrainingRunner(self.session, self)
        self.documents = Documents(self)
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.banner = MessageBanner()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.banner)
        layout.addStretch(1)
        self.setCentralWidget(central)
        central.setMaximumHeight(0)  # docks fill the window; the banner sits on top
        self.status = TrainingStatusBar(self.session)
        self.setStatusBar(self.status)

        self.panels: dict[str, Panel] = {}
        self.docks: dict[str, QDockWidget] = {}
        self._lay_out_panels()
        self._build_actions()
        self._build_menus()
        self._default_state = self.saveState(LAYOUT_VERSION)
        self._wire()
        # A screenshot or benchmark run shows the default layout and leaves the user's alone.
        self.remember_layout = remember_layout
        if remember_layout:
            self._restore_layout()
        else:
            self.resize(1600, 1000)
        self.update_title()
        self._update_actions()

        self._frame = QTimer(self)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self.refresh_panels)
        self._frame.start()

    # ----- construction ------------------------------------------------------------------
    def _lay_out_panels(self) -> None:
        # The left column (controls) runs the full height; the panels fill the rest.
        self.setCorner(Qt.Corner.BottomLeftCorner, _LEFT)
        self.setCorner(Qt.Corner.TopLeftCorner, _LEFT)
        fronts: dict[str, QDockWidget] = {}
        behind: list[tuple[str, QDockWidget]] = []
        for panel_type, area, group in PANELS:
            dock = self._add_panel(panel_type(self.session), area)
            if group is not None and group in fronts:
                behind.append((group, dock))
            elif group is not None:
                fronts[group] = dock
        # Place the groups side by side first, then stack their other panels as tabs
        # (splitting a tabbed dock would pull it out of its tabs).
        top = [d for d in fronts.values() if self.dockWidgetArea(d) == _TOP]
        for a, b in zip(top, top[1:], strict=False):
            self.splitDockWidget(a, b, Qt.Orientation.Horizontal)
        for group, dock in behind:
            self.tabifyDockWidget(fronts[group], dock)
        for dock in fronts.values():
            dock.raise_()
        left = [self.docks[t.object_name] for t, area, _ in PANELS if area == _LEFT]
        self.resizeDocks(left, [300] * len(left), Qt.Orientation.Horizontal)
        self.resizeDocks(
            [self.docks["training"], self.docks["input"]], [460, 440], Qt.Orientation.Vertical
        )
        bottom = [d for d in fronts.values() if self.dockWidgetArea(d) == _BOTTOM]
        if top and bottom:
            self.resizeDocks([top[0], bottom[0]], [520, 400], Qt.Orientation.Vertical)
        if len(top) > 1:
            self.resizeDocks(top, [700, 600], Qt.Orientation.Horizontal)

    def tile_all_panels(self) -> None:
        """Every panel on screen at once, none behind a tab (for the benchmark)."""
        docks = [self.docks[t.object_name] for t, area, _ in PANELS if area != _LEFT]
        for dock in docks:
            dock.setVisible(True)
            self.addDockWidget(_RIGHT, dock)
        half = (len(docks) + 1) // 2
        for a, b in zip(docks[:half], docks[half:], strict=False):
            self.splitDockWidget(a, b, Qt.Orientation.Vertical)

    def _add_panel(self, panel: Panel, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(panel.title, self)
        dock.setObjectName(f"dock_{panel.object_name}")
        dock.setWidget(panel)
        self.addDockWidget(area, dock)
        dock.setVisible(panel.shown_by_default)
        dock.visibilityChanged.connect(lambda visible, p=panel: visible and p.mark_stale())
        self.panels[panel.object_name] = panel
        self.docks[panel.object_name] = dock
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

    def _build_actions(self) -> None:
        d = self.documents
        self.act_open = self._action("&Open…", d.open_dialog, QKeySequence.StandardKey.Open)
        self.act_save = self._action("&Save", d.save, QKeySequence.StandardKey.Save)
        self.act_save_as = self._action("Save &As…", d.save_as, "Ctrl+Shift+S")
        self.act_quit = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_train = self._action("&Train", self.train, "F5", "Start or resume training")
        self.act_pause = self._action("&Pause", self.pause, "F6", "Pause training")
        self.act_step = self._action("S&tep", self.step, "F10", "Take one training step")
        self.act_stop = self._action("St&op", self.stop_training, "Shift+F5", "Stop training")
        self.act_reinit = self._action("&Reinitialise weights", d.reinitialise)
        self.act_custom = self._action(
            "&Custom architecture…", d.custom_architecture, "Ctrl+Shift+N"
        )
        self.act_reset_layout = self._action("&Reset layout", self.reset_layout)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.act_open)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addAction(self.act_save)
        file_menu.addAction(self.act_save_as)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)

        model_menu = bar.addMenu("&Model")
        presets = model_menu.addMenu("New from &preset")
        for name in self.documents.preset_names():
            presets.addAction(name, lambda n=name: self.documents.new_from_preset(n))
        model_menu.addAction(self.act_custom)
        model_menu.addAction(self.act_reinit)

        data_menu = bar.addMenu("&Data")
        self.data_group = QActionGroup(self)
        for label, source in (
            ("Bundled &MNIST", "mnist"),
            ("&Fashion-MNIST (download)", "fashion-mnist"),
        ):
            act = data_menu.addAction(label, lambda s=source: self.documents.use_data(s))
            act.setCheckable(True)
            act.setData(source)
            self.data_group.addAction(act)
        data_menu.addAction("Folder of IDX files…", self.documents.pick_data_folder)

        train_menu = bar.addMenu("&Train")
        for act in (self.act_train, self.act_pause, self.act_step, self.act_stop):
            train_menu.addAction(act)

        self.view_menu = bar.addMenu("&View")
        for name, dock in self.docks.items():
            self.view_menu.addAction(dock.toggleViewAction())
            del name
        self.view_menu.addSeparator()
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

    def _wire(self) -> None:
        s = self.session
        s.error.connect(self.show_error)
        s.status_changed.connect(lambda _: self._update_actions())
        s.model_loaded.connect(self.update_title)
        s.model_loaded.connect(self._update_actions)
        s.dirty_changed.connect(lambda _: self.update_title())
        s.data_changed.connect(self.update_data_menu)
        training = self.panels["training"]
        assert isinstance(training, TrainingPanel)
        training.lr_changed.connect(self.runner.set_lr)
        training.weight_decay_changed.connect(self.runner.set_weight_decay)
        training.pace_changed.connect(self.runner.set_pace)

    # ----- frame timer ---------------------------------------------------------------
    def refresh_panels(self) -> None:
        """Redraw visible, stale panels (at most 30 times a second)."""
        for panel in self.panels.values():
            panel.refresh(throttle=True)
        self.status.refresh()

    # ----- training ------------------------------------------------------------------
    def train(self) -> None:
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

    # ----- messages, title, theme, layout ----------------------------------------------
    def show_error(self, message: str) -> None:
        self.banner.show_message(message, "error")
        self.statusBar().showMessage(message.splitlines()[0], 8000)

    def show_about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About nnviz", about_text(), parent=self)
        box.open()

    def update_title(self) -> None:
        loaded = self.session.loaded
        name = loaded.display_name if loaded is not None else "no model"
        self.setWindowTitle(f"{name}[*] — nnviz")
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
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for panel_type, _, _ in PANELS:
            self.docks[panel_type.object_name].setVisible(panel_type.shown_by_default)

    def _restore_layout(self) -> None:
        settings = app_settings()
        geometry = settings.value("window/geometry")
        state = settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1600, 1000)
        if isinstance(state, QByteArray):
            self.restoreState(state, LAYOUT_VERSION)
        theme = str(settings.value("theme", "system"))
        for act in self.theme_group.actions():
            act.setChecked(act.data() == theme)

    def _save_layout(self) -> None:
        settings = app_settings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState(LAYOUT_VERSION))

    # ----- drag and drop, closing ------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.documents.open_path(url.toLocalFile())
                event.acceptProposedAction()
                return

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
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
