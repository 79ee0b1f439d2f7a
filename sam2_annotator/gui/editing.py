"""The window's hand tools and corrections (Qt only): choosing the tool, the polygon's vertices,
brush strokes, correcting a selected annotation, canvas selection, and the per-image flags.

The geometry and the drafts live in the Qt-free
:class:`~sam2_annotator.app.controller.PromptController`; this class moves input between the
:class:`~.tool_layer.ToolLayer`, the controller and the canvas.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from sam2_annotator.app.tools import Stroke, ToolName, next_brush_size
from sam2_annotator.gui.actions import TOOL_ACTIONS
from sam2_annotator.gui.jobs import start_job
from sam2_annotator.gui.overlay import make_overlay
from sam2_annotator.gui.tool_layer import ToolLayer

if TYPE_CHECKING:
    from sam2_annotator.gui.main_window import MainWindow

log = logging.getLogger(__name__)

MESSAGE_MS = 5000
#: Screen pixels within which a click on a closed polygon's edge inserts a vertex.
EDGE_PIXELS = 12.0


class EditingTools(QObject):
    """See the module docstring."""

    #: The painted draft's overlay is on the canvas (after each stroke).
    draft_shown = Signal()

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.brush_radius = 12
        self.last_stroke_ms: float | None = None
        self._overlay_generation = 0
        self.layer = ToolLayer(window.canvas)
        layer = self.layer
        layer.vertex_added.connect(lambda x, y: self.polygon_edit("add", x, y))
        layer.vertex_moved.connect(lambda i, x, y: self.polygon_edit("move", x, y, i))
        layer.vertex_inserted.connect(lambda x, y: self.polygon_edit("insert", x, y))
        layer.close_requested.connect(window.accept_mask)
        layer.stroke_finished.connect(self.on_stroke)
        window.canvas.select_requested.connect(self.select_at)
        window.canvas.double_clicked.connect(self.double_click)

    @property
    def controller(self):
        return self.window.controller

    # ------------------------------------------------------------------ tools

    def set_tool(self, tool: ToolName) -> None:
        """S / P / B / X: SAM clicks, polygon, brush, eraser (all but S work without a model)."""
        window = self.window
        self.controller.set_tool(tool)
        window.canvas.tool_handler = None if tool == "prompt" else self.layer
        if window.loaded is not None:
            self.layer.set_tool(tool, self.brush_radius)
        for name, action_name in TOOL_ACTIONS.items():
            window.actions_by_name[action_name].setChecked(name == tool)
        self.show_tool()

    def resize_brush(self, bigger: bool) -> None:
        """[ / ]: brush and eraser size (shown as the cursor circle and in the status bar)."""
        self.brush_radius = next_brush_size(self.brush_radius, bigger)
        self.layer.set_tool(self.controller.tool, self.brush_radius)
        self.show_tool()

    def show_tool(self) -> None:
        polygon = self.controller.polygon
        if polygon is not None and self.controller.tool == "polygon":
            self.layer.set_polygon(polygon.vertices, polygon.annotation_id is not None)
        else:
            self.layer.set_polygon([])
        self.window.status.show_tool(self.controller.tool, self.brush_radius)

    def polygon_edit(self, kind: str, x: float, y: float, index: int = -1) -> None:
        polygon = self.controller.polygon
        if polygon is None:
            return
        if kind == "add":
            polygon.add(x, y)
        elif kind == "move":
            polygon.move(index, x, y)
        else:
            polygon.insert_on_edge(x, y, radius=EDGE_PIXELS / max(self.window.canvas.zoom, 1e-6))
        self.layer.set_polygon(polygon.vertices, polygon.annotation_id is not None)

    def remove_last_vertex(self) -> bool:
        """Backspace while drawing a polygon; False when the polygon tool is not drawing."""
        polygon = self.controller.polygon
        if self.controller.tool != "polygon" or polygon is None:
            return False
        if polygon.remove_last():
            self.layer.set_polygon(polygon.vertices, polygon.annotation_id is not None)
        return True

    def on_stroke(self, stroke: Stroke) -> None:
        """A brush/eraser stroke ended: rasterise it into the draft (inside its bounding box, a
        few ms even on 8000x6000), then build the overlay on a job thread (tens of ms on such an
        image); the stroke's vector path stays on screen until the overlay replaces it."""
        window = self.window
        started = time.perf_counter()
        draft = self.controller.stroke(stroke, window.annotations.selected())
        if draft is None:
            self.layer.clear_pending()
            return
        self.last_stroke_ms = (time.perf_counter() - started) * 1000.0
        if draft.annotation_id is not None:
            window.annotations.set_editing(draft.annotation_id)
        window.canvas.clear_prompt()
        window.canvas.set_info(f"painting ({draft.strokes} stroke(s)) — Enter accepts, Esc cancels")
        self._overlay_generation += 1
        generation, mask = self._overlay_generation, draft.mask.copy()
        job = start_job(lambda _progress, _cancelled: make_overlay(mask), self)
        job.returned.connect(lambda overlay: self._show_draft(generation, overlay))
        job.errored.connect(lambda exc: window.show_error(f"cannot show the painting: {exc}"))

    def _show_draft(self, generation: int, overlay) -> None:
        """A draft overlay is ready; shown unless a newer stroke or Esc made it stale."""
        if generation != self._overlay_generation or self.controller.draft is None:
            return
        self.window.canvas.set_current_mask(overlay)
        self.layer.clear_pending()
        self.draft_shown.emit()

    # ------------------------------------------------------------------ corrections

    def edit_selected(self) -> None:
        """E: correct the selected annotation."""
        ids = self.window.annotation_list.selected_ids()
        if len(ids) == 1:
            self.edit_annotation(ids[0])

    def edit_annotation(self, annotation_id: int) -> None:
        """Correct an accepted annotation: its polygon's vertices, or its mask with clicks."""
        window = self.window
        annotation = window.annotations.annotation(annotation_id)
        if annotation is None or window.loaded is None:
            return
        window.annotation_list.select_id(annotation_id)
        if self.controller.begin_polygon_edit(annotation):
            self.set_tool("polygon")
        else:
            self.set_tool("prompt")
            self.controller.begin_edit(annotation, make_overlay(annotation.mask))
            window.show_prompt()
        window.annotations.set_editing(annotation_id)
        window.status.message(
            f"correcting annotation {annotation_id}: click to refine, Enter saves, Esc leaves it",
            MESSAGE_MS * 2,
        )

    def select_at(self, x: float, y: float) -> None:
        """Ctrl+click: select the annotation under the cursor."""
        self.window.annotation_list.select_id(self.window.annotations.annotation_at(x, y))

    def double_click(self, x: float, y: float) -> None:
        hit = self.window.annotations.annotation_at(x, y)
        if hit is not None and self.controller.editing is None:
            self.edit_annotation(hit)

    # ------------------------------------------------------------------ flags

    def toggle_flag(self, flag: str) -> None:
        """Ctrl+D / Ctrl+R: mark the image done / needs review (stored in the project)."""
        window = self.window
        if window.workspace is None or window.loaded is None:
            return
        value = window.actions_by_name[f"flag_{flag}"].isChecked()
        loaded, workspace = window.loaded, window.workspace
        store = workspace.ensure_store()

        def set_flag() -> None:
            with store.transaction():
                image_id = workspace.image_id(loaded.path, loaded.width, loaded.height)
                store.set_image_flag(image_id, flag, value)

        window.store_call(set_flag)
