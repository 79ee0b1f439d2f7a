"""The annotations of the current image: select (highlights on the canvas), relabel, delete, hide.

The list only shows and reports; edits go through the window to the project store (undoable,
autosaved), whose change callbacks then refresh the list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QMenu, QWidget

log = logging.getLogger(__name__)

ID_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class AnnotationRow:
    annotation_id: int
    category: str
    color: tuple[int, int, int]
    score: float | None
    area: int
    visible: bool = True
    iscrowd: int = 0


def swatch(color: tuple[int, int, int], size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*color))
    return QIcon(pixmap)


class AnnotationList(QListWidget):
    """Rows with a visibility checkbox; signals carry annotation ids."""

    selected = Signal(object)  # int | None
    visibility_changed = Signal(int, bool)
    relabel_requested = Signal(int)
    edit_requested = Signal(int)
    delete_requested = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("annotationList")
        self.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.itemSelectionChanged.connect(self._selection_changed)
        self.itemChanged.connect(self._item_changed)
        self.itemDoubleClicked.connect(lambda item: self.edit_requested.emit(self._id(item)))
        self._filling = False

    def set_rows(self, rows: Sequence[AnnotationRow]) -> None:
        selected = set(self.selected_ids())
        self._filling = True
        self.blockSignals(True)
        try:
            self.clear()
            for row in rows:
                item = QListWidgetItem(self._text(row))
                item.setData(ID_ROLE, row.annotation_id)
                item.setIcon(swatch(row.color))
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.CheckState.Checked if row.visible else Qt.CheckState.Unchecked
                )
                item.setToolTip(
                    f"annotation {row.annotation_id}: {row.category}, {row.area} px"
                    + (f", score {row.score:.3f}" if row.score is not None else "")
                    + "\ndouble-click to relabel, Delete to remove, untick to hide"
                )
                self.addItem(item)
                item.setSelected(row.annotation_id in selected)
        finally:
            self.blockSignals(False)
            self._filling = False
        self._selection_changed()

    def ids(self) -> list[int]:
        return [self._id(self.item(row)) for row in range(self.count())]

    def selected_ids(self) -> list[int]:
        return [self._id(item) for item in self.selectedItems()]

    def select_id(self, annotation_id: int | None) -> None:
        for row in range(self.count()):
            item = self.item(row)
            item.setSelected(self._id(item) == annotation_id)

    @staticmethod
    def _text(row: AnnotationRow) -> str:
        score = f"  {row.score:.2f}" if row.score is not None else ""
        crowd = "  [crowd]" if row.iscrowd else ""
        return f"#{row.annotation_id}  {row.category}{score}{crowd}"

    @staticmethod
    def _id(item: QListWidgetItem) -> int:
        return int(item.data(ID_ROLE))

    def _selection_changed(self) -> None:
        ids = self.selected_ids()
        self.selected.emit(ids[0] if len(ids) == 1 else None)

    def _item_changed(self, item: QListWidgetItem) -> None:
        if not self._filling:
            visible = item.checkState() == Qt.CheckState.Checked
            self.visibility_changed.emit(self._id(item), visible)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.selected_ids():
            self.delete_requested.emit(self.selected_ids())
            event.accept()
            return
        super().keyPressEvent(event)

    def _menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        annotation_id = self._id(item)
        ids = self.selected_ids() or [annotation_id]
        menu = QMenu(self)
        menu.addAction("Correct (E)", lambda: self.edit_requested.emit(annotation_id))
        menu.addAction("Relabel…", lambda: self.relabel_requested.emit(annotation_id))
        visible = item.checkState() == Qt.CheckState.Checked
        menu.addAction(
            "Hide" if visible else "Show",
            lambda: item.setCheckState(
                Qt.CheckState.Unchecked if visible else Qt.CheckState.Checked
            ),
        )
        noun = "annotation" if len(ids) == 1 else f"{len(ids)} annotations"
        menu.addAction(f"Delete {noun}", lambda: self.delete_requested.emit(ids))
        menu.exec(self.viewport().mapToGlobal(pos))
