"""The status bar: epoch and step, the epoch's progress, loss, validation accuracy,
samples/s and time left. Fed from Session events; draws on the frame timer."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QProgressBar,
    QSizePolicy,
    QStatusBar,
    QStyle,
    QStyleOption,
    QWidget,
)

from nnviz.core.snapshot import EpochReport, StepReport
from nnviz.qt.panels.text_line import TextLine
from nnviz.state import Session

# Each field is as wide as its longest likely text, so a new figure repaints that field
# alone. As QLabels, every new text relaid out the status bar and repainted it and part
# of the window beneath: 50 of the 64 paints a second while lenet trained, a large part
# of the GUI's share of a core while training runs flat out.
_WIDEST = {
    "position": "epoch 1000 · step 10,000,000 (batch 10,000/10,000)",
    "loss": "loss 00.0000",
    "val": "val acc 100.00%",
    "speed": "1,000,000 samples/s",
    "eta": "epoch ends in 10:00:00",
}


MESSAGE_MARGIN = 6  # px left of a passing message, as Qt's status bar leaves


def format_eta(seconds: float) -> str:
    """'1:05:03', '4:07' or '12 s'."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}" if minutes else f"{secs} s"


class TrainingStatusBar(QStatusBar):
    # Figures a person reads, not watches: 4 updates a second is plenty, and each one
    # repaints the progress bar (about half a millisecond on the GUI thread).
    MAX_FPS = 4.0

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAutoFillBackground(True)  # opaque: the window beneath is not repainted
        self.session = session
        self.position, self.loss, self.val, self.speed, self.eta = (
            self._field(name) for name in ("position", "loss", "val", "speed", "eta")
        )
        self.position.setText("No training yet")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setFormat("epoch %p%")
        for w in (self.position, self.progress, self.loss, self.val, self.speed, self.eta):
            self.addPermanentWidget(w)
        self._last: StepReport | None = None
        self._val_acc: float | None = None
        self._stale = False
        self._last_refresh = 0.0
        session.events_added.connect(self._events)
        session.model_loaded.connect(self._reset)
        session.status_changed.connect(self._status)

    def message_shown(self) -> str:
        """The passing message as the bar draws it: cut with an ellipsis to the room left
        of the figures (the bar drew it whole beneath them, and a long one ran into
        "20,628 steps trained"). ``currentMessage`` keeps the whole text."""
        room = max(0, self.position.x() - 2 * MESSAGE_MARGIN)
        return self.fontMetrics().elidedText(
            self.currentMessage(), Qt.TextElideMode.ElideRight, room
        )

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        if not self.currentMessage():
            super().paintEvent(event)
            return
        with QPainter(self) as painter:
            option = QStyleOption()
            option.initFrom(self)
            self.style().drawPrimitive(
                QStyle.PrimitiveElement.PE_PanelStatusBar, option, painter, self
            )
            painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
            painter.drawText(
                self.rect().adjusted(MESSAGE_MARGIN, 0, -MESSAGE_MARGIN, 0),
                Qt.AlignmentFlag.AlignLeading | Qt.AlignmentFlag.AlignVCenter,
                self.message_shown(),
            )

    def _field(self, name: str) -> TextLine:
        line = TextLine(self)
        line.setFixedWidth(line.fontMetrics().horizontalAdvance(_WIDEST[name]) + 8)
        # Fixed, not a TextLine's usual Ignored: the bar's layout otherwise squeezed the
        # fields to nothing and they overlapped.
        line.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        return line  # opaque (a TextLine paints its whole rectangle): the bar stays put

    def _reset(self) -> None:
        self._last = None
        epochs = self.session.history.epochs
        self._val_acc = epochs[-1].get("val_accuracy") if epochs else None
        self._stale = True
        self.position.setText(f"{self.session.history.last_step:,} steps trained")

    def _events(self, events: list) -> None:
        for e in events:
            if isinstance(e, StepReport):
                self._last = e
            elif isinstance(e, EpochReport) and e.val_accuracy is not None:
                self._val_acc = e.val_accuracy
        self._stale = True

    def _status(self, status: str) -> None:
        self._stale = True
        self.showMessage(f"Training {status}", 3000)

    def refresh(self) -> None:
        """Redraw if something changed (called by the window's frame timer)."""
        now = time.perf_counter()
        if not self._stale or now - self._last_refresh < 1.0 / self.MAX_FPS:
            return
        self._stale = False
        self._last_refresh = now
        r = self._last
        self.val.setText("" if self._val_acc is None else f"val acc {self._val_acc:.2%}")
        if r is None:
            self.loss.setText("")
            self.speed.setText("")
            self.eta.setText("")
            self.progress.setValue(0)
            return
        self.position.setText(
            f"epoch {r.epoch + 1} · step {r.step:,} (batch {r.batch}/{r.batches_per_epoch})"
        )
        self.progress.setValue(round(100 * r.batch / r.batches_per_epoch))
        self.loss.setText(f"loss {r.loss:.4f}")
        self.speed.setText(f"{r.samples_per_s:,.0f} samples/s")
        batch_size = self.session.config.batch_size
        left_in_epoch = (r.batches_per_epoch - r.batch) * batch_size
        self.eta.setText(
            f"epoch ends in {format_eta(left_in_epoch / r.samples_per_s)}"
            if r.samples_per_s > 0 and self.session.status == "running"
            else ""
        )
