"""The Why panel: which pixels made the network give its answer.

Beside the input (grey, as the network sees it) two maps are laid over it: saliency,
the gradient of one class's score with respect to each pixel (how much changing that
pixel changes the score), and Grad-CAM, where on the last convolution layer's feature
maps the evidence for the class lies. The class is the predicted one unless the user
picks another ("which pixels pushed towards 7?"). Both maps cost about 2 ms, so they are
computed in ``redraw`` and follow the input, the weights while training and the units
switched off. Grad-CAM reaches the layers of TorchScript and exported files as the
Feature maps view does; a model without a conv layer says so in its place, and
saliency still works.
"""

from __future__ import annotations

from html import escape
from typing import ClassVar

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.errors import NnvizError
from nnviz.core.explain import cam_layers, grad_cam, saliency
from nnviz.qt import colours
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.mosaic import message_pages
from nnviz.qt.panels.overlay import (
    PictureCard,
    heat_colours,
    interventions_applied,
    signed_colours,
)
from nnviz.state import Session

NO_CONV = "Grad-CAM needs a convolutional layer; this model has none."
NO_MODEL = "Load a model to see why it answers as it does."
NO_INPUT = "Draw a digit, or pick one in the Input panel, to see why the network reads it so."
DEFAULT_OPACITY = 75  # percent
# The digit under a heat map is shown a little darker, so the heat stands out on the ink.
UNDER_HEAT = (0.0, 1.6)


class WhyPanel(Panel):
    """Saliency and Grad-CAM for the current input and a chosen class."""

    title = "Why"
    object_name = "why"
    area: ClassVar = Qt.DockWidgetArea.BottomDockWidgetArea
    # Two gradient passes a frame (~4 ms for lenet): 10 a second follow training well
    # and leave the GIL to the trainer.
    max_fps: ClassVar[float] = (
        2.0  # two gradient passes per redraw: beside training, twice a second is live enough
    )

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self._cam_problem: str | None = None  # why this model has no Grad-CAM, if it has none
        self._overlay_only = False  # only the opacity changed: recolour, do not recompute
        self.predicted: int | None = None
        self.target: int | None = None  # the class the maps explain
        self.shown_saliency: np.ndarray | None = None  # the maps on screen, as computed
        self.shown_cam: np.ndarray | None = None

        self.class_choice = QComboBox()
        self.class_choice.setToolTip("Which class's score the maps explain")
        # A fixed width: the probabilities in the item texts change every frame in training.
        self.class_choice.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.class_choice.setMinimumContentsLength(13)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(DEFAULT_OPACITY)
        self.opacity.setMaximumWidth(120)
        self.opacity.setToolTip("How strongly the maps cover the digit")
        self.unit_note = QLabel()
        self.unit_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        bar.addWidget(QLabel("Explain the score for"))
        bar.addWidget(self.class_choice)
        bar.addWidget(self.unit_note, 1)
        bar.addWidget(QLabel("Overlay"))
        bar.addWidget(self.opacity)

        self.input_card = PictureCard("The input", controls=True)
        self.input_about = QLabel()
        self.input_about.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.input_about.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.input_card.control_row.addWidget(self.input_about)
        self.saliency_card = PictureCard("Saliency", controls=True)
        self.signed = QCheckBox("Signed: towards / away")
        self.signed.setToolTip(
            "Show the gradient with its sign: pixels in the positive colour push the score up, "
            "in the negative colour down (View > Colours of signed values)"
        )
        self.saliency_card.control_row.addStretch(1)
        self.saliency_card.control_row.addWidget(self.signed)
        self.saliency_card.control_row.addStretch(1)
        self.cam_card = PictureCard("Grad-CAM", controls=True)
        self.layer_choice = QComboBox()
        self.layer_choice.setToolTip("The convolution layer whose feature maps Grad-CAM weighs")
        self.layer_label = QLabel("Layer")
        self.cam_card.control_row.addWidget(self.layer_label)
        self.cam_card.control_row.addWidget(self.layer_choice, 1)
        cards = QHBoxLayout()
        cards.setContentsMargins(2, 0, 2, 2)
        cards.setSpacing(6)
        for card in (self.input_card, self.saliency_card, self.cam_card):
            cards.addWidget(card, 1)

        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addLayout(cards, 1)
        self.pages, self.message = message_pages(self, content)

        self.class_choice.currentIndexChanged.connect(self._choice_changed)
        self.signed.toggled.connect(self._choice_changed)
        self.layer_choice.currentIndexChanged.connect(self._choice_changed)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self.listen(colours.changed, lambda *_: self._draw_overlays())
        self.listen(session.model_loaded, self._model_loaded)
        self.listen(session.input_changed, self.mark_stale)
        self.listen(session.snapshot_changed, self.mark_stale)
        self.listen(session.interventions_changed, self.mark_stale)
        self._model_loaded()

    # ----- what the user picks ---------------------------------------------------------------
    def choose_class(self, cls: int | None) -> None:
        """Explain class ``cls``'s score; None: the predicted class."""
        self.class_choice.setCurrentIndex(0 if cls is None else cls + 1)

    def chosen_class(self) -> int | None:
        """The class picked in the selector, or None for "the predicted class"."""
        return self.class_choice.currentData()

    def cam_layer(self) -> str | None:
        """The layer Grad-CAM weighs, or None when the model cannot give Grad-CAM."""
        return self.layer_choice.currentData() if self._cam_problem is None else None

    def cam_problem(self) -> str | None:
        """Why this model has no Grad-CAM, in plain words; None when it has."""
        return self._cam_problem

    def _choice_changed(self) -> None:
        self.mark_stale()
        self.refresh()  # the answer to a click: now, not at the next frame

    def _opacity_changed(self) -> None:
        if not self.stale:
            self._overlay_only = True
        self.mark_stale()
        self.refresh()

    # ----- model -----------------------------------------------------------------------------
    def _model_loaded(self) -> None:
        """A different model: its classes and the layers Grad-CAM can use."""
        loaded, module = self.session.loaded, self.session.view_model
        names = list(loaded.class_names) if loaded is not None else []
        self.class_choice.blockSignals(True)
        self.class_choice.clear()
        self.class_choice.addItem("predicted", None)
        for i, name in enumerate(names):
            self.class_choice.addItem(name, i)
        self.class_choice.blockSignals(False)

        self.layer_choice.blockSignals(True)
        self.layer_choice.clear()
        self._cam_problem = None
        if module is not None:
            try:
                # The conv layers and the default (the activation after the last one).
                layers, default = cam_layers(module)
            except NnvizError as exc:
                layers, default, self._cam_problem = [], None, _sentence(str(exc))
            for name in layers:
                self.layer_choice.addItem(f"{name} (default)" if name == default else name, name)
            if default is not None:
                self.layer_choice.setCurrentIndex(layers.index(default))
            elif self._cam_problem is None:
                self._cam_problem = NO_CONV
        self.layer_choice.setVisible(self._cam_problem is None)
        self.layer_label.setVisible(self._cam_problem is None)
        self.layer_choice.blockSignals(False)
        self.mark_stale()

    # ----- drawing ---------------------------------------------------------------------------
    def redraw(self) -> None:
        overlay_only, self._overlay_only = self._overlay_only, False
        s = self.session
        if s.view_model is None or s.loaded is None:
            self._show_message(NO_MODEL)
            return
        if s.current_input is None:
            self._show_message(NO_INPUT)
            return
        self.pages.setCurrentIndex(0)
        if overlay_only and self.shown_saliency is not None:
            self._draw_overlays()
            return
        try:
            probabilities = s.probabilities()
        except NnvizError as exc:
            self._show_message(f"The model cannot read this input: {exc}")
            return
        self.predicted = int(np.argmax(probabilities))
        self._label_classes(probabilities)
        chosen = self.chosen_class()
        self.target = self.predicted if chosen is None else chosen
        image = s.current_input.image
        self.input_card.show_image(image)
        self.input_about.setText(s.current_input.description)
        self.input_card.set_caption(
            f"The network says <b>{escape(self._name(self.predicted))}</b> "
            f"({probabilities[self.predicted]:.0%}). White is ink, as in MNIST."
        )
        with interventions_applied(s.view_model, s.interventions) as applied:
            self._compute(image)
        if s.interventions.unit_count and not applied:
            self.unit_note.setText("  (switched-off units are not applied to these maps)")
        elif s.interventions.unit_count:
            count = s.interventions.unit_count
            self.unit_note.setText(f"  (with {count} unit{'s' * (count > 1)} switched off)")
        else:
            self.unit_note.setText("")
        self._draw_overlays()

    def _compute(self, image: np.ndarray) -> None:
        """Both maps for ``image`` and the target class (errors shown in their card)."""
        model, target = self.session.view_model, self.target
        try:
            self.shown_saliency = saliency(model, image, target, signed=self.signed.isChecked())
        except NnvizError as exc:
            self.shown_saliency = None
            self.saliency_card.show_note(_sentence(str(exc)))
        self.shown_cam = None
        if self._cam_problem is not None:
            self.cam_card.show_note(self._cam_problem)
            return
        try:
            self.shown_cam = grad_cam(model, image, target, self.cam_layer())
        except NnvizError as exc:
            self.cam_card.show_note(_sentence(str(exc)))

    def _draw_overlays(self) -> None:
        image = self.session.current_input.image
        opacity = self.opacity.value() / 100
        name = escape(self._name(self.target))
        if self.shown_saliency is not None:
            self.saliency_card.show_image(image, UNDER_HEAT)
            if self.signed.isChecked():
                self.saliency_card.set_title(f"Saliency for {name} (signed)")
                self.saliency_card.show_overlay(signed_colours(self.shown_saliency, opacity))
                scheme = colours.current()  # the words and colours the overlay is drawn in
                self.saliency_card.set_caption(
                    f"<span style='color:{scheme.positive}'><b>{scheme.positive_word}</b>"
                    f"</span>: more ink here pushes towards {name}; "
                    f"<span style='color:{scheme.negative}'><b>{scheme.negative_word}</b>"
                    f"</span>: more ink here pushes away from {name}."
                )
            else:
                self.saliency_card.set_title(f"Saliency for {name}")
                self.saliency_card.show_overlay(heat_colours(self.shown_saliency, opacity))
                self.saliency_card.set_caption(
                    f"Bright pixels: changing them changes the score for {name} the most."
                )
        if self.shown_cam is not None:
            layer = escape(self.cam_layer() or "")
            self.cam_card.set_title(f"Grad-CAM for {name}")
            self.cam_card.show_image(image, UNDER_HEAT)
            self.cam_card.show_overlay(heat_colours(self.shown_cam, opacity))
            self.cam_card.set_caption(
                f"Bright areas: where the features of {layer} found evidence for {name}."
            )
        elif self.cam_card.showing_note():
            self.cam_card.set_title("Grad-CAM")
            self.cam_card.set_caption("")

    def _label_classes(self, probabilities: np.ndarray) -> None:
        """Each class with its probability, and which one is predicted."""
        self.class_choice.setItemText(0, f"predicted ({self._name(self.predicted)})")
        for i in range(min(len(probabilities), self.class_choice.count() - 1)):
            self.class_choice.setItemText(i + 1, f"{self._name(i)}  ({probabilities[i]:.1%})")

    def _name(self, cls: int | None) -> str:
        names = self.session.loaded.class_names if self.session.loaded is not None else []
        if cls is None:
            return ""
        return names[cls] if 0 <= cls < len(names) else str(cls)

    def _show_message(self, text: str) -> None:
        self.shown_saliency = self.shown_cam = None
        self.message.setText(text)
        self.pages.setCurrentIndex(1)

    # ----- theme -----------------------------------------------------------------------------
    def palette_changed(self) -> None:
        for card in (self.input_card, self.saliency_card, self.cam_card):
            card.apply_palette(self.palette())


def _sentence(text: str) -> str:
    """A core message as a sentence: capital first letter, full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
