"""Connects the categories panel to the project store for the window (Qt only).

The panel (:mod:`.category_panel`) only shows rows and reports intents; this class turns them into
store edits (each one undoable, one save), keeps the panel in sync with the project, and gives
the number keys 1-9 their meaning: the n-th category for the mask being made (which is then
accepted with it) or for the selected annotations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

from sam2_annotator.annotations.labels import ensure_categories
from sam2_annotator.annotations.model import default_color
from sam2_annotator.app.workspace import Workspace
from sam2_annotator.errors import UserError
from sam2_annotator.gui.category_panel import CategoryPanel, category_rows

if TYPE_CHECKING:
    from sam2_annotator.gui.main_window import MainWindow

log = logging.getLogger(__name__)


class CategoryWiring(QObject):
    """See the module docstring."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.workspace: Workspace | None = None
        #: Names predefined by ``--labels FILE`` or the setting, added to every project opened.
        self.predefined: list[str] = list(window.settings.labels)
        self.panel = CategoryPanel(window)
        self.panel.add_requested.connect(self._add)
        self.panel.rename_requested.connect(
            lambda cid, name: self._edit(lambda s: s.rename_category(cid, name))
        )
        self.panel.recolor_requested.connect(
            lambda cid, color: self._edit(lambda s: s.recolor_category(cid, color))
        )
        self.panel.merge_requested.connect(
            lambda source, target: self._edit(lambda s: s.merge_categories(source, target))
        )
        self.panel.delete_requested.connect(self._delete)
        self.panel.chosen.connect(self._chosen)

    # ------------------------------------------------------------------ state

    def set_workspace(self, workspace: Workspace) -> None:
        self.workspace = workspace
        if self.predefined:
            self.apply_predefined(self.predefined)
        self.refresh()

    def apply_predefined(self, names: Sequence[str]) -> None:
        """Make sure the project has these categories (in this order), with one save."""
        self.predefined = [n for n in names if n.strip()]
        if self.workspace is None or not self.predefined:
            return
        store = self.workspace.ensure_store()
        self._call(lambda: ensure_categories(store, self.predefined))
        self.refresh()

    def refresh(self) -> None:
        store = self.workspace.store if self.workspace is not None else None
        if store is None:
            self.panel.set_categories([])
            return
        rows = category_rows(store.categories_in_order(), store.project.category_counts())
        self.panel.set_categories(rows)

    def choices(self) -> list[tuple[str, tuple[int, int, int]]]:
        """(name, colour) of every category, for the label chooser."""
        categories = self.workspace.categories if self.workspace else []
        return [(c.name, c.color or default_color(c.id)) for c in categories]

    # ------------------------------------------------------------------ user intents

    def assign_name(self, name: str, annotation_ids: Sequence[int]) -> None:
        """Give the category called ``name`` (created if new) to annotations: one save."""
        workspace = self.workspace
        store = workspace.store if workspace is not None else None
        if store is None or not annotation_ids:
            return

        def relabel() -> None:
            with store.transaction():
                category = workspace.category_for(name)
                for annotation_id in annotation_ids:
                    store.relabel(annotation_id, category.id)
            self.window.settings.last_category = category.name

        self._call(relabel)

    def choose_number(self, number: int) -> None:
        store = self.workspace.store if self.workspace is not None else None
        category = store.project.category_by_number(number) if store is not None else None
        if category is None:
            self.window.status.message(f"there is no category {number} yet", 3000)
            return
        self._chosen(category.id)

    def toggle_selected_iscrowd(self) -> None:
        """Shift+C: toggle iscrowd of the selected annotations (one undo step)."""
        self.toggle_iscrowd(self.window.annotation_list.selected_ids())

    def toggle_iscrowd(self, annotation_ids: Sequence[int]) -> None:
        store = self.workspace.store if self.workspace is not None else None
        if store is None or not annotation_ids:
            return

        def toggle() -> None:
            with store.transaction():
                for annotation_id in annotation_ids:
                    current = store.annotation(annotation_id)
                    store.set_iscrowd(annotation_id, 0 if current.iscrowd else 1)

        self._call(toggle)

    def _chosen(self, category_id: int) -> None:
        """A category was picked (number key or the panel): label the mask being made (and
        accept it) or relabel the selected annotations."""
        store = self.workspace.store if self.workspace is not None else None
        if store is None:
            return
        name = store.project.category(category_id).name
        window = self.window
        plan = window.controller.accept_plan()
        if plan is not None and plan.annotation_id is None:
            window.save_plan(plan, name)
            return
        selected = window.annotation_list.selected_ids()
        if selected:
            self.assign_name(name, selected)
        else:
            window.settings.last_category = name
            window.status.message(f"next label: {name}", 3000)

    def _add(self, name: str) -> None:
        workspace = self.workspace
        if workspace is not None:
            self._call(lambda: workspace.category_for(name))
            self.refresh()

    def _delete(self, category_id: int, mode: str, target: Any) -> None:
        self._edit(lambda s: s.delete_category(category_id, annotations=mode, move_to=target))

    def _edit(self, edit: Callable[[Any], Any]) -> None:
        store = self.workspace.ensure_store() if self.workspace is not None else None
        if store is not None:
            self._call(lambda: edit(store))
            self.refresh()

    def _call(self, call: Callable[[], Any]) -> None:
        try:
            call()
        except UserError as exc:
            self.window.show_error(str(exc))
