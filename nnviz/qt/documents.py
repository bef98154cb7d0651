"""Models and data the user opens, creates and saves, and the dialogs that go with them.

Every failure becomes a message in the window (the Session's error event); the app
keeps running. Saves go through the core's atomic checkpoint writer. Nothing replaces
an unsaved trained model without asking first, a sample model (or any file the user
may not write) is never written over, and ``autosave`` keeps unsaved training in a
recovery file while the app runs.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QStandardPaths, Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressDialog

from nnviz.core.checkpoint import save_checkpoint
from nnviz.core.data import load_splits
from nnviz.core.errors import DownloadCancelled, NnvizError
from nnviz.core.modelfile import load_model
from nnviz.core.models import PRESETS, ArchSpec, build_model
from nnviz.core.places import is_read_only, is_sample
from nnviz.qt.autosave import Autosave

if TYPE_CHECKING:
    from nnviz.qt.main_window import MainWindow

MODEL_FILTER = "Models (*.nnviz *.pt2 *.pt *.pth *.ts *.zip);;All files (*)"
MAX_RECENT = 8
CLOSING = "Quit nnviz?"  # what the question about unsaved training is asked before, by default


class Documents(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.session = window.session
        self._download: threading.Thread | None = None
        self._about_to = CLOSING
        self.autosave = Autosave(window)
        self.session.model_loaded.connect(self._say_if_read_only)

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
        if not self.may_replace(f"Open {Path(path).name}?"):
            return False
        self.session.set_model(loaded)
        self._remember(path)
        return True

    def new_from_preset(self, name: str) -> None:
        if self._busy() or not self.may_replace(f"Start a new {name}?"):
            return
        self.session.set_model(load_model(name, seed=self.session.config.seed))

    def custom_architecture(self) -> None:
        from nnviz.qt.architecture_dialog import ArchitectureDialog

        if self._busy():
            return
        current = self.session.loaded.spec if self.session.loaded is not None else None
        dialog = ArchitectureDialog(current, self.window)
        if dialog.exec():
            spec = dialog.spec()
            if self.may_replace(f"Build the new architecture {spec.name}?"):
                self.use_spec(spec)

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
        if not self.may_replace(f"Reinitialise the weights of {loaded.display_name}?"):
            return
        spec = loaded.spec
        self.use_spec(spec)
        self.session.set_dirty(True)

    def _busy(self) -> bool:
        if self.window.runner.active:
            self.window.show_error("Stop training first.")
            return True
        return False

    def may_replace(self, what: str) -> bool:
        """Whether the current model may give way to what the user asked for (``what``,
        e.g. "Open x.nnviz?"): at once if it has no unsaved training, else as the user
        answers: Save (and go on only if the save worked), Discard, or Cancel."""
        if not (self.session.dirty and self.session.trainable):
            return True
        # Asked through ask_to_save, which takes no arguments: tests and the benchmark
        # replace it to answer without a dialog, for this question as for quitting.
        self._about_to = what
        try:
            answer = self.ask_to_save()
        finally:
            self._about_to = CLOSING
        if answer == "save":
            return self.save()
        return answer == "discard"

    # ----- saving ------------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        """True when Save must not write where the model came from (a sample, or a file
        the user may not write): Save becomes Save As."""
        path = self.session.path
        return path is not None and is_read_only(path)

    def title_note(self) -> str:
        """What the window title adds after the model's name ("" for most files)."""
        if not self.read_only:
            return ""
        return " (read-only sample)" if is_sample(self.session.path) else " (read-only)"

    def _say_if_read_only(self) -> None:
        if self.read_only:
            name = self.session.loaded.display_name
            kind = "sample" if is_sample(self.session.path) else "file"
            self.window.statusBar().showMessage(
                f"{name} is a read-only {kind}: Save asks where to keep your copy", 15000
            )

    def save(self) -> bool:
        path = self.session.path
        if path is None or self.read_only:
            return self.save_as()
        return self.save_to(path)

    def suggested_path(self) -> Path:
        """Where Save As proposes to save: the model's own file if the user may write it,
        else a file of the model's name in the user's documents folder."""
        path = self.session.path
        if path is not None and not is_read_only(path):
            return path
        loaded = self.session.loaded
        stem = loaded.display_name.removesuffix(".nnviz") if loaded is not None else "model"
        return documents_folder() / f"{stem}.nnviz"

    def save_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Save model", str(self.suggested_path()), "nnviz model (*.nnviz)"
        )
        if not path:
            return False
        if not path.endswith(".nnviz"):
            path += ".nnviz"
        return self.save_to(Path(path))

    def save_to(self, path: Path) -> bool:
        if is_read_only(path):
            where = "the sample models' folder" if is_sample(path) else "a read-only place"
            self.session.report_error(
                f"{path.name} was not saved: {path.parent} is {where}; "
                "choose another folder, such as your Documents"
            )
            return False
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
        """'save', 'discard' or 'cancel' for an unsaved trained model, asked before
        quitting, or before what ``may_replace`` is about to do."""
        buttons = (
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel
        )
        answer = QMessageBox.question(
            self.window,
            "Save the trained model?",
            f"{self._about_to} The trained model has unsaved changes.",
            buttons,
            QMessageBox.StandardButton.Save,
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


def documents_folder() -> Path:
    """The user's documents folder (their home folder where there is none); never the
    package's sample folder."""
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    folder = Path(location) if location else Path.home()
    if not folder.is_dir() or is_read_only(folder / "model.nnviz"):
        folder = Path.home()
    return folder
