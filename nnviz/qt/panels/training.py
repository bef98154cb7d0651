"""The training side panel: hyperparameters and the pace control.

Learning rate, weight decay and pace can change while training runs (the trainer
applies them at the next step); the rest are locked while a run is going.
"""

from __future__ import annotations

from typing import ClassVar

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.training import DEFAULT_LR, OPTIMIZERS, TrainConfig
from nnviz.qt.panels.base import Panel
from nnviz.state import PAUSED, RUNNING, Session

_PACES = [1, 2, 5, 10, 20, 50, 100, 200]  # steps per second on the slider


class TrainingPanel(Panel):
    """Optimizer, learning rate, batch size, epochs, weight decay, seed, pace."""

    title = "Training"
    object_name = "training"
    area: ClassVar = Qt.DockWidgetArea.LeftDockWidgetArea

    lr_changed = Signal(float)
    weight_decay_changed = Signal(float)
    pace_changed = Signal(object)  # steps per second, or None for as fast as possible

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.about_model = QLabel()
        self.about_model.setWordWrap(True)
        self.about_data = QLabel()
        self.about_data.setWordWrap(True)
        form = QFormLayout()
        self.optimizer = QComboBox()
        self.optimizer.addItems(list(OPTIMIZERS))
        self.optimizer.setToolTip("How the weights move downhill on the loss")
        self.lr = QDoubleSpinBox(decimals=5, minimum=1e-5, maximum=10.0, singleStep=1e-4)
        self.lr.setToolTip("Step size of gradient descent; changes apply at the next step")
        self.batch_size = QSpinBox(minimum=1, maximum=4096)
        self.batch_size.setToolTip("Digits averaged into one gradient step")
        self.epochs = QSpinBox(minimum=1, maximum=1000)
        self.epochs.setToolTip("Passes over the training digits in one run")
        self.weight_decay = QDoubleSpinBox(decimals=5, minimum=0.0, maximum=1.0, singleStep=1e-4)
        self.weight_decay.setToolTip("Pulls every weight a little towards zero each step")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.seed.setToolTip("Same seed, same run (on the CPU)")
        self.fast = QCheckBox("As fast as possible")
        self.pace = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=len(_PACES) - 1)
        self.pace_label = QLabel()
        for label, widget in (
            ("Optimizer", self.optimizer),
            ("Learning rate", self.lr),
            ("Batch size", self.batch_size),
            ("Epochs", self.epochs),
            ("Weight decay", self.weight_decay),
            ("Seed", self.seed),
        ):
            form.addRow(label, widget)
        form.addRow("Pace", self.fast)
        form.addRow(self.pace_label, self.pace)
        layout = QVBoxLayout(self)
        layout.addWidget(self.about_model)
        layout.addWidget(self.about_data)
        layout.addLayout(form)
        layout.addStretch(1)
        self._load_config()

        self.optimizer.currentTextChanged.connect(self._optimizer_picked)
        self.lr.valueChanged.connect(self._lr_edited)
        self.weight_decay.valueChanged.connect(self._wd_edited)
        for box in (self.batch_size, self.epochs, self.seed):
            box.valueChanged.connect(self._store)
        self.fast.toggled.connect(self._pace_edited)
        self.pace.valueChanged.connect(self._pace_edited)
        self.listen(session.status_changed, self._status)
        self.listen(session.config_changed, self._load_config)
        self.listen(session.model_loaded, self._describe)
        self.listen(session.data_changed, self._describe)
        self._describe()

    def _describe(self) -> None:
        """Which model and data training will use, in a line each."""
        s = self.session
        if s.loaded is not None:
            params = sum(p.numel() for p in s.loaded.module.parameters())
            kind = "" if s.trainable else " (view only: no architecture to train)"
            self.about_model.setText(
                f"<b>{s.loaded.display_name}</b> · {params:,} parameters{kind}"
            )
        d = s.data
        if d is not None:
            parts = [
                f"{len(x):,} {label}"
                for x, label in ((d.train, "train"), (d.val, "validation"), (d.test, "test"))
                if x is not None
            ]
            self.about_data.setText(f"{d.source}: {', '.join(parts)} images")
        else:
            self.about_data.setText("No data loaded")

    def _load_config(self) -> None:
        cfg = self.session.config
        widgets = (
            self.optimizer,
            self.lr,
            self.batch_size,
            self.epochs,
            self.weight_decay,
            self.seed,
            self.fast,
            self.pace,
        )
        for w in widgets:
            w.blockSignals(True)
        self.optimizer.setCurrentText(cfg.optimizer)
        self.lr.setValue(cfg.lr or DEFAULT_LR[cfg.optimizer])
        self.batch_size.setValue(cfg.batch_size)
        self.epochs.setValue(cfg.epochs)
        self.weight_decay.setValue(cfg.weight_decay)
        self.seed.setValue(cfg.seed)
        pace = cfg.steps_per_second
        self.fast.setChecked(pace is None)
        self.pace.setValue(min(range(len(_PACES)), key=lambda i: abs(_PACES[i] - (pace or 10))))
        for w in widgets:
            w.blockSignals(False)
        self._show_pace()

    def current_pace(self) -> float | None:
        return None if self.fast.isChecked() else float(_PACES[self.pace.value()])

    def _show_pace(self) -> None:
        self.pace.setEnabled(not self.fast.isChecked())
        self.pace_label.setText(f"{_PACES[self.pace.value()]} steps/s")

    def _store(self) -> None:
        cfg = self.session.config
        self.session.config = TrainConfig(
            **{
                **cfg.to_dict(),
                "optimizer": self.optimizer.currentText(),
                "lr": self.lr.value(),
                "batch_size": self.batch_size.value(),
                "epochs": self.epochs.value(),
                "weight_decay": self.weight_decay.value(),
                "seed": self.seed.value(),
                "steps_per_second": self.current_pace(),
            }
        )

    def _optimizer_picked(self, name: str) -> None:
        self.lr.setValue(DEFAULT_LR[name])
        self._store()

    def _lr_edited(self, value: float) -> None:
        self._store()
        self.lr_changed.emit(value)

    def _wd_edited(self, value: float) -> None:
        self._store()
        self.weight_decay_changed.emit(value)

    def _pace_edited(self) -> None:
        self._show_pace()
        self._store()
        self.pace_changed.emit(self.current_pace())

    def _status(self, status: str) -> None:
        locked = status in (RUNNING, PAUSED)
        for w in (self.optimizer, self.batch_size, self.epochs, self.seed):
            w.setEnabled(not locked)
