"""File-menu commands of the window (Qt only): the open dialogs, recent projects, and export.

Kept beside the window so that the window itself is wiring; each command ends in the window's
:meth:`~.main_window.MainWindow.open_path` or in the export dialog.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from sam2_annotator.app.sequence_io import is_sequence_project, is_video_file, source_for_project
from sam2_annotator.app.workspace import Workspace
from sam2_annotator.engine.image_io import IMAGE_EXTENSIONS
from sam2_annotator.engine.providers import SessionConfig, parse_provider_list
from sam2_annotator.engine.video_io import VIDEO_EXTENSIONS
from sam2_annotator.gui.export_dialog import run_export_dialog

if TYPE_CHECKING:
    from sam2_annotator.gui.main_window import MainWindow
    from sam2_annotator.gui.sequence_window import SequenceWindow

log = logging.getLogger(__name__)

MESSAGE_MS = 5000


class OpenCommands:
    """See the module docstring (the settings and help commands are functions below)."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.export_dialog = None
        #: The open sequence (video) window, if any: one at a time (each holds a tracker).
        self.sequence_window: SequenceWindow | None = None

    def choose_images(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(
            self.window, "Open images", "", f"Images ({patterns})"
        )
        if files:
            self.window.open_path(files)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Open a folder of images")
        if folder:
            self.window.open_path(folder)

    def choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Open a COCO project", "", "COCO (*.json)"
        )
        if path:
            self.window.open_path(path)

    def choose_video(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in VIDEO_EXTENSIONS)
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Open a video", "", f"Videos ({patterns});;Sequence projects "
            "(*.sam2-track.json);;All files (*)"
        )  # fmt: skip
        if path:
            self.window.open_path(path)

    def choose_frame_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Open a folder of video frames")
        if folder:
            self.open_sequence(Path(folder))

    def open_sequence_path(self, path: object) -> bool:
        """Open ``path`` in the sequence window if it is a video or a sequence project (the main
        window's open path, the command line and drops go through here first)."""
        if not isinstance(path, (str, Path)):
            return False
        if is_sequence_project(path):
            self.open_sequence(source_for_project(path))
            return True
        if is_video_file(path):
            self.open_sequence(Path(path))
            return True
        return False

    def open_sequence(self, source: Path) -> SequenceWindow:
        """A video file or a folder of frames, as a sequence to track objects through."""
        from sam2_annotator.gui.sequence_window import SequenceWindow

        window, settings = self.window, self.window.settings
        config = window.models.session_config or SessionConfig(
            providers=tuple(parse_provider_list(settings.providers or "auto")),
            threads=settings.threads,
        )
        model_dir = window.model.folder if window.model is not None else None
        if model_dir is None:
            model_dir = window.models.configured_model()
        if self.sequence_window is not None:
            self.sequence_window.close()
        sequence = SequenceWindow(Path(source), model_dir, settings, config)
        sequence.closed.connect(self._sequence_closed)
        sequence.show()
        self.sequence_window = sequence
        if Path(source).is_file():
            settings.add_recent(str(Path(source).resolve()))
            settings.save()
            self.rebuild_recent_menu()
        return sequence

    def _sequence_closed(self) -> None:
        # only the current one can close (a previous one is closed before the next opens); no
        # deleteLater: the window has no Qt parent, so dropping the reference frees it
        self.sequence_window = None

    def rebuild_recent_menu(self) -> None:
        menu, settings = self.window.recent_menu, self.window.settings
        menu.clear()
        for path in settings.recent_projects:
            menu.addAction(path, functools.partial(self.window.open_path, path))
        menu.setEnabled(bool(settings.recent_projects))

    def remember(self, workspace: Workspace) -> None:
        """After opening: recent projects, and what the user should know about the file."""
        settings = self.window.settings
        settings.add_recent(str(workspace.opened or workspace.project_path))
        settings.save()
        self.rebuild_recent_menu()
        status = self.window.status
        report = workspace.store.report if workspace.store is not None else None
        if report is not None and report.issues:
            status.message(
                f"opened with {len(report.issues)} note(s): {report.issues[0].message}",
                MESSAGE_MS * 2,
            )
        if workspace.source is not None:
            status.message(
                f"{workspace.source.name} is from another tool and is never changed; your work "
                f"is saved in {workspace.project_path.name}",
                MESSAGE_MS * 2,
            )

    def export(self) -> None:
        workspace = self.window.workspace
        store = workspace.store if workspace is not None else None
        if workspace is None or store is None:
            self.window.status.message("nothing to export yet", MESSAGE_MS)
            return
        project = store.project.snapshot()  # the export thread reads a copy
        project.reindex()
        protected = tuple(p for p in (store.path, workspace.source) if p is not None)
        name = Path(store.path.name.removesuffix(".json")).stem
        dialog = run_export_dialog(
            self.window, project, store.path.parent, name=name, protected=protected
        )
        dialog.exported.connect(
            lambda summary: self.window.status.message(summary.line(), MESSAGE_MS * 2)
        )
        self.export_dialog = dialog

    def show_shortcuts(self) -> None:
        show_shortcuts(self.window)

    def edit_settings(self) -> None:
        edit_settings(self.window)


def show_shortcuts(window: MainWindow) -> None:
    """F1: the keys and mouse gestures (non-modal)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    from sam2_annotator.gui.actions import shortcut_lines

    text = "\n".join(shortcut_lines())
    box = QMessageBox(
        QMessageBox.Icon.Information, "Keyboard and mouse", text,
        QMessageBox.StandardButton.Close, window,
    )  # fmt: skip
    box.setModal(False)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.show()


def edit_settings(window: MainWindow) -> None:
    """File > Settings: apply what changed (a model reload only when the model settings did)."""
    from sam2_annotator.gui.dialogs import SettingsDialog

    dialog = SettingsDialog(window, window.settings)
    if dialog.exec() != SettingsDialog.DialogCode.Accepted:
        return
    old, new = window.settings, dialog.result_settings()
    window.settings = new
    new.save()
    window.canvas.set_mask_opacity(new.mask_opacity)
    window.canvas.annotation_layer.set_opacity(new.annotation_opacity)
    window.view.opacity_slider.setValue(round(new.annotation_opacity * 100))
    window.worker.set_prefetch(new.prefetch)
    model_keys = ("model_dir", "providers", "threads")
    if any(getattr(old, k) != getattr(new, k) for k in model_keys) and new.model_dir:
        window.models.load(Path(new.model_dir))
    if (old.cache_mb, old.disk_cache) != (new.cache_mb, new.disk_cache):
        window.status.message("cache settings apply after a restart", MESSAGE_MS)
    window.categories.apply_predefined(new.labels)
