"""Export of a sequence (Qt only): COCO with track ids + frame images, and per-frame PNG masks.

The dialog exports a :class:`~sam2_annotator.app.sequence.SequenceSnapshot` taken when it opens,
through :func:`~sam2_annotator.app.sequence_export.export_sequence` on a background job
(:func:`~.jobs.start_job`) with progress and Cancel; the window keeps working meanwhile.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from sam2_annotator.app.sequence import SequenceSnapshot
from sam2_annotator.app.sequence_export import (
    SequenceExportOptions,
    SequenceExportSummary,
    export_sequence,
)
from sam2_annotator.engine.video_io import open_source
from sam2_annotator.errors import OperationCancelled, UserError
from sam2_annotator.gui.jobs import Job, start_job

log = logging.getLogger(__name__)


def default_export_folder(source: Path) -> Path:
    """``clip.mp4`` -> ``clip_export`` beside it (a frame folder: beside the folder)."""
    return source.with_name(f"{source.stem if source.is_file() else source.name}_export")


class SequenceExportDialog(QDialog):
    """See the module docstring; :attr:`exported` carries each completed export's summary."""

    exported = Signal(object)

    def __init__(self, parent: QWidget | None, snapshot: SequenceSnapshot, source: Path) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export sequence")
        self.setMinimumWidth(520)
        self._snapshot = snapshot
        self._source = source
        self._job: Job | None = None
        self.last_summary: SequenceExportSummary | None = None
        self.last_error: BaseException | None = None

        self.folder_edit = QLineEdit(str(default_export_folder(source)))
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self.browse)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(self.browse_button)
        self.coco_box = QCheckBox("COCO JSON (annotations.json, track_id kept) + frame images")
        self.coco_box.setChecked(True)
        self.masks_box = QCheckBox("PNG masks per frame (masks/NNNNN.png, pixel = track id)")
        self.masks_box.setChecked(True)
        self.format_box = QComboBox()
        self.format_box.addItem("JPEG (quality 95)", "jpg")
        self.format_box.addItem("PNG (lossless)", "png")
        form = QFormLayout()
        form.addRow("Folder:", row)
        form.addRow("", self.coco_box)
        form.addRow("Frame images:", self.format_box)
        form.addRow("", self.masks_box)
        frames = len(snapshot.masks)
        self.summary_label = QLabel(
            f"{frames} frames with masks, {len(snapshot.objects)} objects, from "
            f"{snapshot.source_name}."
        )
        self.progress_bar = QProgressBar()
        self.progress_bar.setVisible(False)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_export)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.export_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addLayout(buttons)

    def options(self) -> SequenceExportOptions:
        return SequenceExportOptions(
            Path(self.folder_edit.text().strip()).expanduser(),
            coco=self.coco_box.isChecked(),
            masks=self.masks_box.isChecked(),
            image_format=self.format_box.currentData(),
        )

    def browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Export into folder", self.folder_edit.text()
        )
        if folder:
            self.folder_edit.setText(folder)

    def is_busy(self) -> bool:
        return self._job is not None

    def start_export(self) -> Job | None:
        if self._job is not None:
            return None
        options, snapshot, source_path = self.options(), self._snapshot, self._source
        if not str(options.folder).strip():
            self.status_label.setText("Choose a folder.")
            return None

        def work(progress, cancelled) -> SequenceExportSummary:
            source = open_source(source_path)  # the job's own reader: sequential, no seeking
            try:
                return export_sequence(snapshot, source, source_path, options, progress, cancelled)
            finally:
                source.close()

        job = start_job(work, parent=self)
        job.progress.connect(self._progress)
        job.returned.connect(self._done)
        job.errored.connect(self._failed)
        job.finished.connect(self._finished)
        self._job = job
        self.progress_bar.setVisible(True)
        self.progress_bar.setValue(0)
        self.status_label.setText("Exporting…")
        self._set_busy(True)
        return job

    def cancel_export(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.status_label.setText("Cancelling…")

    def _set_busy(self, busy: bool) -> None:
        self.export_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        for widget in (self.folder_edit, self.browse_button, self.coco_box, self.masks_box,
                       self.format_box):  # fmt: skip
            widget.setEnabled(not busy)

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
        self.status_label.setText(f"Exporting… {done} of {total}: {message}")

    def _done(self, summary: SequenceExportSummary) -> None:
        self.last_summary, self.last_error = summary, None
        self.status_label.setText(summary.line())
        self.exported.emit(summary)

    def _failed(self, exc: BaseException) -> None:
        self.last_error = exc
        self.progress_bar.setVisible(False)
        if isinstance(exc, OperationCancelled):
            self.status_label.setText(f"{exc}; the files written so far are kept.")
        elif isinstance(exc, UserError):
            self.status_label.setText(str(exc))
        else:  # a bug: the job logged the traceback
            self.status_label.setText(f"The export failed: {type(exc).__name__}: {exc}")

    def _finished(self) -> None:
        self._job = None
        self._set_busy(False)

    def done(self, result: int) -> None:
        if self._job is not None:
            self._job.cancel()
        super().done(result)
