"""The categories panel: the project's categories with colour, number key and annotation count.

The panel shows rows and reports what the user asks for; it keeps no state of its own. The window
gives it :class:`CategoryRow` values (:meth:`CategoryPanel.set_categories`), calls the store
when a ``*_requested`` signal arrives (every edit is undoable there) and refreshes the rows from
the store's change callbacks.

The questions it asks (a name, a colour, a merge target, what happens to the annotations of a
deleted category) go through the small module-level ``ask_*`` functions, so that tests can answer
them without a modal dialog.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeyEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QRadioButton,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sam2_annotator.annotations.model import Category, default_color
from sam2_annotator.gui.annotation_list import swatch

log = logging.getLogger(__name__)

RGB = tuple[int, int, int]
DeleteMode = Literal["delete", "move"]
#: What :func:`ask_delete_mode` answers: ``("delete", None)``, ``("move", target id)`` or ``None``
#: (cancelled).
DeleteChoice = tuple[DeleteMode, int | None] | None

#: How many categories have a number key (1-9).
NUMBER_KEYS = 9

ID_ROLE = Qt.ItemDataRole.UserRole
KEY_COLUMN, NAME_COLUMN, COUNT_COLUMN = range(3)


@dataclass(frozen=True)
class CategoryRow:
    """One category as the panel shows it."""

    id: int
    name: str
    color: RGB
    count: int = 0


def category_rows(categories: Iterable[Category], counts: Mapping[int, int]) -> list[CategoryRow]:
    """Rows for ``categories`` (in their order, e.g. ``store.categories_in_order()``) with the
    annotation counts of ``store.project.category_counts()``."""
    return [
        CategoryRow(c.id, c.name, c.color or default_color(c.id), counts.get(c.id, 0))
        for c in categories
    ]


def key_of(index: int) -> str:
    """The number key of the ``index``-th row (0-based): "1".."9", then none."""
    return str(index + 1) if index < NUMBER_KEYS else ""


# --------------------------------------------------------------------------- questions


def ask_name(parent: QWidget, title: str, label: str, text: str = "") -> str | None:
    """A category name typed by the user (stripped), or ``None`` when cancelled or empty."""
    name, ok = QInputDialog.getText(parent, title, label, text=text)
    if not ok or not name.strip():
        return None
    return name.strip()


def ask_color(parent: QWidget, color: RGB, title: str) -> RGB | None:
    chosen = QColorDialog.getColor(QColor(*color), parent, title)
    if not chosen.isValid():
        return None
    return chosen.red(), chosen.green(), chosen.blue()


def ask_merge_target(parent: QWidget, name: str, others: Sequence[CategoryRow]) -> int | None:
    """The id of the category ``name`` is to be merged into, or ``None``."""
    if not others:
        return None
    labels = [f"{row.name}  ({row.count})" for row in others]
    choice, ok = QInputDialog.getItem(
        parent, "Merge category", f"Move every annotation of “{name}” to:", labels, 0, False
    )
    if not ok or choice not in labels:
        return None
    return others[labels.index(choice)].id


def ask_merge_instead(parent: QWidget, name: str, other: str) -> bool:
    """Renaming ``name`` to the name of ``other``: merge the two instead?"""
    answer = QMessageBox.question(
        parent,
        "Name already used",
        f"A category “{other}” already exists.\n\nMerge “{name}” into “{other}”? "
        f"Its annotations move to “{other}” (this can be undone).",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel,
    )
    return answer == QMessageBox.StandardButton.Yes


def ask_delete_mode(
    parent: QWidget, name: str, count: int, others: Sequence[CategoryRow]
) -> DeleteChoice:
    """What happens to the ``count`` annotations of the deleted category ``name``."""
    dialog = DeleteCategoryDialog(parent, name, count, others)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.choice()


class DeleteCategoryDialog(QDialog):
    """Delete a category that has annotations: delete them too, or move them to another one."""

    def __init__(
        self, parent: QWidget | None, name: str, count: int, others: Sequence[CategoryRow]
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Delete category “{name}”")
        self._others = list(others)
        noun = "annotation" if count == 1 else "annotations"
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"“{name}” has {count} {noun}. What should happen to them?"))
        self.delete_button = QRadioButton(f"Delete the {count} {noun}")
        self.move_button = QRadioButton("Move them to:")
        self.target = QComboBox()
        for row in self._others:
            self.target.addItem(swatch(row.color), row.name, row.id)
        group = QButtonGroup(self)
        group.addButton(self.delete_button)
        group.addButton(self.move_button)
        self.delete_button.setChecked(True)
        move_row = QHBoxLayout()
        move_row.addWidget(self.move_button)
        move_row.addWidget(self.target, 1)
        layout.addWidget(self.delete_button)
        layout.addLayout(move_row)
        self.move_button.setEnabled(bool(self._others))
        self.target.setEnabled(False)
        self.move_button.toggled.connect(self.target.setEnabled)
        self.target.activated.connect(lambda _index: self.move_button.setChecked(True))
        layout.addWidget(QLabel("Either way, Undo brings everything back."))
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Delete category")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def choice(self) -> tuple[DeleteMode, int | None]:
        if self.move_button.isChecked() and self.target.currentIndex() >= 0:
            return "move", int(self.target.currentData())
        return "delete", None


# --------------------------------------------------------------------------- the panel


class _CategoryTree(QTreeWidget):
    """The rows; F2 renames and Delete deletes the selected category (keys handled here, as in
    the annotation list, so that they cannot clash with the window's shortcuts)."""

    def __init__(self, panel: CategoryPanel) -> None:
        super().__init__(panel)
        self._panel = panel

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if self._panel.current_id() is not None:
            if event.key() == Qt.Key.Key_F2:
                event.accept()
                self._panel.rename()
                return
            if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
                event.accept()
                self._panel.delete()
                return
        super().keyPressEvent(event)


class CategoryPanel(QWidget):
    """Rows of categories and the actions on them; signals carry category ids."""

    add_requested = Signal(str)
    rename_requested = Signal(int, str)
    recolor_requested = Signal(int, tuple)
    merge_requested = Signal(int, int)  # source id, target id
    delete_requested = Signal(int, str, object)  # id, "delete" | "move", target id | None
    chosen = Signal(int)  # double-click / Enter on a row: use this category

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("categoryPanel")
        self.tree = _CategoryTree(self)
        self.tree.setObjectName("categoryTree")
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Key", "Category", "Annotations"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.SingleSelection)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(KEY_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(NAME_COLUMN, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COUNT_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.customContextMenuRequested.connect(self._show_menu)
        self.tree.itemActivated.connect(lambda item, _column: self.chosen.emit(self._id(item)))
        self.tree.itemSelectionChanged.connect(self._update_actions)

        self.add_action = self._action("Add…", "Add a category", self.add)
        self.rename_action = self._action("Rename…", "Rename the category (F2)", self.rename)
        self.recolor_action = self._action("Colour…", "Change its colour", self.recolor)
        self.merge_action = self._action(
            "Merge into…", "Move its annotations to another category and remove it", self.merge
        )
        self.delete_action = self._action("Delete…", "Delete the category (Del)", self.delete)

        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for action in self.actions_in_order():
            button = QToolButton(self)
            button.setDefaultAction(action)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self._rows: tuple[CategoryRow, ...] = ()
        self._update_actions()

    def _action(self, text: str, tip: str, slot) -> QAction:
        action = QAction(text, self)
        action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def actions_in_order(self) -> list[QAction]:
        return [
            self.add_action,
            self.rename_action,
            self.recolor_action,
            self.merge_action,
            self.delete_action,
        ]

    # ------------------------------------------------------------------ display

    def set_categories(self, rows: Sequence[CategoryRow]) -> None:
        """Show ``rows`` (in order: the first nine get keys 1-9); the selected category stays
        selected if it is still there. Emits nothing."""
        selected = self.current_id()
        self._rows = tuple(rows)
        self.tree.blockSignals(True)
        try:
            self.tree.clear()
            for index, row in enumerate(self._rows):
                item = QTreeWidgetItem([key_of(index), row.name, str(row.count)])
                item.setData(NAME_COLUMN, ID_ROLE, row.id)
                item.setIcon(NAME_COLUMN, swatch(row.color))
                item.setTextAlignment(KEY_COLUMN, Qt.AlignmentFlag.AlignCenter)
                item.setTextAlignment(
                    COUNT_COLUMN, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                )
                key = key_of(index)
                item.setToolTip(
                    NAME_COLUMN,
                    f"{row.name}: {row.count} annotations"
                    + (f"; key {key} gives this category" if key else ""),
                )
                self.tree.addTopLevelItem(item)
                if row.id == selected:
                    item.setSelected(True)
                    self.tree.setCurrentItem(item)
        finally:
            self.tree.blockSignals(False)
        self._update_actions()

    def rows(self) -> tuple[CategoryRow, ...]:
        """The rows shown, in order."""
        return self._rows

    def current_id(self) -> int | None:
        """The selected category's id, if one is selected."""
        items = self.tree.selectedItems()
        return self._id(items[0]) if items else None

    def select(self, category_id: int | None) -> None:
        """Select the category ``category_id`` (``None``: none); emits nothing."""
        self.tree.blockSignals(True)
        try:
            self.tree.clearSelection()
            for index in range(self.tree.topLevelItemCount()):
                item = self.tree.topLevelItem(index)
                if self._id(item) == category_id:
                    item.setSelected(True)
                    self.tree.setCurrentItem(item)
        finally:
            self.tree.blockSignals(False)
        self._update_actions()

    def _current_row(self) -> CategoryRow | None:
        category_id = self.current_id()
        return next((row for row in self._rows if row.id == category_id), None)

    def _others(self, row: CategoryRow) -> list[CategoryRow]:
        return [other for other in self._rows if other.id != row.id]

    def _update_actions(self) -> None:
        row = self._current_row()
        for action in (self.rename_action, self.recolor_action, self.delete_action):
            action.setEnabled(row is not None)
        self.merge_action.setEnabled(row is not None and len(self._rows) > 1)

    @staticmethod
    def _id(item: QTreeWidgetItem) -> int:
        return int(item.data(NAME_COLUMN, ID_ROLE))

    # ------------------------------------------------------------------ user actions

    def add(self) -> None:
        """Ask for a name; a new one is requested, an existing one (any case) gets selected."""
        name = ask_name(self, "Add category", "Name of the new category:")
        if name is None:
            return
        existing = self._named(name)
        if existing is not None:
            self.select(existing.id)
            return
        self.add_requested.emit(name)

    def rename(self) -> None:
        """Ask for a new name; one another category has becomes a merge, if the user agrees."""
        row = self._current_row()
        if row is None:
            return
        name = ask_name(self, "Rename category", f"New name for “{row.name}”:", row.name)
        if name is None or name == row.name:
            return
        other = self._named(name, besides=row.id)
        if other is None:
            self.rename_requested.emit(row.id, name)
        elif ask_merge_instead(self, row.name, other.name):
            self.merge_requested.emit(row.id, other.id)

    def recolor(self) -> None:
        row = self._current_row()
        if row is None:
            return
        color = ask_color(self, row.color, f"Colour of “{row.name}”")
        if color is not None and color != tuple(row.color):
            self.recolor_requested.emit(row.id, color)

    def merge(self) -> None:
        row = self._current_row()
        if row is None:
            return
        target = ask_merge_target(self, row.name, self._others(row))
        if target is not None and target != row.id:
            self.merge_requested.emit(row.id, target)

    def delete(self) -> None:
        """An unused category is deleted at once (undoable); otherwise ask what happens to its
        annotations."""
        row = self._current_row()
        if row is None:
            return
        if row.count == 0:
            self.delete_requested.emit(row.id, "delete", None)
            return
        choice = ask_delete_mode(self, row.name, row.count, self._others(row))
        if choice is None:
            return
        mode, target = choice
        if mode == "move" and (target is None or target == row.id):
            log.warning("delete of category %s: no category to move the annotations to", row.id)
            return
        self.delete_requested.emit(row.id, mode, target if mode == "move" else None)

    def _named(self, name: str, besides: int | None = None) -> CategoryRow | None:
        wanted = name.strip().casefold()
        return next(
            (r for r in self._rows if r.id != besides and r.name.strip().casefold() == wanted),
            None,
        )

    def context_menu(self) -> QMenu:
        """The menu a right-click opens (the panel's actions)."""
        menu = QMenu(self)
        for action in self.actions_in_order():
            menu.addAction(action)
        return menu

    def _show_menu(self, pos: QPoint) -> None:
        item = self.tree.itemAt(pos)
        if item is not None:
            self.select(self._id(item))
        self.context_menu().exec(self.tree.viewport().mapToGlobal(pos))
