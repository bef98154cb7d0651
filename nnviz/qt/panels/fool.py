"""The Fool it panel: the smallest change to the input that makes the network answer wrong.

One button runs iterated FGSM (``nnviz.core.explain.fgsm``) on the current input, as
the views see it (their weights, the units switched off), and shows side by side the
original, the change (amplified, red where ink was added, blue where it was taken
away) and the changed digit with the network's new answer, as in the panda that
became a gibbon (Goodfellow et al. 2015). The attack costs tens of milliseconds, so it
runs only when asked. A result belongs to one input and one set of weights: when
either changes it is greyed out until the user runs it again. The changed digit can
become the input of every view.
"""

from __future__ import annotations

from html import escape
from typing import ClassVar

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.errors import NnvizError
from nnviz.core.explain import FoolResult, fgsm
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.mosaic import DIVERGING
from nnviz.qt.panels.overlay import PictureCard, interventions_applied
from nnviz.state import CurrentInput, Session

DEFAULT_MAX_CHANGE = 0.3
# Changes up to this much of full ink are hard to see at all on a screen; larger ones
# show as a faint grey haze, and the panel does not claim they are invisible.
INVISIBLE = 0.06
STEP = 0.01  # each FGSM step moves every pixel by this much (0-1 ink scale)
HOW = (
    "Press <b>Fool the network</b> to find the smallest change to this digit that makes "
    "the network give another answer."
)
NO_MODEL = "Load a model to try to fool it."
NO_INPUT = "Draw a digit, or pick one in the Input panel, then try to fool the network."


class FoolPanel(Panel):
    """An adversarial example for the current input: original, change, changed digit."""

    title = "Fool it"
    object_name = "fool"
    area: ClassVar = Qt.DockWidgetArea.BottomDockWidgetArea
    max_fps: ClassVar[float] = 2.0  # it only greys out or follows the input

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.result: FoolResult | None = None
        self.stale_reason: str | None = None  # why the result no longer matches, if so
        self._for_input: CurrentInput | None = None  # the input the result was made from
        self._handing_over = False  # setting the changed digit as the input, just now
        self._units_ignored = False  # units are switched off but this model takes no hooks

        self.fool_button = QPushButton("Fool the network")
        self.fool_button.setToolTip(
            "Change every pixel a little, the way that most lowers the network's confidence, "
            "until it answers something else"
        )
        self.max_change = QDoubleSpinBox()
        self.max_change.setRange(0.02, 1.0)
        self.max_change.setSingleStep(0.05)
        self.max_change.setDecimals(2)
        self.max_change.setValue(DEFAULT_MAX_CHANGE)
        self.max_change.setToolTip(
            "The most any pixel may change, on the 0 (no ink) to 1 (full ink) scale"
        )
        top = QHBoxLayout()
        top.setContentsMargins(4, 2, 4, 0)
        top.addWidget(self.fool_button)
        top.addSpacing(8)
        top.addWidget(QLabel("Largest change per pixel"))
        top.addWidget(self.max_change)
        top.addStretch(1)

        self.original_card = PictureCard("Original")
        self.change_card = PictureCard("The change")
        self.perturbed_card = PictureCard("Changed digit")
        cards = QHBoxLayout()
        cards.setContentsMargins(2, 0, 2, 0)
        cards.setSpacing(6)
        for card in self.cards():
            cards.addWidget(card, 1)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        big = QFont(self.verdict.font())
        big.setPointSizeF(big.pointSizeF() * 1.15)
        self.verdict.setFont(big)
        self.use_button = QPushButton("Use the perturbed digit as the input")
        self.use_button.setToolTip("Every view then shows the changed digit")
        self.again_button = QPushButton("Try again")
        self.again_button.setToolTip("Fool the network on the input as it is now")
        actions = QHBoxLayout()
        actions.setContentsMargins(4, 0, 4, 2)
        actions.addStretch(1)
        actions.addWidget(self.use_button)
        actions.addWidget(self.again_button)
        actions.addStretch(1)
        results = QWidget()
        result_layout = QVBoxLayout(results)
        result_layout.setContentsMargins(0, 0, 0, 0)
        result_layout.setSpacing(2)
        result_layout.addLayout(cards, 1)
        result_layout.addWidget(self.verdict)
        result_layout.addLayout(actions)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.pages = QStackedWidget()
        self.pages.addWidget(results)
        self.pages.addWidget(self.message)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self.pages, 1)

        self.fool_button.clicked.connect(self.fool)
        self.again_button.clicked.connect(self.fool)
        self.use_button.clicked.connect(self.use_perturbed)
        self.listen(session.model_loaded, self._model_loaded)
        self.listen(session.input_changed, self._input_changed)
        self.listen(session.snapshot_changed, self._weights_changed)
        self.listen(session.interventions_changed, self._units_changed)

    def cards(self) -> tuple[PictureCard, PictureCard, PictureCard]:
        return self.original_card, self.change_card, self.perturbed_card

    # ----- what the user asks for ------------------------------------------------------------
    def fool(self) -> None:
        """Find the smallest change to the current input that changes the answer."""
        s = self.session
        if s.view_model is None or s.current_input is None:
            return
        current = s.current_input
        try:
            with interventions_applied(s.view_model, s.interventions) as applied:
                result = fgsm(
                    s.view_model,
                    current.image,
                    max_epsilon=self.max_change.value(),
                    step=min(STEP, self.max_change.value()),
                )
        except NnvizError as exc:
            self.result = None
            self.message.setText(f"Cannot fool this model on this input: {exc}")
            self.pages.setCurrentIndex(1)
            return
        self.result, self._for_input, self.stale_reason = result, current, None
        self._units_ignored = bool(s.interventions.unit_count) and not applied
        self.mark_stale()
        self.refresh(force=True)  # the answer to a click: now, not at the next frame

    def use_perturbed(self) -> None:
        """Make the changed digit the input of every view."""
        if self.result is None or self._for_input is None:
            return
        was = self._for_input
        description = was.description
        name = "perturbed drawing" if "drawing" in description else f"perturbed {description}"
        self._handing_over = True  # set_input tells us (input_changed) before it returns
        try:
            self.session.set_input(self.result.perturbed, was.label, name)
        finally:
            self._handing_over = False

    # ----- what changed ----------------------------------------------------------------------
    def _model_loaded(self) -> None:
        self.result, self._for_input, self.stale_reason = None, None, None
        self.mark_stale()

    def _input_changed(self) -> None:
        current = self.session.current_input
        if self.result is not None and current is not self._for_input:
            if self._handing_over:
                self._went_stale(
                    "The changed digit is now the input of every view: press Try again to "
                    "fool the network once more."
                )
            else:
                self._went_stale("The input changed: press Fool the network again.")
        self.mark_stale()

    def _weights_changed(self, *_: object) -> None:
        self._went_stale("The weights changed: press Fool the network again.")

    def _units_changed(self) -> None:
        self._went_stale("The switched-off units changed: press Fool the network again.")

    def _went_stale(self, reason: str) -> None:
        if self.result is not None and self.stale_reason is None:
            self.stale_reason = reason
        self.mark_stale()

    # ----- drawing ---------------------------------------------------------------------------
    def redraw(self) -> None:
        s = self.session
        ready = s.view_model is not None and s.current_input is not None
        self.fool_button.setEnabled(ready)
        self.again_button.setEnabled(ready and self.result is not None)
        for button in (self.use_button, self.again_button):
            button.setVisible(self.result is not None)  # nothing to use or retry yet
        if self.result is None:
            self.use_button.setEnabled(False)
            if ready:
                self._draw_waiting()
            else:
                self.message.setText(NO_MODEL if s.view_model is None else NO_INPUT)
                self.pages.setCurrentIndex(1)
            return
        self.pages.setCurrentIndex(0)
        self._draw_result(self.result)
        stale = self.stale_reason is not None
        for card in self.cards():
            card.set_dimmed(stale)
        self.use_button.setEnabled(self.result.fooled and not stale)
        if stale:
            self.verdict.setText(escape(self.stale_reason or ""))
        else:
            self.verdict.setText(self._verdict(self.result))

    def _draw_waiting(self) -> None:
        """Before the first attack: the input and its answer, and what the button does."""
        current = self.session.current_input
        self.pages.setCurrentIndex(0)
        for card in self.cards():
            card.set_dimmed(False)
        try:
            probabilities = self.session.probabilities()
        except NnvizError as exc:
            self.message.setText(f"The model cannot read this input: {exc}")
            self.pages.setCurrentIndex(1)
            return
        top = int(np.argmax(probabilities))
        self.original_card.show_image(current.image)
        self.original_card.set_title(f"Original: {self._name(top)} ({probabilities[top]:.0%})")
        self.original_card.set_caption(escape(current.description))
        self.change_card.set_title("The change")
        self.change_card.show_note(HOW)
        self.change_card.set_caption("")
        self.perturbed_card.set_title("Changed digit")
        self.perturbed_card.show_note("The changed digit and the network's new answer go here.")
        self.perturbed_card.set_caption("")
        self.verdict.setText("")

    def _draw_result(self, r: FoolResult) -> None:
        was, now = r.original_class, r.new_class
        p_was, p_now = r.original_probabilities[was], r.new_probabilities[now]
        self.original_card.show_image(r.original)
        self.original_card.set_title(f"Original: {self._name(was)} ({p_was:.0%})")
        self.original_card.set_caption(escape(self._for_input.description))

        eps = max(r.epsilon, 1e-6)
        self.change_card.show_image(r.perturbation, (-eps, eps), DIVERGING)
        self.change_card.set_title(f"The change, shown \u00d7{1 / eps:.0f}")
        size = self.relative_size()
        overall = f"in all, {size:.1%} of the digit (L2)" if np.isfinite(size) else "no ink before"
        self.change_card.set_caption(
            f"No pixel moved by more than {r.epsilon:.3f} of full ink; {overall}. "
            "Red: ink added, blue: taken away."
        )

        self.perturbed_card.show_image(r.perturbed)
        self.perturbed_card.set_title(f"Changed: {self._name(now)} ({p_now:.0%})")
        self.perturbed_card.set_caption(
            f"The network said {escape(self._name(was))} ({p_was:.0%}) before."
            if r.fooled
            else "The network still gives the same answer."
        )

    def _verdict(self, r: FoolResult) -> str:
        if not r.fooled:
            return (
                f"Changing each pixel by up to {r.epsilon:.2f} did not change the answer "
                f"({escape(self._name(r.original_class))}): allow a larger change and try again."
            )
        now = f"<b>{escape(self._name(r.new_class))}</b>"
        if r.epsilon <= INVISIBLE:
            text = f"The two digits look the same to you; the network now says {now}."
        else:
            text = f"A faint change you can still see, and the network now says {now}."
        if self._units_ignored:
            text += " (The units you switched off were not applied: this model takes no hooks.)"
        return text

    def relative_size(self) -> float:
        """The change's L2 norm as a share of the original digit's."""
        r = self.result
        if r is None:
            return 0.0
        ink = float(np.linalg.norm(r.original))
        return float(np.linalg.norm(r.perturbation)) / ink if ink > 0 else float("inf")

    def _name(self, cls: int) -> str:
        names = self.session.loaded.class_names if self.session.loaded is not None else []
        return names[cls] if 0 <= cls < len(names) else str(cls)

    # ----- theme -----------------------------------------------------------------------------
    def palette_changed(self) -> None:
        for card in self.cards():
            card.apply_palette(self.palette())
