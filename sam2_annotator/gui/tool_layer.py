"""The hand tools on the canvas (Qt only): polygon vertices and brush strokes.

:class:`ToolLayer` is the canvas's :class:`~.canvas.ToolHandler` while the polygon, brush or
eraser tool is active. It draws what is being made (the polygon with its vertex handles and the
rubber edge to the cursor; the stroke as a vector path while the button is down; the brush size as
a circle under the cursor) and reports what the user did through signals in image pixels. The
geometry itself lives in :class:`~sam2_annotator.app.tools.PolygonDraft` and the masks in the
controller; the window connects the two.

Painting stays smooth on an 8000x6000 image: while dragging, only a vector path grows (no mask
work per mouse move); the stroke is rasterised once, on release, inside its bounding box.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QMouseEvent, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem, QGraphicsView

from sam2_annotator.app.tools import Stroke, ToolName, nearest_vertex
from sam2_annotator.gui.canvas_items import Z_TOOL

POLYGON_COLOR = QColor(255, 170, 0)
BRUSH_COLOR = QColor(0, 220, 255)
ERASER_COLOR = QColor(255, 80, 80)
#: How close (screen pixels) a click must be to grab a vertex or an edge.
HIT_PIXELS = 8.0
HANDLE_PIXELS = 7.0


def _pen(color: QColor, width: float = 2.0) -> QPen:
    pen = QPen(color, width)
    pen.setCosmetic(True)
    return pen


class ToolLayer(QObject):
    """See the module docstring. ``view`` is the canvas (for its scene and zoom)."""

    vertex_added = Signal(float, float)
    vertex_moved = Signal(int, float, float)
    vertex_inserted = Signal(float, float)
    close_requested = Signal()
    stroke_finished = Signal(object)  # Stroke

    def __init__(self, view: QGraphicsView) -> None:
        super().__init__(view)
        self.view = view
        self.tool: ToolName = "prompt"
        self.brush_radius = 12
        self._vertices: list[tuple[float, float]] = []
        self._closed = False
        self._drag: int | None = None
        self._stroke: list[tuple[float, float]] = []
        #: Finished strokes still drawn as paths until their mask overlay is shown.
        self._pending: list[tuple[list[tuple[float, float]], bool]] = []
        self._cursor: QPointF | None = None
        self._path = QGraphicsPathItem()
        self._path.setZValue(Z_TOOL)
        self._handles = QGraphicsPathItem()
        self._handles.setZValue(Z_TOOL)
        self._handles.setPen(_pen(QColor(40, 40, 40), 1))
        self._handles.setBrush(QBrush(POLYGON_COLOR))
        self._circle = QGraphicsEllipseItem()
        self._circle.setZValue(Z_TOOL)
        self._circle.setPen(_pen(BRUSH_COLOR, 1.5))
        self._items = (self._path, self._handles, self._circle)
        self._attached = False

    # ------------------------------------------------------------------ state shown

    def set_tool(self, tool: ToolName, radius: int | None = None) -> None:
        self.tool = tool
        if radius is not None:
            self.brush_radius = radius
        self._stroke = []
        self._pending = []
        self._drag = None
        self._ensure_items()
        self._circle.setPen(_pen(ERASER_COLOR if tool == "eraser" else BRUSH_COLOR, 1.5))
        self.redraw()

    def set_polygon(self, vertices: Sequence[tuple[float, float]], closed: bool = False) -> None:
        self._vertices = list(vertices)
        self._closed = closed
        self.redraw()

    @property
    def stroking(self) -> bool:
        return bool(self._stroke)

    def clear_pending(self) -> None:
        """The strokes so far are now part of the shown mask."""
        self._pending = []
        self.redraw()

    def detach(self) -> None:
        """Remove the tool's graphics (the image changed or the scene was cleared)."""
        for item in self._items:
            if item.scene() is not None:
                item.scene().removeItem(item)
        self._attached = False

    def _ensure_items(self) -> None:
        scene = self.view.scene()
        for item in self._items:
            if item.scene() is not scene:
                if item.scene() is not None:
                    item.scene().removeItem(item)
                scene.addItem(item)
        self._attached = True

    def _scale(self) -> float:
        zoom = self.view.transform().m11() or 1.0
        return 1.0 / zoom

    def redraw(self) -> None:
        if not self._attached:
            return
        path = QPainterPath()
        handles = QPainterPath()
        scale = self._scale()
        if self.tool == "polygon" and self._vertices:
            path.moveTo(QPointF(*self._vertices[0]))
            for vertex in self._vertices[1:]:
                path.lineTo(QPointF(*vertex))
            if self._closed:
                path.closeSubpath()
            elif self._cursor is not None:
                path.lineTo(self._cursor)
            half = HANDLE_PIXELS * scale / 2
            for x, y in self._vertices:
                handles.addRect(QRectF(x - half, y - half, 2 * half, 2 * half))
            self._path.setPen(_pen(POLYGON_COLOR))
        elif self.tool in ("brush", "eraser") and (self._stroke or self._pending):
            for points in [p for p, _add in self._pending] + [self._stroke]:
                if not points:
                    continue
                path.moveTo(QPointF(*points[0]))
                for point in points[1:]:
                    path.lineTo(QPointF(*point))
                if len(points) == 1:
                    path.lineTo(QPointF(points[0][0] + 0.01, points[0][1]))
            color = QColor(ERASER_COLOR if self.tool == "eraser" else BRUSH_COLOR)
            color.setAlpha(140)
            pen = QPen(color, 2 * self.brush_radius + 1)  # image pixels: scales with the zoom
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
            self._path.setPen(pen)
        self._path.setPath(path)
        self._handles.setPath(handles)
        show_circle = self.tool in ("brush", "eraser") and self._cursor is not None
        self._circle.setVisible(show_circle)
        if show_circle:
            r = self.brush_radius
            c = self._cursor
            self._circle.setRect(QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r))

    # ------------------------------------------------------------------ ToolHandler

    def press(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self.tool == "polygon":
            return self._polygon_press(pos, event)
        if self.tool in ("brush", "eraser") and event.button() == Qt.MouseButton.LeftButton:
            self._stroke = [(pos.x(), pos.y())]
            self.redraw()
            return True
        return False

    def move(self, pos: QPointF, event: QMouseEvent) -> None:
        self._cursor = pos
        if self.tool == "polygon" and self._drag is not None:
            self.vertex_moved.emit(self._drag, pos.x(), pos.y())
        elif self._stroke:
            last = self._stroke[-1]
            if abs(pos.x() - last[0]) + abs(pos.y() - last[1]) >= 0.5:
                self._stroke.append((pos.x(), pos.y()))
        self.redraw()

    def release(self, pos: QPointF, event: QMouseEvent) -> None:
        if self._drag is not None:
            self._drag = None
            return
        if self._stroke:
            stroke = Stroke(tuple(self._stroke), self.brush_radius, add=self.tool == "brush")
            self._pending.append((self._stroke, stroke.add))
            self._stroke = []
            self.redraw()
            self.stroke_finished.emit(stroke)

    def double_click(self, pos: QPointF, event: QMouseEvent) -> bool:
        if self.tool != "polygon":
            return self.tool in ("brush", "eraser")
        if not self._closed:
            self.close_requested.emit()
        return True

    def _polygon_press(self, pos: QPointF, event: QMouseEvent) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return True  # right clicks do nothing while drawing a polygon
        radius = HIT_PIXELS * self._scale()
        hit = nearest_vertex(self._vertices, pos.x(), pos.y(), radius)
        if hit is not None:
            if hit == 0 and not self._closed and len(self._vertices) >= 3:
                self.close_requested.emit()  # clicking the first vertex closes, as in labelme
                return True
            self._drag = hit
            return True
        if self._closed:
            self.vertex_inserted.emit(pos.x(), pos.y())
            return True
        self.vertex_added.emit(pos.x(), pos.y())
        return True
