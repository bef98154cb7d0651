"""Teach the mistake: the person gives the right answer and the model learns it, undoably.

Teaching (``nnviz.core.teach``) runs on a deep copy of the views' model in a worker
thread, with a fresh batch of real training digits mixed into every step so nothing
else is forgotten; the accuracy on 1,000 test digits before and after shows whether
it was. The new weights reach every view, the next training run and the weight history
through ``Session.set_weights``. Undo puts the old weights back while the taught ones
are still the latest; once training moves on, undoing would throw its work away.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.data import Dataset
from nnviz.core.errors import NnvizError
from nnviz.core.evaluate import evaluate
from nnviz.core.snapshot import Snapshot
from nnviz.core.teach import TeachResult, teach
from nnviz.qt.panels.prediction_bars import PredictionBars
from nnviz.qt.panels.teach_jobs import BackgroundJob
from nnviz.qt.panels.teach_pictures import (
    Captions,
    answer,
    busy_bar,
    class_name,
    digit_plot,
    fill_classes,
    hint_label,
    show_digit,
)
from nnviz.state import CurrentInput, Session

CHECK_DIGITS = 1000  # test digits scored before and after: ~20 ms each for lenet
EXPLANATION = (
    "Teaching fine-tunes the model on this digit, mixed with real training digits so it "
    "does not forget the rest, until it gives your answer."
)


@dataclass(frozen=True)
class Lesson:
    """What a teaching job brings back to the GUI thread."""

    result: TeachResult
    weights: dict[str, torch.Tensor]  # the taught model's state dict (owned)
    accuracy_before: float | None  # on the check digits; None if they do not fit the model
    accuracy_after: float | None
    checked: int  # how many test digits the accuracies are on
    description: str  # of the input taught


def _accuracy(model: torch.nn.Module, digits: Dataset | None) -> float | None:
    if digits is None:
        return None
    try:
        return evaluate(model, digits).accuracy
    except NnvizError:  # e.g. a data set with other classes than the model
        return None


def run_lesson(
    model: torch.nn.Module, shown: CurrentInput, label: int, train: Dataset, check: Dataset | None
) -> Lesson:
    """Teach ``model`` (a copy of its own) ``label`` for the shown input; the worker's job."""
    before = _accuracy(model, check)
    result = teach(model, shown.image, label, train.images, train.labels)
    after = _accuracy(model, check) if result.steps else before
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    checked = len(check) if check is not None else 0
    return Lesson(result, weights, before, after, checked, shown.description)


class LessonSection(QWidget):
    """The input and the model's answer; "The right answer is: [class] [Teach it]"; Undo."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.job = BackgroundJob(self)
        self.lesson: Lesson | None = None  # the last teaching
        self._taught: Snapshot | None = None  # the weights it set: Undo while they are current
        self._started: tuple[Any, Any] | None = None  # (model, snapshot) a job started from
        self._check: tuple[Any, Dataset | None] = (None, None)  # (data, its check digits)
        self._input_seen: CurrentInput | None = None
        self.captions = Captions(self)

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setMinimumSize(140, 140)
        self.picture_plot, self.picture = digit_plot()
        self.graphics.addItem(self.picture_plot)
        self.captions.views.append(self.graphics)
        self.bars = PredictionBars()
        self.bars.setMinimumHeight(120)

        self.answer_label = QLabel()
        self.answer_label.setTextFormat(Qt.TextFormat.RichText)
        self.answer_label.setWordWrap(True)
        self.label_combo = QComboBox()
        self.label_combo.setToolTip("The class this digit really is")
        # Shown while no answer is chosen: a new input whose class is not known.
        self.label_combo.setPlaceholderText("choose\u2026")
        self.teach_button = QPushButton("Teach it")
        self.teach_button.setToolTip("Fine-tune the model on this digit with the answer chosen")
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Put back the weights from before the last teaching")
        self.busy = busy_bar("Teaching\u2026")
        self.outcome = QLabel()
        self.outcome.setTextFormat(Qt.TextFormat.RichText)
        self.outcome.setWordWrap(True)
        self.accuracy = QLabel()
        self.accuracy.setWordWrap(True)
        self.note = hint_label(EXPLANATION)
        self.captions.hints.append(self.note)
        for label in (self.answer_label, self.outcome, self.accuracy, self.note):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        choose = QHBoxLayout()
        choose.addWidget(QLabel("The right answer is:"))
        choose.addWidget(self.label_combo)
        choose.addWidget(self.teach_button)
        choose.addStretch(1)
        undo_row = QHBoxLayout()
        undo_row.addWidget(self.undo_button)
        undo_row.addStretch(1)
        controls = QVBoxLayout()
        controls.setSpacing(6)
        controls.addWidget(self.answer_label)
        controls.addLayout(choose)
        controls.addWidget(self.busy)
        controls.addWidget(self.outcome)
        controls.addWidget(self.accuracy)
        controls.addLayout(undo_row)
        controls.addStretch(1)
        controls.addWidget(self.note)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.graphics, 4)
        layout.addWidget(self.bars, 4)
        layout.addLayout(controls, 6)

        self.teach_button.clicked.connect(self.teach)
        self.label_combo.currentIndexChanged.connect(self.update_buttons)
        self.undo_button.clicked.connect(self.undo)
        self.captions.apply()

    # ----- what the person sees ----------------------------------------------------------
    def redraw(self) -> None:
        s = self.session
        names = self._follow_input()
        self.bars.set_classes(names)
        shown = s.current_input
        if shown is None:
            self.picture.clear()
            self.captions.set_title(self.picture_plot, "no input yet")
        else:
            show_digit(self.picture, shown.image)
            self.captions.set_title(self.picture_plot, shown.description)
        self._show_answer(names, shown)
        self.update_buttons()

    def _follow_input(self) -> list[str]:
        """The model's classes in the answer box, and the answer chosen for this input:
        after a new input (or model) the one chosen before was for another digit. The
        true class when known, else none until the person chooses one. Returns the
        class names."""
        s = self.session
        names = list(s.loaded.class_names) if s.loaded is not None else []
        fill_classes(self.label_combo, names)
        shown = s.current_input
        if shown is not self._input_seen:
            self._input_seen = shown
            known = shown is not None and shown.label is not None and shown.label < len(names)
            self.label_combo.setCurrentIndex(shown.label if known else -1)
        return names

    def _show_answer(self, names: list[str], shown: CurrentInput | None) -> None:
        names = [escape(n) for n in names]  # the answer is rich text
        probs = None
        try:
            probs = self.session.probabilities()
        except NnvizError as exc:
            self.answer_label.setText(f"The model cannot read this input: {exc}")
        if probs is None:
            self.bars.show_message("no input" if shown is None else "")
            if shown is None:
                self.answer_label.setText("Draw a digit or pick one in the Input panel.")
            return
        self.bars.show_probabilities(probs)
        text = f"The model says <b>{answer(names, probs)}</b>"
        if shown is not None and shown.label is not None:
            right = shown.label == int(np.argmax(probs))
            verdict = "right" if right else "wrong"
            text += f"; it is a {class_name(names, shown.label)}: {verdict}"
        if len(self.session.interventions):
            text += " (with units switched off; teaching uses the whole network)"
        self.answer_label.setText(text)

    def cannot_teach(self) -> str | None:
        """Why Teach is off now, or None when it can run."""
        s = self.session
        locked = s.weights_locked()
        if locked is not None:
            return f"Teaching is off: {locked}."
        if s.current_input is None:
            return "Draw a digit or pick one to teach."
        if s.data is None or s.data.train is None or not len(s.data.train):
            return (
                "Load a data set to teach: teaching mixes in real training digits so the "
                "model does not forget the rest."
            )
        if self.label_combo.currentIndex() < 0:
            return "Choose the right answer to teach it."
        return None

    def can_undo(self) -> bool:
        s = self.session
        return (
            self._taught is not None
            and s.snapshot is self._taught
            and s.weights_locked() is None
            and not self.job.busy
        )

    def update_buttons(self) -> None:
        reason = self.cannot_teach()
        self.teach_button.setEnabled(reason is None and not self.job.busy)
        self.label_combo.setEnabled(not self.job.busy)
        self.undo_button.setEnabled(self.can_undo())
        self.note.setText(reason or EXPLANATION)

    def model_changed(self) -> None:
        """A different model: the last teaching belongs to the old one."""
        self.job.abandon()
        self.busy.hide()
        self.lesson, self._taught, self._started = None, None, None
        self._input_seen = None  # the right answer is chosen anew, among its classes
        self.outcome.clear()
        self.accuracy.clear()

    # ----- teach and undo ----------------------------------------------------------------
    def teach(self) -> None:
        """Teach the chosen answer for the current input, in the background."""
        self._follow_input()  # the panel may not have drawn since the input changed
        reason = self.cannot_teach()
        if reason is not None or self.job.busy:
            self.outcome.setText(reason or "")
            return
        s = self.session
        label = int(self.label_combo.currentData())
        model = copy.deepcopy(s.view_model)  # the job's own: the views keep running theirs
        shown, train, check = s.current_input, s.data.train, self._check_digits()
        self._started = (s.loaded, s.snapshot)
        self.job.start(
            lambda: run_lesson(model, shown, label, train, check), self._taught_it, self._failed
        )
        self.busy.show()
        self.outcome.setText(f"Teaching it that this is a {self.label_combo.currentText()}\u2026")
        self.accuracy.clear()
        self.update_buttons()

    def _check_digits(self) -> Dataset | None:
        data = self.session.data
        if self._check[0] is not data:
            try:
                digits = data.evaluation_set().subset(CHECK_DIGITS)
            except (NnvizError, AttributeError):
                digits = None
            self._check = (data, digits)
        return self._check[1]

    def _taught_it(self, lesson: Lesson) -> None:
        self.busy.hide()
        s = self.session
        names = [escape(n) for n in s.loaded.class_names] if s.loaded is not None else []
        result = lesson.result
        started = self._started or (None, None)
        # Identity, not equality: dataclasses of tensors do not compare with ==.
        if started[0] is not s.loaded or started[1] is not s.snapshot:
            self.outcome.setText(
                "The weights changed while it was being taught (training, or another "
                "model), so nothing was changed: teach it again."
            )
        elif result.steps == 0:
            self.outcome.setText(
                f"It already says {answer(names, result.old_probabilities)}: nothing to teach."
            )
        else:
            try:
                self._taught = s.set_weights(
                    lesson.weights, f"taught a {class_name(names, result.label)}"
                )
            except NnvizError as exc:
                self.outcome.setText(str(exc))
            else:
                self.lesson = lesson
                self.outcome.setText(self._outcome_text(names, lesson))
                self.accuracy.setText(self._accuracy_text(lesson))
        self._started = None
        self.update_buttons()

    def _failed(self, message: str) -> None:
        self.busy.hide()
        self._started = None
        self.outcome.setText(f"Teaching failed: {message}")
        self.update_buttons()

    def undo(self) -> None:
        """Put back the weights from before the last teaching."""
        if not self.can_undo() or self.lesson is None:
            return
        names = [escape(n) for n in self.session.loaded.class_names]
        result = self.lesson.result
        try:
            self.session.set_weights(result.undo, "teaching undone")
        except NnvizError as exc:
            self.outcome.setText(str(exc))
            return
        self._taught = None
        self.outcome.setText(
            f"Undone: the weights from before are back (it said "
            f"{answer(names, result.old_probabilities)})."
        )
        self.accuracy.clear()
        self.update_buttons()

    # ----- words -------------------------------------------------------------------------
    @staticmethod
    def _outcome_text(names: list[str], lesson: Lesson) -> str:
        r = lesson.result
        steps = f"{r.steps} step{'s' if r.steps != 1 else ''}"
        text = (
            f"before: <b>{answer(names, r.old_probabilities)}</b> \u2192 after: "
            f"<b>{answer(names, r.new_probabilities)}</b>, {steps}"
        )
        if not r.learned:
            text += (
                f"<br>It still does not say {class_name(names, r.label)}: teach it again "
                "to push further, or Undo."
            )
        return text

    @staticmethod
    def _accuracy_text(lesson: Lesson) -> str:
        before, after = lesson.accuracy_before, lesson.accuracy_after
        if before is None or after is None:
            return ""
        return (
            f"Accuracy on {lesson.checked:,} test digits: {before:.1%} \u2192 {after:.1%} "
            f"({100 * (after - before):+.1f} points)"
        )

    def apply_palette(self) -> None:
        self.captions.apply()
        self.bars.apply_palette(self.palette())
