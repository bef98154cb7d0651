"""Models and data the user opens, creates and saves, and the dialogs that go with them.

Every failure becomes a message in the window (the Session's error event); the app
keeps running. Saves go through the core's atomic checkpoint writer.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressDialog

from nnviz.core.checkpoint import save_checkpoint
from nnviz.core.data import load_splits
from nnviz.core.errors import DownloadCancelled, NnvizError
from nnviz.core.modelfile import load_model
from nnviz.core.models import PRESETS, ArchSpec, build_model

if TYPE_CHECKING:
    from nnviz.qt.main_window import MainWindow

MODEL_FILTER = "Models (*.nnviz *.pt2 *.pt *.pth *.ts *.zip);;All files (*)"
MAX_RECENT = 8


class Documents(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.session = window.session
        self._download: threading.Thread | None = None

    # ----- models ------------------------------------------------------------------------
    @staticmethod
    def preset_names() -> list[str]:
        return list(PRESETS)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open a model", "", MODEL_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> bool:
        """Open a model file; on failure show why and keep the current model."""
        if self.window.runner.active:
            self.window.show_error("Stop training before opening another model.")
            return False
        try:
            loaded = load_model(path)
        except NnvizError as exc:
            self.session.report_error(str(exc))
            return False
        except Exception as exc:  # noqa: BLE001 - any failure is a message, never a crash
            self.session.report_error(f"{Path(path).name}: cannot open: {exc}")
            return False
        self.session.set_model(loaded)
        self._remember(path)
        return True

    def new_from_preset(self, name: str) -> None:
        if self._busy():
            return
        self.session.set_model(load_model(name, seed=self.session.config.seed))

    def custom_architecture(self) -> None:
        from nnviz.qt.architecture_dialog import ArchitectureDialog

        if self._busy():
            return
        current = self.session.loaded.spec if self.session.loaded is not None else None
        dialog = ArchitectureDialog(current, self.window)
        if dialog.exec():
            self.use_spec(dialog.spec())

    def use_spec(self, spec: ArchSpec) -> None:
        from nnviz.core.modelfile import LoadedModel

        module = build_model(spec, seed=self.session.config.seed).eval()
        self.session.set_model(
            LoadedModel(
                module=module,
                kind="spec",
                path=None,
                spec=spec,
                input_shape=tuple(spec.input_shape),
            )
        )

    def reinitialise(self) -> None:
        loaded = self.session.loaded
        if loaded is None or loaded.spec is None or self._busy():
            return
        spec = loaded.spec
        self.use_spec(spec)
        self.session.set_dirty(True)

    def _busy(self) -> bool:
        if self.window.runner.active:
            self.window.show_error("Stop training first.")
            return True
        return False

    # ----- saving ------------------------------------------------------------------------
    def save(self) -> bool:
        path = self.session.path
        return self.save_to(path) if path is not None else self.save_as()

    def save_as(self) -> bool:
        loaded = self.session.loaded
        suggestion = f"{loaded.display_name.removesuffix('.nnviz')}.nnviz" if loaded else ""
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Save model", suggestion, "nnviz model (*.nnviz)"
        )
        if not path:
            return False
        if not path.endswith(".nnviz"):
            path += ".nnviz"
        return self.save_to(Path(path))

    def save_to(self, path: Path) -> bool:
        try:
            save_checkpoint(path, self.session.to_checkpoint())
        except NnvizError as exc:
            self.session.report_error(str(exc))
            return False
        self.session.path = path
        if self.session.loaded is not None:
            self.session.loaded.path = path
            self.session.loaded.kind = "nnviz"
        self.session.set_dirty(False)
        self.window.statusBar().showMessage(f"Saved {path}", 5000)
        self._remember(str(path))
        self.window.update_title()
        return True

    def ask_to_save(self) -> str:
        """'save', 'discard' or 'cancel' for an unsaved trained model."""
        buttons = (
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel
        )
        answer = QMessageBox.question(
            self.window,
            "Save the trained model?",
            "The model has changed since it was last saved. Save it before closing?",
            buttons,
        )
        return {
            QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard",
        }.get(answer, "cancel")

    # ----- recent files ------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        from nnviz.qt.main_window import app_settings

        value = app_settings().value("recent", [])
        return [str(v) for v in (value if isinstance(value, list) else [value]) if v]

    def _remember(self, path: str) -> None:
        from nnviz.qt.main_window import app_settings

        path = str(Path(path).resolve())
        files = [path] + [p for p in self.recent_files() if p != path]
        app_settings().setValue("recent", files[:MAX_RECENT])
        self.update_recent_menu()

    def update_recent_menu(self) -> None:
        menu = self.window.recent_menu
        menu.clear()
        files = self.recent_files()
        for path in files:
            menu.addAction(Path(path).name, lambda p=path: self.open_path(p)).setToolTip(path)
        menu.setEnabled(bool(files))

    # ----- data --------------------------------------------------------------------------
    def use_data(self, source: str) -> None:
        if self._busy():
            self.window.update_data_menu()
            return
        if source == "fashion-mnist":
            self._download_then_use(source)
            return
        try:
            data = load_splits(source, seed=self.session.config.seed)
        except NnvizError as exc:
            self.session.report_error(str(exc))
            self.window.update_data_menu()
            return
        self.session.set_data(data, source)

    def pick_data_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Folder of MNIST-format IDX files")
        if folder:
            self.use_data(folder)

    def _download_then_use(self, source: str) -> None:
        """Download in a plain thread; a progress dialog polls it and can cancel it."""
        cancel = threading.Event()
        progress = {"done": 0, "total": None, "result": None, "error": None}

        def work() -> None:
            try:
                progress["result"] = load_splits(
                    source,
                    seed=self.session.config.seed,
                    cancel=cancel,
                    progress=lambda done, total: progress.update(done=done, total=total),
                )
            except Exception as exc:  # noqa: BLE001 - shown to the user below
                progress["error"] = exc

        dialog = QProgressDialog(f"Downloading {source}…", "Cancel", 0, 100, self.window)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(300)
        dialog.canceled.connect(cancel.set)
        thread = threading.Thread(target=work, name="nnviz-download", daemon=True)
        self._download = thread
        timer = QTimer(dialog)

        def tick() -> None:
            total = progress["total"]
            if total:
                dialog.setValue(int(100 * progress["done"] / total))
            if thread.is_alive():
                return
            timer.stop()
            dialog.reset()
            self._download = None
            error = progress["error"]
            if isinstance(error, DownloadCancelled):
                self.window.statusBar().showMessage("Download cancelled", 5000)
            elif error is not None:
                self.session.report_error(str(error))
            else:
                self.session.set_data(progress["result"], source)
            self.window.update_data_menu()

        timer.timeout.connect(tick)
        thread.start()
        timer.start(50)
