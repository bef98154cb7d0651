"""The Compare panel: a second model reads the same digit, its answer beside the main one's.

The main model's bars are the Session's shared prediction (the views' weights, with any
units switched off); the second model is the panel's own, loaded from a bundled sample,
an untrained preset or any model file nnviz opens safely, and run on the current input
under ``torch.inference_mode``. It is never trained, so it stays as loaded across input
and model changes; only the user's pick replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from importlib.resources import files
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.errors import NnvizError
from nnviz.core.modelfile import LoadedModel, load_model
from nnviz.core.models import PRESETS
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.prediction_bars import PredictionBars
from nnviz.state import Session

SAMPLES = ("mlp-3b1b", "mlp", "lenet")  # the trained models shipped in nnviz.sample_models
OPEN_FILE = "Open file…"
MODEL_FILTER = "Models (*.nnviz *.pt2 *.pt *.pth *.ts *.zip);;All files (*)"
SEED = 0  # an untrained preset gets the same weights each time it is picked


@dataclass
class SecondModel:
    """The model the panel compares with, and what the picker calls it."""

    loaded: LoadedModel
    name: str  # e.g. "mlp sample (trained)"
    parameters: int


def sample_path(name: str) -> Path:
    """A bundled sample model's file."""
    return Path(str(files("nnviz.sample_models") / f"{name}.nnviz"))


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def predict(loaded: LoadedModel, image: np.ndarray) -> np.ndarray:
    """Class probabilities of ``loaded`` for one 28x28 image; NnvizError if it cannot."""
    shape = tuple(loaded.input_shape)
    if int(np.prod(shape)) != image.size:
        raise NnvizError(
            f"it takes inputs of shape {shape}, not a {image.shape[0]}x{image.shape[1]} digit"
        )
    x = torch.from_numpy(np.array(image, np.float32)).reshape(1, *shape)
    try:
        with torch.inference_mode():
            logits = loaded.module(x)
    except Exception as exc:  # noqa: BLE001 - any model file's failure becomes a message
        raise NnvizError(f"it fails on the digit: {str(exc).strip()[:200]}") from exc
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != 1:
        raise NnvizError("it does not return one row of class scores")
    return torch.softmax(logits.float(), dim=1)[0].numpy().copy()


class ComparePanel(Panel):
    """Two models, one digit: both sets of probability bars side by side."""

    title = "Compare"
    object_name = "compare"
    max_fps: ClassVar[float] = (
        2.0  # a second model's forward pass per redraw; training moves slowly
    )
    area: ClassVar = Qt.DockWidgetArea.BottomDockWidgetArea

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.second: SecondModel | None = None
        self.second_probabilities: np.ndarray | None = None
        self._second_key: tuple[int, int] | None = None  # (input, model) the bars show
        self._picked = 0  # the picker's entry of the loaded second model
        self._tried_default = False

        self.picker = QComboBox()
        self.picker.setToolTip("The model to compare with the one the views show")
        for name in SAMPLES:
            self.picker.addItem(f"{name} sample (trained)", str(sample_path(name)))
        self.picker.insertSeparator(self.picker.count())
        for name in PRESETS:
            self.picker.addItem(f"{name} preset (untrained)", name)
        self.picker.insertSeparator(self.picker.count())
        self.picker.addItem(OPEN_FILE, None)
        self.problem = QLabel()  # why the last pick could not be loaded
        self.problem.setWordWrap(True)
        self.problem.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.problem.hide()

        self.main_title, self.second_title = QLabel(), QLabel()
        self.main_bars, self.second_bars = PredictionBars(), PredictionBars()
        self.verdict = QLabel()
        for label in (self.main_title, self.second_title, self.verdict):
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setWordWrap(True)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.verdict.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)  # the answer to the panel's question
        self.verdict.setFont(font)

        top = QHBoxLayout()
        top.addWidget(QLabel("Compare with"))
        top.addWidget(self.picker)
        top.addStretch(1)
        pair = QGridLayout()
        pair.setHorizontalSpacing(12)
        pair.setVerticalSpacing(2)
        pair.addWidget(self.main_title, 0, 0)
        pair.addWidget(self.second_title, 0, 1)
        pair.addWidget(self.main_bars, 1, 0)
        pair.addWidget(self.second_bars, 1, 1)
        pair.setRowStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self.problem)
        layout.addLayout(pair, 1)
        layout.addWidget(self.verdict)
        self.setMinimumSize(360, 260)

        self.picker.currentIndexChanged.connect(self._picked_entry)
        self.listen(session.input_changed, self.mark_stale)
        self.listen(session.snapshot_changed, self.mark_stale)
        self.listen(session.interventions_changed, self.mark_stale)
        self.listen(session.model_loaded, self.mark_stale)
        self.palette_changed()

    # ----- choosing the second model -------------------------------------------------------
    def _picked_entry(self, index: int) -> None:
        source = self.picker.itemData(index)
        if self.picker.itemText(index) == OPEN_FILE:
            self.open_dialog()
        elif source is not None:
            self.load_second(source, index)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a model to compare", "", MODEL_FILTER)
        if not path or not self.load_second(path):
            self._show_pick(self._picked)  # cancelled or failed: the picker shows what is loaded

    def load_second(self, source: str | Path, index: int | None = None) -> bool:
        """Load the model to compare with (a sample's path, a preset name or a file);
        a file nnviz cannot open is reported in the panel and the old model stays."""
        source = str(source)
        try:
            loaded = load_model(source, seed=SEED)
        except NnvizError as exc:
            self.problem.setText(f"Cannot compare with {escape(Path(source).name)}: {exc}")
            self.problem.show()
            self._show_pick(self._picked)
            return False
        if index is None:  # a file: it joins the list, just above "Open file…"
            index = self.picker.findData(source)
            if index < 0:
                index = self.picker.count() - 1
                self.picker.insertItem(index, loaded.display_name, source)
        self.problem.hide()
        name = self.picker.itemText(index)
        self.second = SecondModel(loaded, name, parameter_count(loaded.module))
        self._picked = index
        self._show_pick(index)
        self._second_key = None
        self.mark_stale()
        return True

    def _show_pick(self, index: int) -> None:
        self.picker.blockSignals(True)
        self.picker.setCurrentIndex(index)
        self.picker.blockSignals(False)

    # ----- drawing ---------------------------------------------------------------------------
    def redraw(self) -> None:
        if self.second is None and not self._tried_default:
            self._tried_default = True  # once: a missing sample is reported, not retried
            entry = self._default_entry()
            self.load_second(self.picker.itemData(entry), entry)
        main = self._show_main()
        second = self._show_second()
        self._show_verdict(main, second)

    def _default_entry(self) -> int:
        """The first bundled sample that is not the model the views show."""
        loaded = self.session.loaded
        shown = loaded.path.resolve() if loaded is not None and loaded.path else None
        for i, name in enumerate(SAMPLES):
            if sample_path(name).resolve() != shown:
                return i
        return 0

    def _show_main(self) -> str | None:
        """The main model's bars; returns its pick's class name, or None."""
        s = self.session
        if s.loaded is None:
            self.main_title.setText("<b>No model loaded</b>")
            self.main_bars.show_message("load a model")
            return None
        params = parameter_count(s.view_model) if s.view_model is not None else 0
        role = (
            "the views' model, units switched off" if len(s.interventions) else "the views' model"
        )
        heading = f"<b>{escape(s.loaded.display_name)}</b> · {role}<br>{params:,} parameters"
        probs = None
        try:
            probs = s.probabilities()
        except NnvizError as exc:
            self.main_bars.show_message("no prediction")
            self.main_title.setText(f"{heading}<br>cannot predict: {escape(str(exc))}")
            return None
        if probs is None or not len(probs):
            self.main_title.setText(heading)
            self.main_bars.show_message("no input")
            return None
        return self._show_bars(self.main_bars, self.main_title, heading, s.loaded, probs)

    def _show_second(self) -> str | None:
        second, current = self.second, self.session.current_input
        if second is None:
            self.second_title.setText("<b>No second model</b>")
            self.second_bars.show_message("pick a model")
            return None
        heading = f"<b>{escape(second.name)}</b><br>{second.parameters:,} parameters"
        if current is None:
            self.second_probabilities = None
            self.second_title.setText(heading)
            self.second_bars.show_message("no input")
            return None
        key = (id(current), id(second))
        if key != self._second_key or self.second_probabilities is None:
            try:
                self.second_probabilities = predict(second.loaded, current.image)
            except NnvizError as exc:
                self.second_probabilities = None
                self._second_key = None
                self.second_bars.show_message("no prediction")
                self.second_title.setText(f"{heading}<br>cannot read this digit: {exc}")
                return None
            self._second_key = key
        return self._show_bars(
            self.second_bars, self.second_title, heading, second.loaded, self.second_probabilities
        )

    def _show_bars(
        self,
        bars: PredictionBars,
        title: QLabel,
        heading: str,
        loaded: LoadedModel,
        probs: np.ndarray,
    ) -> str:
        pick = bars.show_prediction(loaded.class_names, probs)
        title.setText(f"{heading} · says <b>{escape(pick)}</b> ({float(np.max(probs)):.1%})")
        return pick

    def _show_verdict(self, main: str | None, second: str | None) -> None:
        current = self.session.current_input
        if main is None or second is None or current is None:
            self.verdict.setText("")
            return
        if main == second:
            text = f"Both say <b>{escape(main)}</b>"
        else:
            text = f"They disagree: <b>{escape(main)}</b> vs <b>{escape(second)}</b>"
        if current.label is not None:
            text += f" \u00b7 the true label is {current.label}"
        self.verdict.setText(f"{text} \u00b7 on {escape(current.description)}")

    def palette_changed(self) -> None:
        for bars in (self.main_bars, self.second_bars):
            bars.apply_palette(self.palette())
