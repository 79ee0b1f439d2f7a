"""Shows the current image's accepted annotations in the list and on the canvas (Qt only).

:class:`AnnotationPresenter` reads the project (through the workspace) and the per-image state
(hidden ids, from :class:`~sam2_annotator.app.image_states.ImageStates`) and displays them; it
keeps no copy of either. Overlays are built off the GUI thread by
:class:`~.annotation_overlays.AnnotationOverlays`; when several finish together one repaint
follows.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer

from sam2_annotator.annotations import Annotation
from sam2_annotator.annotations.model import default_color
from sam2_annotator.app.image_states import ImageStates
from sam2_annotator.app.workspace import Workspace
from sam2_annotator.gui.annotation_list import AnnotationList, AnnotationRow
from sam2_annotator.gui.annotation_overlays import AnnotationOverlays
from sam2_annotator.gui.canvas import AnnotationShape, Canvas

log = logging.getLogger(__name__)

RGB = tuple[int, int, int]


class AnnotationPresenter(QObject):
    """See the module docstring."""

    def __init__(
        self, canvas: Canvas, annotation_list: AnnotationList, states: ImageStates
    ) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.list = annotation_list
        self.states = states
        self.workspace: Workspace | None = None
        self.path: str | None = None
        self.editing: int | None = None
        self.overlays = AnnotationOverlays(self)
        self._refresh_timer = QTimer(self)  # many overlays finishing together: one repaint
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self.refresh_canvas)
        self.overlays.ready.connect(self._refresh_timer.start)

    # ------------------------------------------------------------------ context

    def set_workspace(self, workspace: Workspace | None) -> None:
        self.workspace = workspace
        self.overlays.clear()
        self.path = None
        self.editing = None

    def set_image(self, path: str | None) -> None:
        """``path``: the image whose pixels are on the canvas (``None`` while loading)."""
        self.path = path
        self.editing = None
        self.refresh()

    def set_editing(self, annotation_id: int | None) -> None:
        """While an annotation is corrected, the canvas shows the edit instead of it."""
        self.editing = annotation_id
        self.refresh_canvas()

    # ------------------------------------------------------------------ reading

    def annotations(self) -> list[tuple[Annotation, RGB, str]]:
        """The current image's annotations with their colour and category name."""
        workspace = self.workspace
        if workspace is None or self.path is None or workspace.store is None:
            return []
        categories = workspace.store.project.categories
        out = []
        for annotation in workspace.annotations(self.path):
            category = categories.get(annotation.category_id)
            color = category.color if category is not None and category.color else None
            name = category.name if category is not None else f"category {annotation.category_id}"
            out.append((annotation, color or default_color(annotation.category_id), name))
        return out

    def annotation(self, annotation_id: int) -> Annotation | None:
        for annotation, _color, _name in self.annotations():
            if annotation.id == annotation_id:
                return annotation
        return None

    def selected(self) -> Annotation | None:
        ids = self.list.selected_ids()
        return self.annotation(ids[0]) if len(ids) == 1 else None

    def annotation_at(self, x: float, y: float) -> int | None:
        """The topmost visible annotation covering pixel ``(x, y)``."""
        col, row = int(x), int(y)
        for annotation, _color, _name in reversed(self.annotations()):
            if self.states.is_hidden(self.path, annotation.id):
                continue
            x0, y0, w, h = annotation.bbox
            if not (x0 <= col < x0 + w and y0 <= row < y0 + h):
                continue
            if _covers(self.overlays.cached(annotation), annotation, row, col):
                return annotation.id
        return None

    # ------------------------------------------------------------------ showing

    def refresh(self) -> None:
        """Rebuild the list and the canvas's accepted masks for the current image."""
        if self.path is None:
            self.canvas.annotation_layer.set_shapes(())
            self.list.set_rows([])
            return
        rows = [
            AnnotationRow(
                a.id,
                name,
                color,
                a.score,
                a.area,
                not self.states.is_hidden(self.path, a.id),
                a.iscrowd,
            )
            for a, color, name in self.annotations()
        ]
        self.list.set_rows(rows)
        self.refresh_canvas()

    def refresh_canvas(self) -> None:
        """Show the annotations whose overlays are ready (the others follow when built)."""
        if self.path is None:
            return
        shapes = []
        for annotation, color, _name in self.annotations():
            overlay = self.overlays.get(annotation, color)
            if overlay is not None:
                visible = (
                    not self.states.is_hidden(self.path, annotation.id)
                    and annotation.id != self.editing
                )
                shapes.append(AnnotationShape(annotation.id, overlay, visible))
        self.canvas.annotation_layer.set_shapes(shapes)
        selected = self.list.selected_ids()
        self.canvas.annotation_layer.highlight(selected[0] if len(selected) == 1 else None)

    def set_visible(self, annotation_id: int, visible: bool) -> None:
        if self.path is not None:
            self.states.set_hidden(self.path, annotation_id, not visible)
        self.canvas.annotation_layer.set_visible(
            annotation_id, visible and annotation_id != self.editing
        )

    def shutdown(self) -> None:
        self._refresh_timer.stop()
        self.overlays.shutdown()


def _covers(overlay, annotation: Annotation, row: int, col: int) -> bool:
    """Pixel test on the shown overlay's bounding-box crop (no full-size decode on the GUI
    thread); the mask is decoded only when no overlay is ready yet."""
    if overlay is not None:
        r, c = row - overlay.y0, col - overlay.x0
        crop = overlay.crop
        return 0 <= r < crop.shape[0] and 0 <= c < crop.shape[1] and bool(crop[r, c])
    mask = annotation.mask
    return 0 <= row < mask.shape[0] and 0 <= col < mask.shape[1] and bool(mask[row, col])
