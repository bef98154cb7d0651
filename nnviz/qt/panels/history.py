"""The history panel: a timeline slider over the training run, played back like a film.

The Session keeps weight snapshots as the model trains (``nnviz.core.weight_history``:
dense early, thinning out later, within a memory budget shown here). The slider's
positions are the stored snapshots, oldest on the left; its last position is the live
weights. Moving it calls ``session.show_step``, which loads that step's weights into
the views' model, so every panel follows with no change of its own. A drag over a
CNN can move the slider hundreds of times a second: the panel passes on at most one
step per frame, the first at once and the latest when the frame is over. The memory
budget the user sets is remembered between runs (QSettings).
"""

from __future__ import annotations

from typing import ClassVar

from PySide6.QtCore import QPointF, QRectF, QSettings, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from nnviz.qt.panels.base import Panel
from nnviz.state import Session

SHOW_EVERY_MS = 33  # at most one step shown per frame while the slider is dragged
PLAY_PER_SECOND = 8  # snapshots a second when played back
MB = 1_000_000
MAX_BUDGET_MB = 65_536
BUDGET_SETTING = "history/budget_mb"  # the QSettings key of the budget, in MB


def _settings() -> QSettings:
    # Imported here: the main window imports every panel.
    from nnviz.qt.main_window import app_settings

    return app_settings()


def format_megabytes(n: int) -> str:
    """Bytes as "12.4 MB" (one decimal under 100 MB, none above)."""
    mb = n / MB
    return f"{mb:.1f} MB" if mb < 100 else f"{mb:,.0f} MB"


def media_icon(playing: bool, colour: QColor, size: int = 16) -> QIcon:
    """A play triangle, or the two bars of pause, in ``colour`` (drawn at twice the size,
    so it stays sharp on a screen at scale 2)."""
    pixmap = QPixmap(2 * size, 2 * size)
    pixmap.fill(Qt.GlobalColor.transparent)
    with QPainter(pixmap) as painter:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        s = 2 * size
        if playing:
            painter.drawRect(QRectF(0.22 * s, 0.18 * s, 0.2 * s, 0.64 * s))
            painter.drawRect(QRectF(0.58 * s, 0.18 * s, 0.2 * s, 0.64 * s))
        else:
            painter.drawPolygon(
                QPolygonF(
                    [
                        QPointF(0.25 * s, 0.15 * s),
                        QPointF(0.85 * s, 0.5 * s),
                        QPointF(0.25 * s, 0.85 * s),
                    ]
                )
            )
    pixmap.setDevicePixelRatio(2.0)
    return QIcon(pixmap)


class HistoryPanel(Panel):
    """Scrub or play through the weights recorded over training; every panel follows."""

    title = "History"
    object_name = "history"
    area: ClassVar = Qt.DockWidgetArea.LeftDockWidgetArea

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self._steps: list[int] = []  # the stored steps, as the slider's positions show them
        self._pending: int | None = None  # a slider position waiting for the next frame
        self._moving = False  # the panel itself is changing the step the views show

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip(
            "Drag through the training run: every panel shows the network as it was then. "
            "The right end is the live model."
        )
        self.position = QLabel()
        self.note = QLabel()
        for label in (self.position, self.note):
            label.setWordWrap(True)
            # Text that changes must not resize the dock.
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        font = self.position.font()
        font.setBold(True)
        self.position.setFont(font)
        # Two lines kept free for the note: a squeezed dock must not draw text over text.
        self.note.setMinimumHeight(2 * self.note.fontMetrics().lineSpacing())

        # Small buttons on either side of the slider leave it most of the column's width.
        self.play_button = QToolButton()
        self.play_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.play_button.setToolTip(f"Play the run back, {PLAY_PER_SECOND} snapshots a second")
        self.live_button = QToolButton()
        self.live_button.setText("Live")
        self.live_button.setCheckable(True)
        self.live_button.setToolTip("Follow the newest weights again")
        timeline = QHBoxLayout()
        timeline.addWidget(self.play_button)
        timeline.addWidget(self.slider, 1)
        timeline.addWidget(self.live_button)

        self.kept = QLabel()  # "4.4 MB of", the budget box beside it
        self.budget = QSpinBox()
        self.budget.setRange(1, MAX_BUDGET_MB)
        self.budget.setSuffix(" MB")
        # Only a finished entry counts: typing "1000" must not thin the history at "1".
        self.budget.setKeyboardTracking(False)
        self.budget.setToolTip(
            "The memory the history may use. When it is full, later snapshots are thinned "
            "out and the early ones kept dense; a smaller budget thins at once."
        )
        self._restore_budget()
        self.save_box = QCheckBox("Save history in the .nnviz file")
        self.save_box.setToolTip("Save writes every kept snapshot into the model file")
        memory = QHBoxLayout()
        memory.addWidget(QLabel("Memory"))
        memory.addWidget(self.kept)
        memory.addWidget(self.budget)
        memory.addStretch(1)

        layout = QVBoxLayout(self)
        layout.addLayout(timeline)
        layout.addWidget(self.position)
        layout.addWidget(self.note)
        layout.addLayout(memory)
        layout.addWidget(self.save_box)
        layout.addStretch(1)

        self._throttle = QTimer(self)
        self._throttle.setSingleShot(True)
        self._throttle.setInterval(SHOW_EVERY_MS)
        self._throttle.timeout.connect(self._frame_over)
        self.player = QTimer(self)
        self.player.setInterval(round(1000 / PLAY_PER_SECOND))
        self.player.timeout.connect(self._play_tick)

        self.slider.valueChanged.connect(self._slider_moved)
        self.slider.sliderPressed.connect(self.pause)
        self.play_button.clicked.connect(self.toggle_play)
        self.live_button.clicked.connect(self._live_clicked)
        self.budget.valueChanged.connect(self._budget_changed)
        self.save_box.toggled.connect(self.session.set_save_history)
        self.listen(session.model_loaded, self._model_loaded)
        self.listen(session.history_changed, self.mark_stale)
        self.listen(session.view_step_changed, self._view_step_changed)
        self._show_playing(False)
        self._update()

    # ----- what the user does ------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self.player.isActive()

    def show_position(self, index: int) -> None:
        """Show the snapshot at slider position ``index`` (the last one is live)."""
        self.slider.setValue(index)  # comes back through valueChanged, one step per frame

    def play(self) -> None:
        """Play the run from where the slider is (from the start when it is at the end)."""
        self._read_steps()
        if len(self._steps) < 2:
            return
        if self.slider.value() >= len(self._steps) - 1:
            self._go(0)
        self.player.start()
        self._show_playing(True)

    def pause(self) -> None:
        self.player.stop()
        self._show_playing(False)

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def _play_tick(self) -> None:
        self._read_steps()
        last = len(self._steps) - 1
        index = min(self.slider.value() + 1, last)
        self._go(index)
        if index >= last:
            self.pause()  # the end of the film is the live model

    def _go(self, index: int) -> None:
        """Move the slider and show that step now (playback is already paced)."""
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        self._show(index)

    def _slider_moved(self, index: int) -> None:
        self._pending = index
        if not self._throttle.isActive():
            self._frame_over()

    def _frame_over(self) -> None:
        """Show the latest position the slider reached, then wait out a frame."""
        if self._pending is None:
            return
        index, self._pending = self._pending, None
        self._show(index)
        self._throttle.start()

    def _show(self, index: int) -> None:
        if not self._steps:
            return
        self._moving = True
        try:
            if index >= len(self._steps) - 1:
                self.session.show_live()
            else:
                self.session.show_step(self._steps[max(index, 0)])
        finally:
            self._moving = False
        self.mark_stale()

    def _live_clicked(self) -> None:
        self.pause()
        self.session.show_live()
        self._update()  # a checkable button toggles itself: set it back from the Session

    def _budget_changed(self, megabytes: int) -> None:
        self.session.set_history_budget(megabytes * MB)
        _settings().setValue(BUDGET_SETTING, megabytes)  # only the user's changes get here

    def _restore_budget(self) -> None:
        """Give the Session the budget the user set last time, if one was stored."""
        stored = _settings().value(BUDGET_SETTING)
        try:
            megabytes = int(stored)  # an INI file gives back text
        except (TypeError, ValueError):
            return  # none stored, or not a number (a hand-edited file): keep the default
        megabytes = min(max(megabytes, self.budget.minimum()), self.budget.maximum())
        if megabytes * MB != self.session.weight_history.budget_bytes:
            self.session.set_history_budget(megabytes * MB)

    # ----- Session events ----------------------------------------------------------------
    def _model_loaded(self) -> None:
        self.pause()
        self._pending = None
        self.mark_stale()

    def _view_step_changed(self, step: int | None) -> None:
        if not self._moving:
            self.pause()  # someone else moved the views (e.g. training started): stop the film
        self.mark_stale()

    # ----- drawing -----------------------------------------------------------------------
    def redraw(self) -> None:
        self._update()

    def _read_steps(self) -> None:
        """Take the stored steps; the slider keeps pointing at the step it showed."""
        steps = self.session.weight_history.steps()
        if steps == self._steps:
            return
        self._steps = steps
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(len(steps) - 1, 0))
        self.slider.setPageStep(max(1, len(steps) // 10))
        self.slider.blockSignals(False)

    def _update(self) -> None:
        s, history = self.session, self.session.weight_history
        self._read_steps()
        usable = s.trainable and len(self._steps) > 0
        for widget in (self.play_button, self.live_button, self.budget, self.save_box):
            widget.setEnabled(usable)
        self.slider.setEnabled(usable and len(self._steps) > 1)
        self.play_button.setEnabled(usable and len(self._steps) > 1)
        self._sync_controls()
        if s.loaded is None:
            self.position.setText("No model loaded")
            self.note.setText("")
            self.kept.setText("")
            return
        if not s.trainable:
            self.position.setText("No history")
            self.note.setText(
                "History is recorded while a model trains; this one was opened from a file "
                "without its architecture, so it cannot be trained."
            )
            self.kept.setText("")
            return
        viewing = s.viewing_step
        entry = history.newest if viewing is None else history.nearest(viewing)
        if entry is None:
            return
        # The past in the theme's accent colour: the panels are not showing the live model.
        role = QPalette.ColorRole.WindowText if viewing is None else QPalette.ColorRole.Highlight
        self.position.setForegroundRole(role)
        n = len(self._steps)
        self.position.setText(
            f"step {entry.step:,} \u00b7 epoch {entry.epoch + 1} \u00b7 "
            f"{n:,} snapshot{'s' if n != 1 else ''}"
        )
        if viewing is not None:
            note = (
                f"Every panel shows the network at step {entry.step:,}; "
                f"the newest weights are from step {history.newest.step:,}."
            )
        elif n < 2:
            note = "Train the model to record its weights over the run."
        else:
            note = "Live: the panels follow the newest weights."
        if history.over_budget:
            note += " Over budget: the first and newest snapshots are always kept."
        self.note.setText(note)
        self.kept.setText(f"{format_megabytes(history.bytes_used)} of")

    def _sync_controls(self) -> None:
        """Set the controls from the Session without sending their changes back."""
        s = self.session
        viewing = s.viewing_step
        if not self.slider.isSliderDown() and self._pending is None and self._steps:
            # While live the slider sits at the end and moves on as the run grows.
            index = len(self._steps) - 1
            if viewing is not None and viewing in self._steps:
                index = self._steps.index(viewing)
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        self.live_button.setChecked(viewing is None)
        self.budget.blockSignals(True)
        self.budget.setValue(max(1, round(s.weight_history.budget_bytes / MB)))
        self.budget.blockSignals(False)
        self.save_box.blockSignals(True)
        self.save_box.setChecked(s.save_history)
        self.save_box.blockSignals(False)

    def _show_playing(self, playing: bool) -> None:
        # Drawn in the theme's text colour: the style's own media icons are black, and on
        # the dark theme the play button showed nothing.
        self._playing = playing
        # The active colour (the icon makes its own disabled look when the button is off).
        colour = self.play_button.palette().color(
            QPalette.ColorGroup.Active, QPalette.ColorRole.ButtonText
        )
        self.play_button.setIcon(media_icon(playing, colour))
        self.play_button.setText("Pause" if playing else "Play")

    def palette_changed(self) -> None:
        self._show_playing(getattr(self, "_playing", False))

    def close_panel(self) -> None:
        self.player.stop()
        self._throttle.stop()
        super().close_panel()
