"""Make it a 7: nudge the current input toward a class by gradient ascent, step by step.

``nnviz.core.dream.ascend_to_class`` moves the pixels a little at a time in the
direction that raises the class's probability most (about 30 ms for lenet, so it runs
on the button press, on the GUI thread's own model). A filmstrip shows a few of the
steps, each with the class's probability, and a curve shows all of them; "Use the
result as the input" makes the last picture what every view looks at.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.dream import Ascent, ascend_to_class
from nnviz.core.errors import NnvizError
from nnviz.qt.panels.mosaic import Mosaic, image_plot
from nnviz.qt.panels.teach_pictures import (
    Captions,
    class_name,
    fill_classes,
    hint_label,
    percent,
)
from nnviz.state import Session

FRAMES = 6  # pictures in the filmstrip: the start, the end and evenly between
FRAME_GAP = 5  # image pixels between frames
CAPTION_ROOM = 13  # image pixels above the frames for their two-line captions
STEPS = 20
OUTDATED = " The input or the weights changed since: press Nudge to follow them."


def frame_steps(count: int, frames: int = FRAMES) -> list[int]:
    """``frames`` step numbers spread evenly over ``count`` images, first and last included."""
    return sorted({int(round(i)) for i in np.linspace(0, count - 1, min(frames, count))})


class Filmstrip:
    """A row of captioned digit frames in ONE ImageItem: separate plots came out in
    different sizes (each as wide as its caption), and one item draws faster."""

    def __init__(self, frames: int) -> None:
        self.mosaic = Mosaic(1, frames, 28, 28, gap=FRAME_GAP)
        self.plot, self.image = image_plot()
        self.captions: list[pg.TextItem] = []
        for i in range(frames):
            caption = pg.TextItem(anchor=(0.5, 1.0))  # its bottom centre just above the frame
            x, _ = self.mosaic.origin(0, i)
            caption.setPos(x + 14, -1)
            self.plot.addItem(caption)
            self.captions.append(caption)
        width = self.mosaic.image.shape[1]
        self.plot.getViewBox().setRange(
            xRange=(-0.6, width + 0.6), yRange=(-CAPTION_ROOM, 28.6), padding=0
        )
        self.clear()

    def show(self, pictures: list[np.ndarray], captions: list[str]) -> None:
        self.mosaic.image[...] = np.nan  # frames not filled stay transparent
        self.mosaic.fill_reading_order(np.asarray(pictures, np.float32))
        self.image.setImage(self.mosaic.image, autoLevels=False, levels=(0.0, 1.0))
        for i, caption in enumerate(self.captions):
            caption.setText(captions[i] if i < len(captions) else "")

    def clear(self) -> None:
        self.show([], [])

    def frame(self, i: int) -> np.ndarray:
        """The picture shown in frame ``i``."""
        return self.mosaic.tile(0, i).copy()

    def caption(self, i: int) -> str:
        return self.captions[i].toPlainText()

    def set_colour(self, fg: QColor) -> None:
        for caption in self.captions:
            caption.setColor(fg)


class NudgeSection(QWidget):
    """ "Make it a [class] [Nudge]": the steps of the ascent, and a way to keep the result."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.ascent: Ascent | None = None
        self.frames: list[int] = []  # the steps the filmstrip shows
        self._setting_input = False
        self._caption = ""
        self.captions = Captions(self)

        self.class_combo = QComboBox()
        self.class_combo.setToolTip("The class to nudge the input toward")
        self.nudge_button = QPushButton("Nudge")
        self.nudge_button.setToolTip(
            f"{STEPS} small steps of gradient ascent on the input toward the class"
        )
        self.use_button = QPushButton("Use the result as the input")
        self.use_button.setToolTip("Make the last picture the input of every view")
        self.use_button.setEnabled(False)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Make it a"))
        bar.addWidget(self.class_combo)
        bar.addWidget(self.nudge_button)
        bar.addStretch(1)
        bar.addWidget(self.use_button)

        self.caption = hint_label(
            "Nudge changes the input's pixels, a little each step, the way that raises the "
            "class's probability most. The model is not changed."
        )
        self.captions.hints.append(self.caption)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setMinimumHeight(110)
        self.captions.views.append(self.graphics)
        self.filmstrip = Filmstrip(FRAMES)
        self.graphics.addItem(self.filmstrip.plot)
        self.curve_view = pg.PlotWidget()
        self.curve_view.setMaximumHeight(150)
        self.curve_view.setMinimumHeight(80)
        self.curve_view.setMouseEnabled(False, False)
        self.curve_view.setMenuEnabled(False)
        self.curve_view.hideButtons()
        self.curve_view.setYRange(0, 1, padding=0.05)
        self.curve_view.getAxis("left").setTicks([[(0.0, "0"), (0.5, "0.5"), (1.0, "1")]])
        self.curve_view.setLabel("bottom", "step")
        self.curve_view.setLabel("left", "probability")
        self.curve = self.curve_view.plot([], [], pen=pg.mkPen((232, 96, 28), width=2))
        self.dots = self.curve_view.plot([], [], pen=None, symbol="o", symbolSize=6)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.caption)
        layout.addWidget(self.graphics, 3)
        layout.addWidget(self.curve_view, 2)

        self.nudge_button.clicked.connect(self.nudge)
        self.use_button.clicked.connect(self.use_result)
        self._clear_frames()
        self.captions.apply()
        self.apply_palette()

    # ----- state -------------------------------------------------------------------------
    def redraw(self) -> None:
        s = self.session
        names = list(s.loaded.class_names) if s.loaded is not None else []
        fill_classes(self.class_combo, names)
        self.nudge_button.setEnabled(s.loaded is not None and s.current_input is not None)

    def model_changed(self) -> None:
        """A different model: the steps shown were another model's."""
        self.ascent = None
        self.use_button.setEnabled(False)
        self._clear_frames()

    def outdated(self) -> None:
        """The input or the weights changed: the steps shown no longer follow from them."""
        if self.ascent is not None and not self._setting_input and self._caption:
            self.caption.setText(self._caption + OUTDATED)

    # ----- the ascent --------------------------------------------------------------------
    def nudge(self) -> None:
        """Nudge the current input toward the chosen class and show the steps."""
        s = self.session
        shown = s.current_input
        if s.loaded is None or shown is None:
            self.caption.setText("Draw a digit or pick one to nudge.")
            return
        # The classes are filled in when the panel draws, which it may not have done yet.
        fill_classes(self.class_combo, list(s.loaded.class_names))
        target = int(self.class_combo.currentData())
        # An exported model runs through its program; the rest through the views' copy.
        model = s.loaded.program if s.loaded.program is not None else s.view_model
        try:
            ascent = ascend_to_class(model, shown.image, target, steps=STEPS)
        except NnvizError as exc:
            self.caption.setText(f"Nudging failed: {exc}")
            return
        self.ascent = ascent
        self.use_button.setEnabled(True)
        names = list(s.loaded.class_names)
        name = class_name(names, ascent.target)
        p = ascent.probabilities
        self._caption = (
            f"{shown.description} nudged toward {name}: its probability went from "
            f"{percent(p[0])} to {percent(p[-1])} in {len(p) - 1} steps."
        )
        self.caption.setText(self._caption)
        self._show_frames(name)

    def _show_frames(self, name: str) -> None:
        assert self.ascent is not None
        images, probs = self.ascent.images, self.ascent.probabilities
        self.frames = frame_steps(len(images))
        self.filmstrip.show(
            [images[k] for k in self.frames],
            [f"step {k}\nP({name}) {percent(probs[k])}" for k in self.frames],
        )
        steps = np.arange(len(probs))
        self.curve.setData(steps, np.asarray(probs))
        self.dots.setData(np.asarray(self.frames), np.asarray(probs)[self.frames])
        self.curve_view.setLabel("left", f"P({name})")
        self.curve_view.setXRange(0, max(1, len(probs) - 1), padding=0.02)

    def _clear_frames(self) -> None:
        self.frames = []
        self.filmstrip.clear()
        self.curve.setData([], [])
        self.dots.setData([], [])

    def use_result(self) -> None:
        """The last picture of the ascent becomes every view's input."""
        if self.ascent is None or self.session.loaded is None:
            return
        name = class_name(list(self.session.loaded.class_names), self.ascent.target)
        self._setting_input = True
        try:
            self.session.set_input(self.ascent.images[-1], None, f"nudged toward {name}")
        finally:
            self._setting_input = False

    def apply_palette(self) -> None:
        self.captions.apply()
        pal = self.palette()
        fg = self.captions.fg
        self.curve_view.setBackground(pal.color(pal.ColorRole.Base))
        for side in ("left", "bottom"):
            axis = self.curve_view.getAxis(side)
            axis.setPen(fg)
            axis.setTextPen(fg)
        self.filmstrip.set_colour(fg)
        self.dots.setSymbolBrush(fg)
        self.dots.setSymbolPen(None)
