"""The image list: one row per image with its annotation count, embedding state and flags, and the
filter bar above it. Both display :class:`~sam2_annotator.app.image_states.ImageStates`; the list
stores no state of its own (rows are hidden by the filter, never removed, so a row is an index
into the open images)."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sam2_annotator.app.image_states import (
    EmbeddingState,
    ImageFilter,
    ImageState,
    ImageStates,
)

log = logging.getLogger(__name__)

#: Dot colour and tooltip per embedding state.
STATE_STYLE: dict[EmbeddingState, tuple[QColor, str]] = {
    "unknown": (QColor(120, 120, 120), "not encoded yet"),
    "encoding": (QColor(240, 170, 20), "encoding…"),
    "ready": (QColor(40, 190, 80), "embedding ready: clicks are instant"),
    "failed": (QColor(220, 50, 50), "could not be read or encoded"),
}

PATH_ROLE = Qt.ItemDataRole.UserRole


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
    """Emits :attr:`image_chosen` with the row (= image index) the user picked."""

    image_chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("fileList")
        self.setUniformItemSizes(True)
        self._icons = {state: _dot(color) for state, (color, _tip) in STATE_STYLE.items()}
        self._rows: dict[str, int] = {}
        self._filter = ImageFilter()
        self.states = ImageStates()
        self.currentRowChanged.connect(self._row_changed)

    def bind(self, states: ImageStates) -> None:
        """Display ``states`` (rows are rebuilt when it is reset)."""
        self.states = states
        states.listeners.append(self._on_state)
        states.reset_listeners.append(self._rebuild)
        self._rebuild()

    def _rebuild(self) -> None:
        self.blockSignals(True)
        self.clear()
        self._rows = {}
        for row, path in enumerate(self.states.paths):
            item = QListWidgetItem()
            item.setData(PATH_ROLE, path)
            self.addItem(item)
            self._rows[path] = row
            self._refresh(item)
        self.blockSignals(False)
        self.apply_filter(self._filter)

    def apply_filter(self, image_filter: ImageFilter) -> None:
        self._filter = image_filter
        shown = set(self.states.visible_paths(image_filter))
        for path, row in self._rows.items():
            self.setRowHidden(row, path not in shown)

    def shown_paths(self) -> list[str]:
        return [p for p, row in self._rows.items() if not self.isRowHidden(row)]

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

    def count_of(self, path: str) -> int:
        state = self.states.get(path)
        return state.count if state is not None else 0

    def state_of(self, path: str) -> EmbeddingState | None:
        state = self.states.get(path)
        return state.embedding if state is not None else None

    def _on_state(self, path: str, state: ImageState) -> None:
        row = self._rows.get(path)
        item = self.item(row) if row is not None else None
        if item is not None:
            self._refresh(item)
            self.setRowHidden(row, not self._filter.accepts(state))

    def _refresh(self, item: QListWidgetItem) -> None:
        key = str(item.data(PATH_ROLE))
        state = self.states.get(key) or ImageState(key)
        path = Path(key)
        flags = ("  ✓" if state.done else "") + ("  ⚑" if state.review else "")
        count = state.count
        item.setText((f"{path.name}   ({count})" if count else path.name) + flags)
        item.setIcon(self._icons[state.embedding])
        noun = "annotation" if count == 1 else "annotations"
        marks = [m for m, on in (("done", state.done), ("needs review", state.review)) if on]
        note = f"; {', '.join(marks)}" if marks else ""
        item.setToolTip(f"{path}\n{count} {noun}; {STATE_STYLE[state.embedding][1]}{note}")


class FileFilterBar(QWidget):
    """Filter by name, "unannotated only", "flagged only"; emits the :class:`ImageFilter`."""

    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QLineEdit()
        self.text.setPlaceholderText("Filter by name…")
        self.text.setClearButtonEnabled(True)
        self.unannotated = QCheckBox("Unannotated")
        self.flagged = QCheckBox("Flagged")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)
        row = QHBoxLayout()
        row.addWidget(self.unannotated)
        row.addWidget(self.flagged)
        row.addStretch(1)
        layout.addLayout(row)
        self.text.textChanged.connect(self._emit)
        self.unannotated.toggled.connect(self._emit)
        self.flagged.toggled.connect(self._emit)

    def current(self) -> ImageFilter:
        return ImageFilter(
            self.text.text().strip(), self.unannotated.isChecked(), self.flagged.isChecked()
        )

    def _emit(self, *_args: object) -> None:
        self.changed.emit(self.current())


class ImagesPanel(QWidget):
    """The dock's content: the filter bar above the list."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter_bar = FileFilterBar(self)
        self.list = FileList(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.filter_bar)
        layout.addWidget(self.list)
        self.filter_bar.changed.connect(self.list.apply_filter)
