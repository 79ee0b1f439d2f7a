"""File → Export…: the five export kinds, run as a background job with progress and Cancel.

The dialog works on a :meth:`~sam2_annotator.annotations.model.Project.snapshot` taken when it
opens (cheap; the records are frozen), so the export and the list of masks with holes describe
one state of the project even while the window keeps working. Everything slow - scanning the
masks for holes, writing the export - runs through :func:`~sam2_annotator.gui.jobs.start_job`
on :func:`~sam2_annotator.annotations.export_jobs.export_project` and
:func:`~sam2_annotator.annotations.export_jobs.holes_report`; the GUI thread only shows progress.

A COCO polygon export lists the annotations whose masks have holes (polygons cannot hold them)
and asks: keep those as RLE (exact; the file then mixes polygons and RLE, which every COCO loader
reads) or fill their holes (polygons only). Nothing is mixed in silently.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from sam2_annotator.annotations.export_jobs import (
    EXPORT_KINDS,
    ExportKind,
    ExportOptions,
    ExportSummary,
    HoleEntry,
    default_target,
    export_project,
    holes_report,
)
from sam2_annotator.annotations.model import Project
from sam2_annotator.errors import OperationCancelled, UserError
from sam2_annotator.gui.jobs import Job, start_job

log = logging.getLogger(__name__)

#: Warnings listed in the dialog after an export (all of them are in the log).
WARNINGS_SHOWN = 5


class ExportDialog(QDialog):
    """Choose a format and a destination, then export with progress (see the module docstring).

    ``exported`` carries the :class:`~sam2_annotator.annotations.export_jobs.ExportSummary` of
    each export that completed (for the window's status bar).
    """

    exported = Signal(object)

    def __init__(
        self,
        parent: QWidget | None,
        project: Project,
        default_dir: str | os.PathLike[str],
        *,
        name: str = "project",
        protected: tuple[Path, ...] = (),
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.setMinimumWidth(560)
        self._project = project.snapshot()
        self._protected = tuple(Path(p) for p in protected)
        self._targets: dict[str, str] = {
            kind: str(default_target(kind, default_dir, name)) for kind in EXPORT_KINDS
        }
        self._holes: list[HoleEntry] | None = None
        self._holes_job: Job | None = None
        self._export_job: Job | None = None
        self.last_summary: ExportSummary | None = None
        self.last_error: BaseException | None = None

        self.format_box = QComboBox()
        for kind, info in EXPORT_KINDS.items():
            self.format_box.addItem(info.label, kind)
        self.target_edit = QLineEdit()
        self.browse_button = QPushButton("Browse…")
        target_row = QHBoxLayout()
        target_row.addWidget(self.target_edit, 1)
        target_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Format:", self.format_box)
        self.target_label = QLabel("File:")
        form.addRow(self.target_label, target_row)

        self.holes_group = QGroupBox("Masks with holes")
        self.holes_status = QLabel()
        self.holes_status.setWordWrap(True)
        self.holes_list = QListWidget()
        self.keep_rle = QRadioButton("Keep these as RLE (exact masks; polygons for the others)")
        self.fill_holes = QRadioButton("Fill their holes (polygons only; the holes are lost)")
        self.keep_rle.setChecked(True)
        self._holes_choice = QButtonGroup(self)
        self._holes_choice.addButton(self.keep_rle)
        self._holes_choice.addButton(self.fill_holes)
        holes_layout = QVBoxLayout(self.holes_group)
        holes_layout.addWidget(self.holes_status)
        holes_layout.addWidget(self.holes_list)
        holes_layout.addWidget(self.keep_rle)
        holes_layout.addWidget(self.fill_holes)

        self.progress_bar = QProgressBar()
        self.progress_bar.setVisible(False)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.warnings_label = QLabel()
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setVisible(False)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c62828;")
        self.error_label.setVisible(False)

        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.holes_group, 1)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.warnings_label)
        layout.addWidget(self.error_label)
        layout.addLayout(buttons)

        self.format_box.currentIndexChanged.connect(self._format_changed)
        self.target_edit.textEdited.connect(self._target_edited)
        self.browse_button.clicked.connect(self.browse)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button.clicked.connect(self.cancel_export)
        self.close_button.clicked.connect(self.reject)
        self._format_changed()

    # ------------------------------------------------------------------ state

    def kind(self) -> ExportKind:
        return self.format_box.currentData()

    def set_kind(self, kind: ExportKind) -> None:
        self.format_box.setCurrentIndex(self.format_box.findData(kind))

    def target(self) -> Path:
        return Path(self.target_edit.text().strip()).expanduser()

    def set_target(self, path: str | os.PathLike[str]) -> None:
        self.target_edit.setText(str(path))
        self._targets[self.kind()] = str(path)

    def holes_choice(self) -> str:
        return "fill" if self.fill_holes.isChecked() else "rle"

    def holes(self) -> list[HoleEntry] | None:
        """The annotations with holes once scanned (``None`` before)."""
        return self._holes

    def is_busy(self) -> bool:
        return self._export_job is not None

    def _format_changed(self) -> None:
        kind = self.kind()
        info = EXPORT_KINDS[kind]
        self.target_label.setText("File:" if info.is_file else "Folder:")
        self.target_edit.setText(self._targets[kind])
        polygon = kind == "coco_polygon"
        self.holes_group.setVisible(polygon)
        if polygon and self._holes is None and self._holes_job is None:
            self._scan_holes()
        self._update_buttons()

    def _target_edited(self, text: str) -> None:
        self._targets[self.kind()] = text

    def _update_buttons(self) -> None:
        busy = self._export_job is not None
        scanning = self.kind() == "coco_polygon" and self._holes is None
        self.export_button.setEnabled(not busy and not scanning)
        self.cancel_button.setEnabled(busy)
        for widget in (self.format_box, self.target_edit, self.browse_button, self.holes_group):
            widget.setEnabled(not busy)

    def browse(self) -> None:
        info = EXPORT_KINDS[self.kind()]
        current = self.target()
        if info.is_file:
            path, _filter = QFileDialog.getSaveFileName(
                self, "Export COCO JSON", str(current), "COCO JSON (*.json);;All files (*)"
            )
        else:
            start = current if current.is_dir() else current.parent
            path = QFileDialog.getExistingDirectory(self, "Export into folder", str(start))
        if path:
            self.set_target(path)

    # ------------------------------------------------------------------ holes

    def _scan_holes(self) -> None:
        self.holes_status.setText("Looking for masks with holes…")
        project = self._project
        job = start_job(
            lambda progress, cancelled: holes_report(
                project, progress=progress, cancelled=cancelled
            ),
            parent=self,
        )
        job.progress.connect(self._holes_progress)
        job.returned.connect(self._holes_found)
        job.errored.connect(self._holes_failed)
        self._holes_job = job

    def _holes_progress(self, done: int, total: int, _message: str) -> None:
        self.holes_status.setText(f"Looking for masks with holes… {done} of {total}")

    def _holes_found(self, entries: list[HoleEntry]) -> None:
        self._holes_job = None
        self._holes = entries
        self.holes_list.clear()
        for entry in entries:
            self.holes_list.addItem(
                f"annotation {entry.annotation_id} in {entry.file_name}: "
                f"{entry.holes} hole{'s' if entry.holes != 1 else ''}"
            )
        has_holes = bool(entries)
        if has_holes:
            self.holes_status.setText(
                f"{len(entries)} annotation{'s have' if len(entries) != 1 else ' has'} holes, "
                "which COCO polygons cannot express:"
            )
        else:
            self.holes_status.setText("No mask has holes: every annotation is written as polygons.")
        for widget in (self.holes_list, self.keep_rle, self.fill_holes):
            widget.setVisible(has_holes)
        self._update_buttons()

    def _holes_failed(self, exc: BaseException) -> None:
        self._holes_job = None
        if isinstance(exc, OperationCancelled):
            return
        self._holes = []
        self.holes_status.setText(f"Could not check the masks for holes: {exc}")
        self._update_buttons()

    # ------------------------------------------------------------------ export

    def start_export(self) -> Job | None:
        """Start the export as chosen; returns its job (``None`` when refused)."""
        if self._export_job is not None:
            return None
        text = self.target_edit.text().strip()
        if not text:
            self._show_error("Choose where to export to.")
            return None
        kind, target = self.kind(), self.target()
        options = ExportOptions(holes=self.holes_choice(), protected=self._protected)
        project = self._project
        self.error_label.setVisible(False)
        self.warnings_label.setVisible(False)
        self.status_label.setText(f"Exporting to {target}…")
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setVisible(True)

        def work(progress, cancelled):
            return export_project(
                project, target, kind, options=options, progress=progress, cancelled=cancelled
            )

        job = start_job(work, parent=self)
        job.progress.connect(self._export_progress)
        job.returned.connect(self._export_done)
        job.errored.connect(self._export_failed)
        job.finished.connect(self._export_finished)
        self._export_job = job
        self._update_buttons()
        return job

    def cancel_export(self) -> None:
        if self._export_job is not None:
            self._export_job.cancel()
            self.status_label.setText("Cancelling…")

    def _export_progress(self, done: int, total: int, message: str) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
        self.status_label.setText(f"Exporting… {done} of {total}: {message}")

    def _export_done(self, summary: ExportSummary) -> None:
        self.last_summary = summary
        self.last_error = None
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1)
        self.status_label.setText(summary.line())
        if summary.warnings:
            shown = summary.warnings[:WARNINGS_SHOWN]
            more = len(summary.warnings) - len(shown)
            self.warnings_label.setText(
                "\n".join(shown) + (f"\n… and {more} more (in the log)" if more else "")
            )
            self.warnings_label.setVisible(True)
        self.exported.emit(summary)

    def _export_failed(self, exc: BaseException) -> None:
        self.last_error = exc
        self.progress_bar.setVisible(False)
        if isinstance(exc, OperationCancelled):
            self.status_label.setText("Export cancelled; nothing was written.")
            return
        self.status_label.setText("")
        if isinstance(exc, UserError):
            self._show_error(str(exc))
        else:  # a bug: the job logged the traceback
            self._show_error(f"The export failed: {type(exc).__name__}: {exc}")

    def _export_finished(self) -> None:
        self._export_job = None
        self._update_buttons()

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(True)

    # ------------------------------------------------------------------ closing

    def done(self, result: int) -> None:
        """Closing cancels what still runs (the job ends on its own; nothing is left behind)."""
        for job in (self._export_job, self._holes_job):
            if job is not None:
                job.cancel()
        super().done(result)


def run_export_dialog(
    parent: QWidget | None,
    project: Project,
    default_dir: str | os.PathLike[str],
    *,
    name: str = "project",
    protected: tuple[Path, ...] = (),
) -> ExportDialog:
    """File → Export…: open the dialog (window-modal, non-blocking) and return it.

    ``default_dir`` is where the default targets go (the project's folder), named
    ``<name>_coco_rle.json``, ``<name>_yolo`` ...; ``protected`` are files no export may write
    (the project file, the COCO file it was imported from). The dialog deletes itself when
    closed; connect to :attr:`ExportDialog.exported` for the results.
    """
    dialog = ExportDialog(parent, project, default_dir, name=name, protected=protected)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
