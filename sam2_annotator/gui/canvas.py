"""The canvas: the image, the prompt (points and box), the current mask and accepted masks.

Mouse: left click = positive point, right click or Shift+click = negative point, left drag = box,
wheel = zoom to the cursor, middle drag or Space+drag = pan, Ctrl+click = select the annotation
under the cursor, double click = correct it. While a hand tool is active
(:attr:`Canvas.tool_handler`, see :mod:`.tool_layer`) the buttons go to the tool instead. The
canvas only reports what the user did (signals in image pixel coordinates); the window owns the
prompt state and the worker.

Large images stay smooth: the image is painted from a pyramid level matching the zoom
(:mod:`.pyramid`), masks are painted from their bounding-box crops (:mod:`.overlay`), and point
markers ignore the view's scale so they stay the same size on screen.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QLabel,
    QWidget,
)

from sam2_annotator.gui.canvas_items import (
    Z_ANNOTATIONS,
    Z_CURRENT,
    BusyBadge,
    ImageItem,
    InfoBadge,
    MaskItem,
    PointItem,
    _box_item,
    painted_mask,
)
from sam2_annotator.gui.overlay import MaskOverlay

__all__ = ["AnnotationShape", "Canvas", "MaskItem", "painted_mask"]

log = logging.getLogger(__name__)

#: Zoom limits relative to "fit to window" and absolute (screen pixels per image pixel).
MIN_ZOOM_OF_FIT = 0.25
MAX_ZOOM = 40.0
#: Wheel zoom per 120 units (one notch).
ZOOM_STEP = 1.25
#: Mouse movement only updates the cursor read-out after this quiet time.
CURSOR_DEBOUNCE_MS = 30


# --------------------------------------------------------------------------- the view


class ToolHandler(Protocol):
    """Takes the left/right mouse buttons while a hand tool (polygon, brush) is active; ``pos``
    is in image pixels. ``press``/``double_click`` return whether they used the event."""

    def press(self, pos: QPointF, event: QMouseEvent) -> bool: ...
    def move(self, pos: QPointF, event: QMouseEvent) -> None: ...
    def release(self, pos: QPointF, event: QMouseEvent) -> None: ...
    def double_click(self, pos: QPointF, event: QMouseEvent) -> bool: ...


@dataclass(frozen=True)
class AnnotationShape:
    """An accepted annotation as the canvas shows it."""

    annotation_id: int
    overlay: MaskOverlay
    visible: bool = True


class AnnotationLayer:
    """The accepted annotations on the canvas. Whether each is hidden comes with its
    :class:`AnnotationShape` (the per-image state decides); the layer only shows it."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        self._items: dict[int, MaskItem] = {}
        self._wanted: dict[int, bool] = {}
        self.visible = True
        self.opacity = 0.45
        self._highlighted: int | None = None

    def set_shapes(self, shapes: Iterable[AnnotationShape]) -> None:
        for item in self._items.values():
            self.scene.removeItem(item)
        self._items.clear()
        self._wanted.clear()
        for shape in shapes:
            self.add(shape)

    def add(self, shape: AnnotationShape) -> None:
        self.remove(shape.annotation_id)
        item = MaskItem(shape.overlay, Z_ANNOTATIONS, self.opacity)
        self._items[shape.annotation_id] = item
        self._wanted[shape.annotation_id] = shape.visible
        item.setVisible(self.visible and shape.visible)
        item.set_highlight(shape.annotation_id == self._highlighted)
        self.scene.addItem(item)

    def remove(self, annotation_id: int) -> None:
        item = self._items.pop(annotation_id, None)
        self._wanted.pop(annotation_id, None)
        if item is not None:
            self.scene.removeItem(item)

    def ids(self) -> list[int]:
        return list(self._items)

    def item(self, annotation_id: int) -> MaskItem | None:
        return self._items.get(annotation_id)

    def set_visible(self, annotation_id: int, visible: bool) -> None:
        item = self._items.get(annotation_id)
        if item is not None:
            self._wanted[annotation_id] = visible
            item.setVisible(self.visible and visible)

    def set_all_visible(self, visible: bool) -> None:
        """H: show or hide every annotation (each keeps its own hidden state)."""
        self.visible = visible
        for annotation_id, item in self._items.items():
            item.setVisible(visible and self._wanted.get(annotation_id, True))

    def set_opacity(self, value: float) -> None:
        self.opacity = value
        for item in self._items.values():
            item.set_fill_opacity(value)

    def highlight(self, annotation_id: int | None) -> None:
        self._highlighted = annotation_id
        for key, item in self._items.items():
            item.set_highlight(key == annotation_id)


class Canvas(QGraphicsView):
    """See the module docstring."""

    point_clicked = Signal(float, float, bool)  # x, y, positive
    box_drawn = Signal(float, float, float, float)  # x0, y0, x1, y1
    accept_requested = Signal()
    cycle_requested = Signal()
    cursor_moved = Signal(object)  # (x, y) in image pixels, or None outside the image
    select_requested = Signal(float, float)  # Ctrl+click: pick the annotation under (x, y)
    double_clicked = Signal(float, float)  # left double click at (x, y)
    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setObjectName("canvas")
        self.setBackgroundBrush(QColor(48, 48, 52))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)  # the window takes drops
        self.setFrameShape(QFrame.Shape.NoFrame)
        # Panning moves the (hidden) scroll bars; the scene rect leaves room around the image.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self._image: ImageItem | None = None
        self._image_size: tuple[int, int] | None = None  # (width, height)
        self._current: MaskItem | None = None
        self._points: list[PointItem] = []
        self._box: QGraphicsRectItem | None = None
        self._rubber: QGraphicsRectItem | None = None
        #: The accepted annotations' items (show, hide, highlight, opacity).
        self.annotation_layer = AnnotationLayer(self.scene())
        self.mask_opacity = 0.5
        self._fitted = True

        #: The active hand tool, if any (``None``: clicks are prompt points and boxes).
        self.tool_handler: ToolHandler | None = None
        self._tool_pressed = False
        self._press_pos: QPoint | None = None
        self._press_button = Qt.MouseButton.NoButton
        self._press_modifiers = Qt.KeyboardModifier.NoModifier
        self._dragging_box = False
        self._pan_last: QPoint | None = None
        self._space_down = False
        self._space_panned = False

        self.busy = BusyBadge(self.viewport())
        self.info = InfoBadge(self.viewport())
        self.hint = QLabel(
            "Open an image, a folder or a project (Ctrl+O), or drop files here.", self.viewport()
        )
        self.hint.setStyleSheet("color: #bbb; font-size: 14px;")
        self.hint.adjustSize()

        self._cursor_timer = QTimer(self)
        self._cursor_timer.setSingleShot(True)
        self._cursor_timer.setInterval(CURSOR_DEBOUNCE_MS)
        self._cursor_timer.timeout.connect(self._emit_cursor)
        self._cursor_scene: QPointF | None = None

    # ------------------------------------------------------------------ content

    @property
    def has_image(self) -> bool:
        return self._image is not None

    @property
    def image_size(self) -> tuple[int, int] | None:
        return self._image_size

    def set_image(self, pyramid: Sequence[QImage] | None) -> None:
        """Show a new image (or none); prompt, masks and annotations are cleared."""
        self.clear_prompt()
        self.set_current_mask(None)
        self.annotation_layer.set_shapes(())
        if self._image is not None:
            self.scene().removeItem(self._image)
            self._image = None
        self._image_size = None
        if pyramid:
            self._image = ImageItem(pyramid)
            self._image_size = (pyramid[0].width(), pyramid[0].height())
            self.scene().addItem(self._image)
            rect = self._image.boundingRect()
            margin = max(rect.width(), rect.height())
            self.scene().setSceneRect(rect.adjusted(-margin, -margin, margin, margin))
            self.fit_to_window()
        self.hint.setVisible(self._image is None)
        self._place_badges()

    def set_frame(self, pyramid: Sequence[QImage]) -> None:
        """Swap the pixels for another frame of the same size, keeping zoom, pan and overlays
        (the sequence mode's scrubbing); a first or differently sized frame is a new image."""
        if self._image is None or self._image_size != (pyramid[0].width(), pyramid[0].height()):
            self.set_image(pyramid)
            return
        self.scene().removeItem(self._image)
        self._image = ImageItem(pyramid)
        self.scene().addItem(self._image)

    def set_prompt(self, points: np.ndarray, labels: np.ndarray, box: np.ndarray | None) -> None:
        """Show the current prompt's markers (replacing the previous ones)."""
        self.clear_prompt()
        coords = np.asarray(points).reshape(-1, 2)
        for (x, y), label in zip(coords, np.asarray(labels), strict=True):
            item = PointItem(float(x), float(y), bool(label == 1))
            self.scene().addItem(item)
            self._points.append(item)
        if box is not None:
            x0, y0, x1, y1 = (float(v) for v in box)
            self._box = _box_item(QRectF(QPointF(x0, y0), QPointF(x1, y1)), dashed=False)
            self.scene().addItem(self._box)

    def clear_prompt(self) -> None:
        for item in self._points:
            self.scene().removeItem(item)
        self._points.clear()
        if self._box is not None:
            self.scene().removeItem(self._box)
            self._box = None

    def set_current_mask(self, overlay: MaskOverlay | None) -> None:
        if self._current is not None:
            self.scene().removeItem(self._current)
            self._current = None
        if overlay is not None and not overlay.empty:
            self._current = MaskItem(overlay, Z_CURRENT, self.mask_opacity, current=True)
            self.scene().addItem(self._current)

    @property
    def current_overlay(self) -> MaskOverlay | None:
        return self._current.overlay if self._current is not None else None

    def current_mask(self) -> np.ndarray | None:
        """The mask the canvas shows as the current one, read back from the painted image."""
        if self._current is None:
            return None
        overlay = self._current.overlay
        return painted_mask(overlay)

    @property
    def point_count(self) -> int:
        return len(self._points)

    def annotation_ids(self) -> list[int]:
        return self.annotation_layer.ids()

    def annotation_item(self, annotation_id: int) -> MaskItem | None:
        return self.annotation_layer.item(annotation_id)

    def set_mask_opacity(self, value: float) -> None:
        self.mask_opacity = value
        if self._current is not None:
            self._current.set_fill_opacity(value)

    def set_busy(self, busy: bool, text: str = "Encoding image…") -> None:
        self.busy.label.setText(text)
        self.busy.adjustSize()
        self.busy.setVisible(busy)
        self._place_badges()

    def set_info(self, text: str | None) -> None:
        self.info.setText(text or "")
        self.info.adjustSize()
        self.info.setVisible(bool(text))
        self._place_badges()

    # ------------------------------------------------------------------ zoom

    @property
    def zoom(self) -> float:
        """Screen pixels per image pixel."""
        return float(self.transform().m11())

    def fit_to_window(self) -> None:
        if self._image is None:
            return
        self.resetTransform()
        self.fitInView(self._image.boundingRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self._fitted = True
        self.zoom_changed.emit(self.zoom)

    def zoom_to(self, factor: float, anchor: QPointF | None = None) -> None:
        """Set the zoom (screen pixels per image pixel), keeping the image point under
        ``anchor`` (a viewport position; default the centre) where it is."""
        if self._image is None:
            return
        factor = min(max(factor, self._min_zoom()), MAX_ZOOM)
        anchor_point = anchor if anchor is not None else QPointF(self.viewport().rect().center())
        view_point = anchor_point.toPoint()
        scene_point = self.mapToScene(view_point)
        ratio = factor / self.zoom
        self.scale(ratio, ratio)
        # Scroll so that the same image point is back under the anchor (the scene rect has a
        # margin around the image, so there is room to scroll at every zoom).
        moved = self.mapFromScene(scene_point) - view_point
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())
        self._fitted = False
        self.zoom_changed.emit(self.zoom)

    def _min_zoom(self) -> float:
        if self._image is None:
            return 0.01
        rect = self._image.boundingRect()
        view = self.viewport().rect()
        fit = min(view.width() / max(rect.width(), 1), view.height() / max(rect.height(), 1))
        return max(1e-3, fit * MIN_ZOOM_OF_FIT)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps == 0 or self._image is None:
            return
        self.zoom_to(self.zoom * (ZOOM_STEP**steps), event.position())
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit_to_window()
        self._place_badges()

    def _place_badges(self) -> None:
        margin = 8
        self.busy.move(margin, margin)
        view = self.viewport().rect()
        self.info.move(view.width() - self.info.width() - margin, margin)
        self.hint.move(
            (view.width() - self.hint.width()) // 2, (view.height() - self.hint.height()) // 2
        )

    # ------------------------------------------------------------------ mouse

    def image_pos(self, view_pos: QPoint | QPointF) -> QPointF:
        point = view_pos.toPoint() if isinstance(view_pos, QPointF) else view_pos
        return self.mapToScene(point)

    def view_pos(self, x: float, y: float) -> QPoint:
        """Where image pixel ``(x, y)`` is in viewport coordinates (for tests and tools)."""
        return self.mapFromScene(QPointF(x, y))

    def _inside(self, scene: QPointF) -> bool:
        if self._image_size is None:
            return False
        width, height = self._image_size
        return 0 <= scene.x() < width and 0 <= scene.y() < height

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space_down
        ):
            self._pan_last = event.position().toPoint()
            self._space_panned = self._space_down
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if (
            self.tool_handler is not None
            and self._image is not None
            and self.tool_handler.press(self.image_pos(event.position()), event)
        ):
            self._tool_pressed = True
            event.accept()
            return
        if button in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            self._press_pos = event.position().toPoint()
            self._press_button = button
            self._press_modifiers = event.modifiers()
            self._dragging_box = False
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        if self._pan_last is not None:
            delta = pos - self._pan_last
            self._pan_last = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            event.accept()
            return
        if self.tool_handler is not None and self._image is not None:
            self.tool_handler.move(self.image_pos(pos), event)
        if self._press_pos is not None and self._press_button == Qt.MouseButton.LeftButton:
            distance = (pos - self._press_pos).manhattanLength()
            if self._dragging_box or distance >= QApplication.startDragDistance():
                self._dragging_box = True
                self._update_rubber(self.image_pos(self._press_pos), self.image_pos(pos))
        self._cursor_scene = self.image_pos(pos)
        self._cursor_timer.start()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_last is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_last = None
            self.viewport().unsetCursor()
            event.accept()
            return
        if self._tool_pressed:
            self._tool_pressed = False
            if self.tool_handler is not None:
                self.tool_handler.release(self.image_pos(event.position()), event)
            event.accept()
            return
        if self._press_pos is None or event.button() != self._press_button:
            super().mouseReleaseEvent(event)
            return
        start = self.image_pos(self._press_pos)
        end = self.image_pos(event.position().toPoint())
        dragged = self._dragging_box
        self._press_pos = None
        self._dragging_box = False
        self._remove_rubber()
        event.accept()
        if self._image is None:
            return
        if dragged:
            self._emit_box(start, end)
        elif self._inside(start) and self._press_modifiers & Qt.KeyboardModifier.ControlModifier:
            self.select_requested.emit(float(start.x()), float(start.y()))
        elif self._inside(start):
            negative = self._press_button == Qt.MouseButton.RightButton or bool(
                self._press_modifiers & Qt.KeyboardModifier.ShiftModifier
            )
            self.point_clicked.emit(float(start.x()), float(start.y()), not negative)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        handler = self.tool_handler
        if handler is not None and handler.double_click(self.image_pos(event.position()), event):
            event.accept()
            return
        pos = self.image_pos(event.position())
        if event.button() == Qt.MouseButton.LeftButton and self._inside(pos):
            self.double_clicked.emit(float(pos.x()), float(pos.y()))
        super().mouseDoubleClickEvent(event)

    def _emit_box(self, start: QPointF, end: QPointF) -> None:
        width, height = self._image_size or (0, 0)
        x0, x1 = sorted((min(max(start.x(), 0.0), width), min(max(end.x(), 0.0), width)))
        y0, y1 = sorted((min(max(start.y(), 0.0), height), min(max(end.y(), 0.0), height)))
        if x1 - x0 >= 1 and y1 - y0 >= 1:
            self.box_drawn.emit(float(x0), float(y0), float(x1), float(y1))

    def _update_rubber(self, start: QPointF, end: QPointF) -> None:
        rect = QRectF(start, end).normalized()
        if self._rubber is None:
            self._rubber = _box_item(rect, dashed=True)
            self.scene().addItem(self._rubber)
        else:
            self._rubber.setRect(rect)

    def _remove_rubber(self) -> None:
        if self._rubber is not None:
            self.scene().removeItem(self._rubber)
            self._rubber = None

    def _emit_cursor(self) -> None:
        scene = self._cursor_scene
        if scene is None or not self._inside(scene):
            self.cursor_moved.emit(None)
        else:
            self.cursor_moved.emit((math.floor(scene.x()), math.floor(scene.y())))

    def leaveEvent(self, event) -> None:
        self._cursor_scene = None
        self._cursor_timer.start()
        super().leaveEvent(event)

    # ------------------------------------------------------------------ keys

    def event(self, event) -> bool:
        # Tab would move the focus; here it cycles the candidate masks.
        if (
            event.type() == event.Type.KeyPress
            and event.key() == Qt.Key.Key_Tab
            and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        ):
            self.cycle_requested.emit()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_down = True
                self._space_panned = False
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_down = False
                self.viewport().unsetCursor()
                if not self._space_panned and self._pan_last is None:
                    self.accept_requested.emit()  # Space tapped without dragging: accept
                self._space_panned = False
            event.accept()
            return
        super().keyReleaseEvent(event)
