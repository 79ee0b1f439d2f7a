"""The questions the window asks about saving: continue an imported project, and what to do when
closing with work that is not on disk (Qt only; the decisions are made by the caller)."""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from sam2_annotator.annotations.store import ProjectStore
from sam2_annotator.errors import UserError

log = logging.getLogger(__name__)


class CloseChoice(Enum):
    RETRY = "retry"
    SAVE_ELSEWHERE = "save_elsewhere"
    DISCARD = "discard"
    CANCEL = "cancel"


def ask_resume(parent: QWidget, original: Path, sidecar: Path) -> bool | None:
    """Continue the project kept beside ``original`` (True), start again from the original
    (False), or cancel the opening (None)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Continue where you left off?")
    box.setText(
        f"{original.name} was written by another tool, so your work on it is kept in "
        f"{sidecar.name} beside it (the original file is never changed).\n\n"
        "Continue that project, or start again from the original?"
    )
    resume = box.addButton("Continue", QMessageBox.ButtonRole.AcceptRole)
    fresh = box.addButton("Start again from the original", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(resume)
    box.exec()
    clicked = box.clickedButton()
    if clicked is resume:
        return True
    if clicked is fresh:
        return False
    return None


def ask_unsaved(parent: QWidget, path: Path, reason: str) -> CloseChoice:
    """Closing while the project is not on disk: retry, save elsewhere, quit without, cancel."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Unsaved work")
    box.setText(f"Your latest changes are not saved in {path.name}.\n\n{reason}")
    buttons = {
        box.addButton("Retry", QMessageBox.ButtonRole.AcceptRole): CloseChoice.RETRY,
        box.addButton("Save elsewhere…", QMessageBox.ButtonRole.ActionRole): (
            CloseChoice.SAVE_ELSEWHERE
        ),
        box.addButton("Quit without saving", QMessageBox.ButtonRole.DestructiveRole): (
            CloseChoice.DISCARD
        ),
        box.addButton(QMessageBox.StandardButton.Cancel): CloseChoice.CANCEL,
    }
    box.exec()
    return buttons.get(box.clickedButton(), CloseChoice.CANCEL)


def ask_save_path(parent: QWidget, suggestion: Path) -> Path | None:
    path, _ = QFileDialog.getSaveFileName(
        parent, "Save the project elsewhere", str(suggestion), "COCO project (*.json)"
    )
    return Path(path) if path else None


def confirm_saved(parent: QWidget, store: ProjectStore | None) -> bool:
    """Closing: make sure the project is on disk, or that the user chose to drop the changes.
    ``False``: the user cancelled (the window stays open, the work in memory)."""
    if store is None:
        return True
    store.flush(30)
    while store.dirty:
        try:
            store.save()
            return True
        except UserError as exc:
            reason = str(exc)
        choice = ask_unsaved(parent, store.path, reason)
        if choice is CloseChoice.CANCEL:
            return False
        if choice is CloseChoice.DISCARD:
            log.warning("closing without saving the latest changes to %s", store.path)
            return True
        if choice is CloseChoice.SAVE_ELSEWHERE:
            target = ask_save_path(parent, store.path)
            if target is not None:
                try:
                    store.save_as(target)
                except UserError as exc:
                    log.error("save elsewhere failed: %s", exc)
    return True
