"""The desktop app's entry point.

The full window (docks, live training, views) arrives with the app issue; until then
this opens a plain window that shows what is loaded, so ``nnviz`` already does
something useful and ``--screenshot`` works for CI and the README.
"""

from __future__ import annotations

import sys

from nnviz.about import about_text


def _default_model() -> str:
    from importlib.resources import files

    sample = files("nnviz.sample_models") / "lenet.nnviz"
    return str(sample) if sample.is_file() else "lenet"


def run_app(model: str | None = None, screenshot: str | None = None) -> int:
    """Open the main window; with ``screenshot``, render it to that PNG and exit."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import (
        QApplication,
        QLabel,
        QMainWindow,
        QMessageBox,
        QPlainTextEdit,
        QVBoxLayout,
        QWidget,
    )

    from nnviz.core.inspect import summarize
    from nnviz.core.modelfile import load_model

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("nnviz")
    window = QMainWindow()
    loaded = load_model(model or _default_model())
    window.setWindowTitle(f"nnviz — {loaded.display_name}")
    central = QWidget()
    layout = QVBoxLayout(central)
    layout.addWidget(QLabel(f"<h2>{loaded.display_name}</h2>"))
    table = QPlainTextEdit(
        summarize(loaded.program or loaded.module, loaded.input_shape).format_table()
    )
    table.setReadOnly(True)
    table.setStyleSheet("font-family: monospace;")
    layout.addWidget(table)
    note = QLabel(about_text())
    note.setWordWrap(True)
    layout.addWidget(note)
    window.setCentralWidget(central)
    help_menu = window.menuBar().addMenu("&Help")
    help_menu.addAction(
        "About nnviz", lambda: QMessageBox.about(window, "About nnviz", about_text())
    )
    window.resize(1600, 1000)
    window.show()
    if screenshot:

        def grab() -> None:
            if not window.grab().save(screenshot):
                print(f"nnviz: error: cannot write {screenshot}", file=sys.stderr)
                app.exit(1)
            else:
                app.exit(0)

        QTimer.singleShot(300, grab)
    return app.exec()
