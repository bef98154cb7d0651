"""The Teach & dream panel: make the model learn from a mistake, and see what it dreams of.

Three tabs, one module each:

* Teach (``teach_lesson``): the model gets the current input wrong; the person gives
  the right answer and nnviz fine-tunes on it, mixed with real training digits, then
  shows the new answer; Undo gives the old weights back.
* Make it a... (``teach_nudge``): gradient ascent nudges the input toward a class,
  shown step by step.
* What it wants to see (``teach_dream``): the picture a neuron, channel or class
  responds to most, grown from noise.

The input follows the Session's current input (the drawing, or a picked sample); the
weights follow training and the History slider. Cheap things redraw on the frame
timer; the nudge runs on a button press; teaching and dreaming run in worker threads
on copies of the views' model, and ``close_panel`` waits for them.
"""

from __future__ import annotations

from typing import ClassVar

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.teach_dream import DreamSection
from nnviz.qt.panels.teach_lesson import LessonSection
from nnviz.qt.panels.teach_nudge import NudgeSection
from nnviz.state import Session


class TeachPanel(Panel):
    """Teach the mistake, make it a 7, and what a unit wants to see."""

    title = "Teach and dream"  # not "&": Qt reads it as a shortcut mark in tabs and menus
    object_name = "teach"
    max_fps: ClassVar[float] = 2.0  # the answer shown beside the lesson; training moves slowly
    area: ClassVar = Qt.DockWidgetArea.BottomDockWidgetArea

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.lesson = LessonSection(session)
        self.nudge = NudgeSection(session)
        self.dreams = DreamSection(session)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.lesson, "Teach")
        self.tabs.addTab(self.nudge, "Make it a\u2026")
        self.tabs.addTab(self.dreams, "What it wants to see")
        self.tabs.setTabToolTip(0, "The model got it wrong? Give the right answer and teach it")
        self.tabs.setTabToolTip(1, "Nudge the input toward a class, step by step")
        self.tabs.setTabToolTip(2, "The picture a neuron, channel or class likes most")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self.setMinimumSize(420, 260)

        self.listen(session.model_loaded, self._model_loaded)
        self.listen(session.input_changed, self._input_changed)
        self.listen(session.snapshot_changed, self._weights_changed)
        self.listen(session.interventions_changed, self.mark_stale)
        self.listen(session.status_changed, self.mark_stale)  # teaching waits for training
        self.listen(session.view_step_changed, self.mark_stale)  # ...and for the present
        self.listen(session.data_changed, self.mark_stale)
        self._model_loaded()

    def _model_loaded(self) -> None:
        self.lesson.model_changed()
        self.nudge.model_changed()
        self.dreams.reload()
        self.mark_stale()

    def _input_changed(self) -> None:
        self.nudge.outdated()
        self.mark_stale()

    def _weights_changed(self, _snapshot: object = None) -> None:
        self.nudge.outdated()
        self.dreams.outdated()
        self.mark_stale()

    def redraw(self) -> None:
        self.lesson.redraw()
        self.nudge.redraw()
        self.dreams.update_buttons()

    def palette_changed(self) -> None:
        self.lesson.apply_palette()
        self.nudge.apply_palette()
        self.dreams.apply_palette()

    def close_panel(self) -> None:
        self.lesson.job.stop()
        self.dreams.job.stop()
        super().close_panel()
