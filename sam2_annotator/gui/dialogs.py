"""Dialogs: the label chooser, settings, the first-run model setup, and the non-modal error box."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sam2_annotator.app import model_setup
from sam2_annotator.engine.providers import available_providers, parse_provider_list
from sam2_annotator.errors import UserError
from sam2_annotator.gui.annotation_list import swatch
from sam2_annotator.gui.jobs import Job, start_job
from sam2_annotator.gui.settings import SEGMENTATION_FORMATS, AppSettings

log = logging.getLogger(__name__)

NEW_ROLE = Qt.ItemDataRole.UserRole + 10
NAME_ROLE = Qt.ItemDataRole.UserRole + 11


# --------------------------------------------------------------------------- label chooser


class LabelDialog(QDialog):
    """Pick a category by typing: the list filters as you type (prefix matches first); when the
    text names no category, a "new category" row offers to create it. Enter takes the
    highlighted row; Up/Down move the highlight without leaving the text field."""

    def __init__(
        self,
        parent: QWidget | None,
        categories: Sequence[tuple[str, tuple[int, int, int] | None]],
        preselect: str = "",
        title: str = "Label",
    ) -> None:
        super().__init__(parent)
        self.setObjectName("labelDialog")
        self.setWindowTitle(title)
        self._categories = list(categories)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("type to filter, or a new category name")
        self.list = QListWidget()
        self.list.setMinimumHeight(180)
        layout = QVBoxLayout(self)
        layout.addWidget(self.edit)
        layout.addWidget(self.list)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept_current)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.edit.textChanged.connect(self._filter)
        self.edit.returnPressed.connect(self._accept_current)
        self.edit.installEventFilter(self)
        self.list.itemActivated.connect(lambda _item: self._accept_current())
        self._chosen = ""
        self._filter("")
        if preselect:
            self._select_name(preselect)
        self.edit.setFocus()

    def chosen_name(self) -> str:
        """The category name picked (an existing name, or a new one)."""
        return self._chosen

    def is_new(self) -> bool:
        wanted = self._chosen.casefold()
        return bool(self._chosen) and all(n.casefold() != wanted for n, _c in self._categories)

    def visible_names(self) -> list[str]:
        return [str(self.list.item(i).data(NAME_ROLE)) for i in range(self.list.count())]

    def _filter(self, text: str) -> None:
        needle = text.strip().casefold()
        self.list.clear()
        matches = [(name, color) for name, color in self._categories if needle in name.casefold()]
        matches.sort(key=lambda nc: not nc[0].casefold().startswith(needle))
        for name, color in matches:
            item = QListWidgetItem(name)
            item.setData(NAME_ROLE, name)
            if color is not None:
                item.setIcon(swatch(color))
            self.list.addItem(item)
        if needle and all(name.casefold() != needle for name, _c in self._categories):
            item = QListWidgetItem(f"+ new category “{text.strip()}”")
            item.setData(NAME_ROLE, text.strip())
            item.setData(NEW_ROLE, True)
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def _select_name(self, name: str) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(NAME_ROLE) == name:
                self.list.setCurrentRow(row)
                return

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.edit and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            step = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1}.get(Qt.Key(event.key()))
            if step is not None and self.list.count():
                row = min(max(self.list.currentRow() + step, 0), self.list.count() - 1)
                self.list.setCurrentRow(row)
                return True
        return super().eventFilter(watched, event)

    def _accept_current(self) -> None:
        item = self.list.currentItem()
        name = str(item.data(NAME_ROLE)) if item is not None else self.edit.text().strip()
        if not name:
            return
        self._chosen = name
        self.accept()


# --------------------------------------------------------------------------- settings


class SettingsDialog(QDialog):
    """Edits a copy of :class:`AppSettings`; :meth:`result_settings` returns it."""

    def __init__(self, parent: QWidget | None, settings: AppSettings) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._settings = settings
        form = QFormLayout()

        self.model_dir = QLineEdit(settings.model_dir)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.model_dir)
        row.addWidget(browse)
        form.addRow("Model folder", row)

        self.providers = QLineEdit(settings.providers)
        self.providers.setToolTip(
            "Execution providers, best first, e.g. 'cuda, cpu' or 'auto'. This build offers: "
            + ", ".join(available_providers())
        )
        form.addRow("Providers", self.providers)

        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("automatic")
        self.threads.setValue(settings.threads)
        form.addRow("CPU threads", self.threads)

        self.prefetch = QSpinBox()
        self.prefetch.setRange(0, 16)
        self.prefetch.setValue(settings.prefetch)
        self.prefetch.setToolTip("How many of the next images to encode ahead of time")
        form.addRow("Prefetch images", self.prefetch)

        self.cache_mb = QSpinBox()
        self.cache_mb.setRange(0, 65536)
        self.cache_mb.setSuffix(" MiB")
        self.cache_mb.setValue(settings.cache_mb)
        self.cache_mb.setToolTip("Memory for image embeddings (about 16 MiB per image)")
        form.addRow("Embedding memory", self.cache_mb)

        self.disk_cache = QCheckBox("Keep embeddings on disk (faster reopening)")
        self.disk_cache.setChecked(settings.disk_cache)
        form.addRow("", self.disk_cache)

        self.mask_opacity = _opacity_box(settings.mask_opacity)
        form.addRow("Current mask opacity", self.mask_opacity)
        self.annotation_opacity = _opacity_box(settings.annotation_opacity)
        form.addRow("Annotation opacity", self.annotation_opacity)

        self.segmentation = QComboBox()
        self.segmentation.addItems(list(SEGMENTATION_FORMATS))
        self.segmentation.setCurrentText(settings.export_segmentation)
        self.segmentation.setToolTip(
            "COCO export: polygons (masks with holes stay RLE) or RLE for every mask"
        )
        form.addRow("Export segmentation", self.segmentation)
        self.labels = QPlainTextEdit("\n".join(settings.labels))
        self.labels.setPlaceholderText("one category per line, added to every project opened")
        self.labels.setFixedHeight(80)
        form.addRow("Predefined labels", self.labels)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._check_and_accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder", self.model_dir.text())
        if folder:
            self.model_dir.setText(folder)

    def _check_and_accept(self) -> None:
        try:
            parse_provider_list(self.providers.text() or "auto")
        except UserError as exc:
            QMessageBox.warning(self, "Settings", str(exc))
            return
        self.accept()

    def result_settings(self) -> AppSettings:
        settings = replace(
            self._settings,
            model_dir=self.model_dir.text().strip(),
            providers=self.providers.text().strip() or "auto",
            threads=self.threads.value(),
            prefetch=self.prefetch.value(),
            cache_mb=self.cache_mb.value(),
            disk_cache=self.disk_cache.isChecked(),
            mask_opacity=self.mask_opacity.value(),
            annotation_opacity=self.annotation_opacity.value(),
            export_segmentation=self.segmentation.currentText(),
            labels=[n.strip() for n in self.labels.toPlainText().splitlines() if n.strip()],
        )
        settings.clamp()
        return settings


def _opacity_box(value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(0.0, 1.0)
    box.setSingleStep(0.05)
    box.setValue(value)
    return box


# --------------------------------------------------------------------------- first run


class _DownloadSignals(QObject):
    """Lives in the GUI thread; emitted from the download thread (so delivery is queued)."""

    progress = Signal(object, str)  # fraction | None, text
    finished = Signal(object)  # Path
    failed = Signal(str)


def choose_pair(parent: QWidget | None, folder: Path, labels: list[str]) -> int | None:
    """Ask which of ``folder``'s encoder/decoder pairs to use; the index, or None if cancelled.
    A module function so that tests can replace it."""
    item, ok = QInputDialog.getItem(
        parent,
        "Choose the model files",
        f"{folder} holds several encoder/decoder pairs. Use:",
        labels,
        0,
        False,
    )
    return labels.index(item) if ok and item in labels else None


class FirstRunDialog(QDialog):
    """No model yet: explain, then download one, use a folder, install from files (offline),
    export one, or go on without.

    A folder with one encoder/decoder pair is used in place. A folder with several pairs (ONNX
    Runtime's export: single-mask and multimask decoders) asks which; that pair, a model zip or
    picked .onnx files are installed into the models folder by :func:`model_setup.
    install_from_files` on a background job. After ``accept()``, :attr:`model_folder` is the
    chosen model (``None`` = without AI).
    """

    def __init__(self, parent: QWidget | None = None, reason: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("firstRunDialog")
        self.setWindowTitle("Set up a model")
        self.model_folder: Path | None = None
        self._cancel: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._job: Job | None = None
        self._signals = _DownloadSignals(self)
        self._signals.progress.connect(self._on_progress)
        self._signals.finished.connect(self._on_downloaded)
        self._signals.failed.connect(self._on_failed)

        intro = QLabel(
            "<b>sam2-annotator needs a SAM2 model to turn clicks into masks.</b><br>"
            "Models run locally with ONNX Runtime; nothing is uploaded. "
            + (f"<br><i>{reason}</i>" if reason else "")
        )
        intro.setWordWrap(True)

        download_box = QGroupBox("Download a model")
        self.choices = QComboBox()
        self._choices = model_setup.catalog_choices()
        for choice in self._choices:
            self.choices.addItem(choice.label, choice.name)
            self.choices.setItemData(
                self.choices.count() - 1, choice.details, Qt.ItemDataRole.ToolTipRole
            )
        self.choice_details = QLabel("")  # the decoder's behaviour and the download's check
        self.choice_details.setObjectName("choiceDetails")
        self.choice_details.setWordWrap(True)
        self.choices.currentIndexChanged.connect(self._show_choice_details)
        self._show_choice_details(self.choices.currentIndex())
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self._start_download)
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._cancel_download)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress_text = QLabel("")
        self.progress_text.setWordWrap(True)  # a failed download's advice is one long line
        download_layout = QVBoxLayout(download_box)
        row = QHBoxLayout()
        row.addWidget(self.choices, 1)
        row.addWidget(self.download_button)
        row.addWidget(self.cancel_button)
        download_layout.addLayout(row)
        download_layout.addWidget(self.choice_details)
        download_layout.addWidget(self.progress)
        download_layout.addWidget(self.progress_text)
        download_layout.addWidget(QLabel(f"Installed into {model_setup.models_folder()}"))

        folder_box = QGroupBox("Use model files on this computer (e.g. copied from a USB stick)")
        self.folder_button = QPushButton("Choose a folder with *encoder*.onnx and *decoder*.onnx…")
        self.folder_button.clicked.connect(self._choose_folder)
        self.install_button = QPushButton("Install from a file…")
        self.install_button.setObjectName("installFromFile")
        self.install_button.setToolTip(
            "A model .zip (as downloaded on another machine), or the encoder and decoder .onnx "
            "files (select both); they are checked and copied into the models folder"
        )
        self.install_button.clicked.connect(self._choose_files)
        self.install_status = QLabel("")
        self.install_status.setObjectName("installStatus")
        self.install_status.setWordWrap(True)
        folder_layout = QVBoxLayout(folder_box)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_button, 1)
        folder_row.addWidget(self.install_button)
        folder_layout.addLayout(folder_row)
        folder_layout.addWidget(self.install_status)

        export_box = QGroupBox("Export from an official checkpoint (needs torch and sam2)")
        command = QPlainTextEdit(model_setup.export_command())
        command.setReadOnly(True)
        command.setMaximumHeight(60)
        copy = QPushButton("Copy command")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(command.toPlainText()))
        export_layout = QVBoxLayout(export_box)
        export_layout.addWidget(command)
        export_layout.addWidget(copy, 0, Qt.AlignmentFlag.AlignLeft)

        without = QPushButton("Continue without AI")
        without.setObjectName("withoutAi")
        without.clicked.connect(self._without_ai)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(download_box)
        layout.addWidget(folder_box)
        layout.addWidget(export_box)
        layout.addWidget(without, 0, Qt.AlignmentFlag.AlignRight)
        self.resize(620, 0)

    # -- choices

    def _show_choice_details(self, index: int) -> None:
        self.choice_details.setText(self._choices[index].details if index >= 0 else "")

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder")
        if folder:
            self.use_folder(Path(folder))

    def _choose_files(self) -> None:
        files, _filter = QFileDialog.getOpenFileNames(
            self, "Install a model from a file", "", model_setup.MODEL_FILE_FILTER
        )
        if files:
            self.install_files([Path(f) for f in files])

    def install_files(self, paths: list[Path]) -> bool:
        """Install a zip, a pair of .onnx files, or one .onnx and its partner (asking which
        when its folder holds several); False when nothing was started."""
        if len(paths) == 1 and paths[0].suffix.lower() == ".onnx":
            pairs = model_setup.pairs_with(paths[0])
            if len(pairs) > 1:
                pair = self._ask_pair(paths[0].parent, pairs)
                if pair is None:
                    return False
                paths = [pair.encoder, pair.decoder]
        return self._start_install(paths)

    def _ask_pair(
        self, folder: Path, pairs: list[model_setup.PairChoice]
    ) -> model_setup.PairChoice | None:
        index = choose_pair(self, folder, [p.label for p in pairs])
        return None if index is None else pairs[index]

    def _start_install(self, paths: list[Path]) -> bool:
        if self._job is not None:
            return False
        self._set_installing(True)
        self.install_status.setText(f"installing {', '.join(p.name for p in paths)}…")

        def work(progress: Callable[[int, int, str], None], cancelled: Callable[[], bool]) -> Any:
            return model_setup.install_from_files(paths, progress, cancelled)

        job = start_job(work, parent=self)
        job.progress.connect(self._on_install_progress)
        job.returned.connect(self._on_installed)
        job.errored.connect(self._on_install_failed)
        job.finished.connect(self._on_install_finished)
        self._job = job
        return True

    def _on_install_progress(self, done: int, total: int, text: str) -> None:
        percent = f" ({100 * done // total} %)" if total > 0 else ""
        self.install_status.setText(f"{text}{percent}")

    def _on_installed(self, installed: model_setup.InstalledModel) -> None:
        self.install_status.setText(f"installed {installed.folder.name}: {installed.note}")
        if not installed.verified:
            QMessageBox.information(
                self,
                "Model installed (unverified)",
                f"{installed.folder.name} was installed in {installed.folder}.\n\n"
                f"{installed.note}.\n\nUse it only if you trust where the files came from.",
            )
        self.model_folder = installed.folder
        self.accept()

    def _on_install_failed(self, exc: BaseException) -> None:
        text = str(exc) if isinstance(exc, UserError) else f"{exc!r} (see the log file)"
        self.install_status.setText(f"not installed: {text}")

    def _on_install_finished(self) -> None:
        self._job = None
        self._set_installing(False)

    def _set_installing(self, busy: bool) -> None:
        for button in (self.install_button, self.folder_button, self.download_button):
            button.setEnabled(not busy)

    def use_folder(self, folder: Path) -> bool:
        """Use a model folder in place; a folder with several pairs asks which and installs
        that pair (returns True once started)."""
        pairs = model_setup.model_pairs(folder)
        if len(pairs) > 1:
            pair = self._ask_pair(folder, pairs)
            return pair is not None and self._start_install([pair.encoder, pair.decoder])
        problem = model_setup.usable_model_folder(folder)
        if problem is not None:
            QMessageBox.warning(self, "Not a model folder", problem)
            return False
        self.model_folder = folder
        self.accept()
        return True

    def _without_ai(self) -> None:
        self.model_folder = None
        self.accept()

    # -- download

    def _start_download(self) -> None:
        name = str(self.choices.currentData())
        self._cancel = threading.Event()
        self.download_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.progress_text.setText(f"downloading {name}…")
        signals, cancel = self._signals, self._cancel

        def run() -> None:
            try:
                folder = model_setup.download(name, signals.progress.emit, cancel)
            except UserError as exc:
                signals.failed.emit(str(exc))
                return
            signals.finished.emit(folder)

        self._thread = threading.Thread(target=run, name="model-download", daemon=True)
        self._thread.start()

    def _cancel_download(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.progress_text.setText("cancelling…")

    def _on_progress(self, fraction: float | None, text: str) -> None:
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        self.progress_text.setText(text)

    def _on_downloaded(self, folder: Path) -> None:
        self._download_done()
        self.model_folder = folder
        self.accept()

    def _on_failed(self, message: str) -> None:
        self._download_done()
        self.progress_text.setText(message)

    def _download_done(self) -> None:
        self.download_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setVisible(False)
        self._cancel = None

    def reject(self) -> None:
        self._cancel_download()
        if self._job is not None:
            self._job.cancel()
        super().reject()


# --------------------------------------------------------------------------- errors


class ErrorBox(QMessageBox):
    """One non-modal warning box, reused: a new error replaces the text instead of stacking
    windows, and nothing blocks the event loop."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("errorBox")
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("sam2-annotator")
        self.setModal(False)
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.setStandardButtons(QMessageBox.StandardButton.Close)

    def show_message(self, text: str, details: str = "") -> None:
        self.setText(text)
        self.setDetailedText(details)
        self.show()
        self.raise_()


F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(method: F) -> F:
    """Show a :class:`UserError` raised by a user action in the error box instead of crashing."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except UserError as exc:
            log.warning("%s: %s", method.__name__, exc)
            self.show_error(str(exc))
            return None

    return wrapper  # type: ignore[return-value]
