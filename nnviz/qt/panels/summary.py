"""The summary panel: the model's layers, their output shapes and parameter counts.

The same figures as ``nnviz summary`` (``nnviz.core.inspect.summarize``), in a table.
Training changes no shape or count, so the table is built once per model.
"""

from __future__ import annotations

from typing import Any, ClassVar

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nnviz.core.errors import NnvizError
from nnviz.core.inspect import Summary, summarize
from nnviz.qt.panels.base import Panel
from nnviz.state import Session

HEADERS = ("Layer", "Type", "Output shape", "Parameters")


class SummaryPanel(Panel):
    """One row per layer (name, type, output shape, parameters) and a totals row."""

    title = "Summary"
    object_name = "summary"
    area: ClassVar = Qt.DockWidgetArea.RightDockWidgetArea

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.summary: Summary | None = None
        self._built_for: Any = None  # the LoadedModel the table shows

        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.horizontalHeaderItem(3).setTextAlignment(
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        )
        header.setToolTip(
            "Output shape includes the batch dimension (1); parameters are the layer's own "
            "weights and biases"
        )
        self.note = QLabel()
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)
        self.listen(session.model_loaded, self.mark_stale)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(420, 360)  # a small model's rows without scrolling

    def redraw(self) -> None:
        loaded = self.session.loaded
        if loaded is self._built_for:
            return  # weights changed, not shapes or counts
        self._built_for = loaded
        self.table.setRowCount(0)
        self.summary = None
        if loaded is None:
            self.note.setText("No model loaded")
            return
        try:
            self.summary = summarize(loaded.program or loaded.module, tuple(loaded.input_shape))
        except NnvizError as exc:
            self.note.setText(f"Cannot summarise this model: {exc}")
            return
        self._fill(self.summary)

    def _fill(self, summary: Summary) -> None:
        rows = [
            (layer.name or "(model)", layer.type, str(layer.output_shape), layer.params)
            for layer in summary.layers
        ]
        self.table.setRowCount(len(rows) + 1)
        for r, (name, kind, shape, params) in enumerate(rows):
            self._set_row(r, (name, kind, shape, f"{params:,}"))
        self._set_row(len(rows), ("Total", "", "", f"{summary.total_params:,}"), bold=True)
        frozen = summary.total_params - summary.trainable_params
        self.note.setText(
            f"Input {summary.input_shape}: {len(rows)} layers, "
            f"{summary.trainable_params:,} trainable parameters"
            + (f", {frozen:,} frozen" if frozen else "")
        )

    def _set_row(self, row: int, cells: tuple[str, str, str, str], bold: bool = False) -> None:
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if col == 3:  # numbers line up on the right
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if bold:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            self.table.setItem(row, col, item)

    def rows(self) -> list[tuple[str, str, str, str]]:
        """The table's text, row by row (the totals row last)."""
        return [
            tuple(self.table.item(r, c).text() for c in range(len(HEADERS)))
            for r in range(self.table.rowCount())
        ]
