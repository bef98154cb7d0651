"""The input panel: pick the digit every view looks at, and see what the model makes of it.

Until there is a drawing canvas this is how the user chooses the current input: a data
split, an index (arrows, Left/Right keys, or Random). The panel always shows the
Session's current input, whoever set it, so a drawing shows here too. The prediction
comes from ``session.probabilities()``, which every panel shares, and follows the
weights live while training.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.data import Dataset
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.canvas_steps import StepView
from nnviz.qt.panels.text_line import TextLine
from nnviz.state import CurrentInput, Session

# (attribute of DataSplits, the name the user sees), in order of preference for the default.
SPLITS = (("test", "test"), ("val", "validation"), ("train", "train"))
SOURCE_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
DIGIT_SCALE = 7  # 28 px -> 196 px, each MNIST pixel a visible square
RIGHT_COLOUR, WRONG_COLOUR = QColor(46, 160, 67), QColor(214, 57, 57)  # readable on both themes


class InputPanel(Panel):
    """Choose the current input from the data; shows it, its label and the prediction."""

    title = "Input"
    object_name = "input"
    area: ClassVar = Qt.DockWidgetArea.LeftDockWidgetArea

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.rng = np.random.default_rng()
        self._picked: CurrentInput | None = None  # the input this panel set last
        self._shown: CurrentInput | None = None  # the input whose image is on screen

        self.split = QComboBox()
        self.split.setToolTip("Which images to pick from")
        self.index = QSpinBox()
        self.index.setWrapping(True)
        self.index.setToolTip("The image's position in the split")
        self.count = QLabel()
        self.previous = QToolButton()
        self.previous.setArrowType(Qt.ArrowType.LeftArrow)
        self.previous.setToolTip("Previous image (Left arrow)")
        self.next = QToolButton()
        self.next.setArrowType(Qt.ArrowType.RightArrow)
        self.next.setToolTip("Next image (Right arrow)")
        self.random = QPushButton("Random")
        self.random.setToolTip("Jump to a random image of the split")
        # Random beside the split, not at the end of the image row: the row was 312 px
        # at its smallest, wider than the left column of a 1366x768 screen.
        which = QHBoxLayout()
        which.addWidget(self.split, 1)
        which.addWidget(self.random)
        pick = QHBoxLayout()
        pick.addWidget(self.previous)
        pick.addWidget(self.index, 1)
        pick.addWidget(self.count)
        pick.addWidget(self.next)
        form = QFormLayout()
        form.addRow("Split", which)
        form.addRow("Image", pick)

        # Painted, each input pixel a crisp square on MNIST's black: it changes at every
        # move while a person draws, and a label with a style sheet and a scaled pixmap
        # cost more and repainted the panel beneath it.
        self.digit = StepView()
        self.digit.setFixedSize(28 * DIGIT_SCALE, 28 * DIGIT_SCALE)
        # Painted lines, not labels: while a person draws these change at every move,
        # and a label's new text relaid out the dock and repainted the whole window.
        self.description = TextLine(centred=True)
        self.true_label = TextLine(centred=True)
        self.prediction = TextLine(centred=True)
        font = self.prediction.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.prediction.setFont(font)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.digit, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.description)
        layout.addWidget(self.true_label)
        layout.addWidget(self.prediction)
        layout.addStretch(1)

        # Left/Right step through the images wherever the focus is in the panel, except
        # in the index box, whose text cursor needs those keys.
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        for widget in (self.split, self.previous, self.next, self.random, self.digit):
            widget.installEventFilter(self)

        self.split.currentIndexChanged.connect(self._split_picked)
        self.index.valueChanged.connect(self.pick)
        self.previous.clicked.connect(lambda: self.step(-1))
        self.next.clicked.connect(lambda: self.step(1))
        self.random.clicked.connect(self.pick_random)
        self.listen(session.data_changed, self._data_changed)
        self.listen(session.model_loaded, self._model_loaded)
        self.listen(session.input_changed, self.mark_stale)
        self.listen(session.snapshot_changed, self.mark_stale)
        self.listen(session.interventions_changed, self.mark_stale)  # units switched off
        self._data_changed()

    # ----- what can be picked ------------------------------------------------------------
    def dataset(self) -> Dataset | None:
        """The split the user is picking from, or None without data."""
        data = self.session.data
        key = self.split.currentData()
        return None if data is None or key is None else getattr(data, key)

    def split_name(self) -> str:
        return self.split.currentText()

    def _data_changed(self) -> None:
        data = self.session.data
        previous = self.split.currentData()
        self.split.blockSignals(True)
        self.split.clear()
        if data is not None:
            for key, name in SPLITS:
                split = getattr(data, key)
                if split is not None and len(split):
                    self.split.addItem(name, key)
        keep = self.split.findData(previous)
        self.split.setCurrentIndex(max(keep, 0))
        self.split.blockSignals(False)
        self._update_range()
        for widget in (self.split, self.index, self.previous, self.next, self.random):
            widget.setEnabled(self.split.count() > 0)
        # A digit from the data that was replaced would no longer be in any split shown,
        # so the same position is taken from the new data.
        current = self.session.current_input
        if current is None or current is self._picked:
            self.pick(self.index.value())
        self.mark_stale()

    def _model_loaded(self) -> None:
        if self.session.current_input is None:
            self.pick(self.index.value())
        self.mark_stale()

    def _update_range(self) -> None:
        split = self.dataset()
        n = len(split) if split is not None else 0
        self.index.blockSignals(True)
        self.index.setRange(0, max(n - 1, 0))
        self.index.blockSignals(False)
        self.count.setText(f"of {n:,}")

    def _split_picked(self) -> None:
        self._update_range()
        self.pick(self.index.value())

    # ----- picking -----------------------------------------------------------------------
    def pick(self, index: int) -> None:
        """Make image ``index`` of the chosen split the current input."""
        split = self.dataset()
        if split is None or not len(split):
            return
        index = int(np.clip(index, 0, len(split) - 1))
        if self.index.value() != index:
            self.index.blockSignals(True)
            self.index.setValue(index)
            self.index.blockSignals(False)
        source = SOURCE_NAMES.get(self.session.data.source, self.session.data.source)
        self.session.set_input(
            split.images[index] / 255.0,
            int(split.labels[index]),
            f"{source} {self.split_name()} #{index}",
        )
        self._picked = self.session.current_input

    def step(self, delta: int) -> None:
        """The previous (-1) or next (+1) image, wrapping at the ends."""
        self.index.stepBy(delta)  # comes back through valueChanged -> pick

    def pick_random(self) -> None:
        """A random image of the split, never the one shown now."""
        split = self.dataset()
        if split is None or len(split) < 2:
            return
        other = int(self.rng.integers(len(split) - 1))
        self.index.setValue(other + (other >= self.index.value()))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt)
        if event.type() == QEvent.Type.KeyPress and self._arrow(event):
            return True
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt)
        if not self._arrow(event):
            super().keyPressEvent(event)

    def _arrow(self, event: QKeyEvent) -> bool:
        delta = {Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1}.get(event.key())
        if delta is None or event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            return False
        self.step(delta)
        return True

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        self.setFocus(Qt.FocusReason.MouseFocusReason)  # so the arrow keys work after a click
        super().mousePressEvent(event)

    # ----- drawing -----------------------------------------------------------------------
    def predicted(self) -> tuple[int, float] | None:
        """The model's top class and its probability for the current input."""
        probs = self.session.probabilities()
        if probs is None or not len(probs):
            return None
        top = int(np.argmax(probs))
        return top, float(probs[top])

    def _class_name(self, index: int, names: list[str] | tuple[str, ...] | None) -> str:
        return names[index] if names is not None and 0 <= index < len(names) else str(index)

    def redraw(self) -> None:
        current = self.session.current_input
        if current is None:
            self._shown = None
            self.digit.set_array(None)
            self.description.setText("No input: load some data")
            self.true_label.clear()
            self.prediction.clear()
            return
        if current is not self._shown:
            self.digit.set_array(current.image)
            self._shown = current
        self.description.setText(current.description)
        data_names = self.session.data.classes if self.session.data is not None else None
        if current.label is None:
            self.true_label.setText("True label: unknown")
        else:
            self.true_label.setText(f"True label: {self._class_name(current.label, data_names)}")
        loaded = self.session.loaded
        guess = self.predicted() if loaded is not None else None
        if guess is None:
            self.prediction.setText("No model loaded" if loaded is None else "")
            return
        top, confidence = guess
        name = self._class_name(top, loaded.class_names)
        text = f"Prediction: <b>{name}</b> ({confidence:.1%})"
        if current.label is not None:
            right = top == current.label
            colour = (RIGHT_COLOUR if right else WRONG_COLOUR).name()
            text += f" <span style='color:{colour}'>{'✓ right' if right else '✗ wrong'}</span>"
        self.prediction.setText(text)
