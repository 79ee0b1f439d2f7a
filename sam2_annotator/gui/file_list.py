"""The image list: one row per image with its annotation count and embedding state."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

log = logging.getLogger(__name__)

EmbeddingState = Literal["unknown", "encoding", "ready", "failed"]

#: Dot colour and tooltip per embedding state.
STATE_STYLE: dict[EmbeddingState, tuple[QColor, str]] = {
    "unknown": (QColor(120, 120, 120), "not encoded yet"),
    "encoding": (QColor(240, 170, 20), "encoding…"),
    "ready": (QColor(40, 190, 80), "embedding ready: clicks are instant"),
    "failed": (QColor(220, 50, 50), "could not be read or encoded"),
}

PATH_ROLE = Qt.ItemDataRole.UserRole
STATE_ROLE = Qt.ItemDataRole.UserRole + 1
COUNT_ROLE = Qt.ItemDataRole.UserRole + 2


def _dot(color: QColor, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    painter.drawEllipse(2, 2, size - 4, size - 4)
    painter.end()
    return QIcon(pixmap)


class FileList(QListWidget):
    """Emits :attr:`image_chosen` with the row the user picked."""

    image_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("fileList")
        self.setUniformItemSizes(True)
        self._icons = {state: _dot(color) for state, (color, _tip) in STATE_STYLE.items()}
        self._rows: dict[str, int] = {}
        self.currentRowChanged.connect(self._row_changed)

    def set_images(self, paths: Sequence[Path], counts: Sequence[int] | None = None) -> None:
        self.clear()
        self._rows = {}
        for row, path in enumerate(paths):
            item = QListWidgetItem()
            item.setData(PATH_ROLE, str(path))
            item.setData(STATE_ROLE, "unknown")
            item.setData(COUNT_ROLE, counts[row] if counts else 0)
            self.addItem(item)
            self._rows[str(path)] = row
            self._refresh(item)

    def _row_changed(self, row: int) -> None:
        if row >= 0:
            self.image_chosen.emit(row)

    def path_at(self, row: int) -> str:
        return str(self.item(row).data(PATH_ROLE))

    def set_current_row_silently(self, row: int) -> None:
        self.blockSignals(True)
        self.setCurrentRow(row)
        self.blockSignals(False)
        item = self.item(row)
        if item is not None:
            self.scrollToItem(item)

    def set_count(self, path: str, count: int) -> None:
        item = self._item(path)
        if item is not None:
            item.setData(COUNT_ROLE, count)
            self._refresh(item)

    def count_of(self, path: str) -> int:
        item = self._item(path)
        return int(item.data(COUNT_ROLE)) if item is not None else 0

    def set_state(self, path: str, state: EmbeddingState) -> None:
        item = self._item(path)
        if item is not None:
            item.setData(STATE_ROLE, state)
            self._refresh(item)

    def state_of(self, path: str) -> EmbeddingState | None:
        item = self._item(path)
        return item.data(STATE_ROLE) if item is not None else None

    def _item(self, path: str) -> QListWidgetItem | None:
        row = self._rows.get(path)
        return self.item(row) if row is not None else None

    def _refresh(self, item: QListWidgetItem) -> None:
        path = Path(str(item.data(PATH_ROLE)))
        state: EmbeddingState = item.data(STATE_ROLE)
        count = int(item.data(COUNT_ROLE))
        item.setText(f"{path.name}   ({count})" if count else path.name)
        item.setIcon(self._icons[state])
        noun = "annotation" if count == 1 else "annotations"
        item.setToolTip(f"{path}\n{count} {noun}; {STATE_STYLE[state][1]}")
