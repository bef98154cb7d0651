"""The layer health panel: per layer and live, the figures that say whether it learns.

One row per layer with parameters: the share of its ReLUs that are dead (silent on every
image of a fixed validation batch), its gradient norm, and the size of the last update
next to the size of its weights. A figure in a known bad range (``nnviz.core.layer_stats``
says which, and where each rule of thumb comes from) gets a warning background, a mark
that does not rely on colour, and a tooltip that says why it is bad and what to try.
The figures come from the latest ``LayerStats`` event, a few times a second.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QStackedLayout,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.layer_stats import (
    DEAD_FRACTION_HIGH,
    GRADIENT_NORM_HIGH,
    GRADIENT_NORM_LOW,
    UPDATE_RATIO_GOOD,
    UPDATE_RATIO_HIGH,
    UPDATE_RATIO_LOW,
    VANISHING_SHARE,
    health_warnings,
)
from nnviz.core.snapshot import LayerRecord, LayerStats
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.distributions import no_statistics_message
from nnviz.state import Session

# An amber that reads on light and dark backgrounds once mixed into them.
WARNING_COLOUR = QColor(236, 150, 30)
WARNING_MIX = 0.45  # share of the amber in a warning cell's background
WARNING_MARK = "\u26a0 "
RULES = (
    f"Healthy: update / weight near {UPDATE_RATIO_GOOD:g} (Karpathy, CS231n); at most "
    f"{DEAD_FRACTION_HIGH:.0%} dead ReLUs; gradient norms at least "
    f"1/{1 / VANISHING_SHARE:,.0f} of the largest layer's. Hover over a header or a cell for more."
)
NO_MODEL_HINT = (
    "Load a model to see how healthy each layer is while it trains "
    "(dead ReLUs, gradient sizes and update sizes)"
)
# (header, figure name in health_warnings, header tooltip)
COLUMNS = (
    ("Layer", None, "A layer with parameters, first to last"),
    (
        "Dead ReLUs",
        "dead_fraction",
        "Share of the layer's ReLU units that give 0 for every image of a validation "
        f"batch; over {DEAD_FRACTION_HIGH:.0%} is a warning",
    ),
    (
        "Gradient norm",
        "gradient_norm",
        "Size of the gradient of all the layer's parameters at the last measured step; "
        f"below {GRADIENT_NORM_LOW:g} or 1/{1 / VANISHING_SHARE:,.0f} of the largest layer's "
        f"(vanishing) or above {GRADIENT_NORM_HIGH:g} (exploding) is a warning",
    ),
    (
        "Update / weight",
        "update_ratio",
        "Size of the last update divided by the size of the weights; about "
        f"{UPDATE_RATIO_GOOD:g} is healthy, below {UPDATE_RATIO_LOW:g} or above "
        f"{UPDATE_RATIO_HIGH:g} is a warning",
    ),
)


def warning_background(palette: QPalette) -> QColor:
    """The warning colour mixed into the palette's base, so text stays readable."""
    base = palette.color(QPalette.ColorRole.Base)
    return QColor.fromRgbF(
        *(
            WARNING_MIX * w + (1 - WARNING_MIX) * b
            for w, b in zip(WARNING_COLOUR.getRgbF()[:3], base.getRgbF()[:3], strict=True)
        )
    )


def _cell_texts(record: LayerRecord) -> dict[str, tuple[str, str]]:
    """Each figure's text and its plain tooltip (when nothing is wrong)."""
    dead = record.dead_fraction
    ratio = record.update_ratio
    norm = record.gradient_norm
    return {
        "dead_fraction": (
            "\u2014" if dead is None else f"{dead:.0%}",
            "No ReLU follows this layer" if dead is None else f"{dead:.1%} of its ReLUs are dead",
        ),
        "gradient_norm": (f"{norm:.3g}", f"gradient norm {norm:.4g}"),
        "update_ratio": (
            "\u2014" if ratio is None or not math.isfinite(ratio) else f"{ratio:.1e}",
            "No update measured yet"
            if ratio is None
            else f"the last step changed the weights by {ratio:.3g} of their size "
            f"(about {UPDATE_RATIO_GOOD:g} is healthy)",
        ),
    }


class LayerHealthPanel(Panel):
    """A table of each layer's dead ReLUs, gradient norm and update-to-weight ratio."""

    title = "Layer health"
    object_name = "layer_health"
    area: ClassVar = Qt.DockWidgetArea.TopDockWidgetArea
    max_fps: ClassVar[float] = 1.0  # new statistics twice a second

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.latest: LayerStats | None = None
        self._warning_brush = QBrush(warning_background(self.palette()))

        self.table = QTableWidget(0, len(COLUMNS))
        for col, (header, _, tip) in enumerate(COLUMNS):
            item = QTableWidgetItem(header)
            item.setToolTip(tip)
            self.table.setHorizontalHeaderItem(col, item)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.summary.setContentsMargins(4, 2, 4, 2)
        self.rules = QLabel(RULES)
        self.rules.setWordWrap(True)
        self.rules.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.rules.setContentsMargins(4, 0, 4, 4)

        self.empty_label = QLabel(NO_MODEL_HINT)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        content = QWidget()
        inner = QVBoxLayout(content)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(self.table, 1)
        inner.addWidget(self.summary)
        inner.addWidget(self.rules)
        self.stack = QStackedLayout()
        self.stack.addWidget(content)
        self.stack.addWidget(self.empty_label)
        self.stack.setCurrentWidget(self.empty_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.stack)
        self._apply_palette()

        self.listen(session.events_added, self.add_events)
        self.listen(session.model_loaded, self.clear)
        self.listen(session.status_changed, self.mark_stale)  # the message may change

    def add_events(self, events: list[Any]) -> None:
        """Keep the latest statistics among the reports; drawn on ``refresh``."""
        for e in reversed(events):
            if isinstance(e, LayerStats):
                self.latest = e
                self.mark_stale()
                return

    def clear(self) -> None:
        """Forget the statistics (another model was loaded)."""
        self.latest = None
        self.mark_stale()

    def redraw(self) -> None:
        stats = self.latest
        self.stack.setCurrentIndex(0 if stats is not None else 1)
        if stats is None:
            self.table.setRowCount(0)
            self.empty_label.setText(no_statistics_message(self.session, NO_MODEL_HINT))
            return
        warnings = health_warnings(stats)
        if self.table.rowCount() != len(stats.layers):
            self.table.setRowCount(len(stats.layers))
        flagged: list[str] = []  # layers with a warning, in order
        for row, record in enumerate(stats.layers):
            self._set_cell(row, 0, record.name, f"{record.name}, at step {stats.step:,}", False)
            texts = _cell_texts(record)
            for col, (_, figure, _) in enumerate(COLUMNS[1:], start=1):
                text, tip = texts[figure]
                warning = warnings[record.name].get(figure)
                if warning is None:
                    self._set_cell(row, col, text, tip, False)
                    continue
                self._set_cell(row, col, WARNING_MARK + text, warning.message, True)
                if record.name not in flagged:
                    flagged.append(record.name)
        if flagged:
            self.summary.setText(
                f"Step {stats.step:,}: {WARNING_MARK}out of the healthy range in "
                f"{', '.join(flagged)}. Hover over a marked cell to see why and what to try."
            )
        else:
            self.summary.setText(f"Step {stats.step:,}: every layer is in the healthy ranges.")

    def _set_cell(self, row: int, col: int, text: str, tip: str, warning: bool) -> None:
        item = self.table.item(row, col)
        if item is None:
            item = QTableWidgetItem()
            align = Qt.AlignmentFlag.AlignLeft if col == 0 else Qt.AlignmentFlag.AlignRight
            item.setTextAlignment(align | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, col, item)
        item.setText(text)
        item.setToolTip(tip)
        item.setBackground(self._warning_brush if warning else QBrush())

    def is_warning(self, layer: str, figure: str) -> bool:
        """Whether a layer's figure ("dead_fraction", "gradient_norm", "update_ratio")
        is drawn as a warning."""
        col = next(i for i, c in enumerate(COLUMNS) if c[1] == figure)
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == layer:
                brush = self.table.item(row, col).background()
                return brush.style() != Qt.BrushStyle.NoBrush and brush == self._warning_brush
        raise KeyError(layer)

    def palette_changed(self) -> None:
        self._apply_palette()

    def _apply_palette(self) -> None:
        self._warning_brush = QBrush(warning_background(self.palette()))
        pal = self.palette()
        fg, bg = pal.color(QPalette.ColorRole.WindowText), pal.color(QPalette.ColorRole.Base)
        hint = [0.45 * f + 0.55 * b for f, b in zip(fg.getRgbF(), bg.getRgbF(), strict=True)]
        dim = QColor.fromRgbF(*hint).name()
        self.empty_label.setStyleSheet(f"color: {dim}; font-size: 13pt;")
        self.rules.setStyleSheet(f"color: {dim};")
