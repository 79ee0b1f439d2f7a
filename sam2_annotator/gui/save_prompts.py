"""The questions the window asks about saving: continue an imported project, and what to do when
closing with work that is not on disk (Qt only; the decisions are made by the caller)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget


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
