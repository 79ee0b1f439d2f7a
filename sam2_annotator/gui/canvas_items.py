"""Graphics items and small on-canvas widgets of the :class:`~.canvas.Canvas`: the image painted
from its pyramid, mask overlays, point markers, box items and the busy/info badges."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QStyleOptionGraphicsItem,
    QWidget,
)

from sam2_annotator.gui.overlay import MaskOverlay
from sam2_annotator.gui.pyramid import level_for_scale

POSITIVE_COLOR = QColor(40, 200, 80)
NEGATIVE_COLOR = QColor(230, 50, 50)
BOX_COLOR = QColor(255, 200, 0)
#: Marker diameter in screen pixels (independent of zoom).
POINT_SIZE = 14.0

Z_IMAGE, Z_ANNOTATIONS, Z_CURRENT, Z_BOX, Z_POINTS, Z_TOOL = 0, 1, 2, 3, 4, 5


# --------------------------------------------------------------------------- items


class ImageItem(QGraphicsItem):
    """The image, painted from the pyramid level that suits the current zoom."""

    def __init__(self, pyramid: Sequence[QImage]) -> None:
        super().__init__()
        self._levels = tuple(pyramid)
        base = self._levels[0]
        self._rect = QRectF(0, 0, base.width(), base.height())
        self.setZValue(Z_IMAGE)

    def boundingRect(self) -> QRectF:
        return self._rect

    @property
    def level_count(self) -> int:
        return len(self._levels)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        scale = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        index = level_for_scale(scale, len(self._levels))
        level = self._levels[index]
        target = option.exposedRect.intersected(self._rect)
        if target.isEmpty():
            return
        factor_x = level.width() / self._rect.width()
        factor_y = level.height() / self._rect.height()
        source = QRectF(
            target.x() * factor_x,
            target.y() * factor_y,
            target.width() * factor_x,
            target.height() * factor_y,
        )
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 2.0)
        painter.drawImage(target, level, source)


class MaskItem(QGraphicsItem):
    """One mask: its crop painted at ``fill_opacity`` and its outline (constant screen width).

    ``current`` marks the mask being edited: its outline is white, whatever its colour, which
    sets it apart from the accepted masks (outlined in their category colours).
    """

    def __init__(
        self, overlay: MaskOverlay, z: float, fill_opacity: float = 0.45, current: bool = False
    ) -> None:
        super().__init__()
        self.setZValue(z)
        self._current = current
        self._overlay = overlay
        self._outline = overlay.outline
        self._fill_opacity = fill_opacity
        self._highlight = False
        self._color = QColor(*overlay.color)
        h, w = overlay.crop.shape
        self._rect = QRectF(overlay.x0, overlay.y0, w, h)

    @property
    def overlay(self) -> MaskOverlay:
        return self._overlay

    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-2, -2, 2, 2)

    def set_fill_opacity(self, value: float) -> None:
        self._fill_opacity = value
        self.update()

    def set_highlight(self, on: bool) -> None:
        self._highlight = on
        self.update()

    @property
    def highlighted(self) -> bool:
        return self._highlight

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if self._overlay.image is None:
            return
        fill = min(1.0, self._fill_opacity + (0.2 if self._highlight else 0.0))
        scale = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 1.0)
        painter.setOpacity(fill)
        painter.drawImage(self._rect.topLeft(), self._overlay.image)
        painter.setOpacity(1.0)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        outline = self._outline if scale >= 1.0 else self._overlay.outline_overview
        white = self._highlight or self._current
        pen = QPen(QColor(255, 255, 255) if white else self._color)
        pen.setCosmetic(True)
        pen.setWidthF(3.0 if self._highlight else 1.5)
        painter.setPen(pen)
        painter.drawPath(outline)


class PointItem(QGraphicsItem):
    """A click marker: a filled circle, green (positive) or red (negative), fixed screen size."""

    def __init__(self, x: float, y: float, positive: bool) -> None:
        super().__init__()
        self.positive = positive
        self.setPos(x, y)
        self.setZValue(Z_POINTS)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)

    def boundingRect(self) -> QRectF:
        half = POINT_SIZE / 2 + 3
        return QRectF(-half, -half, 2 * half, 2 * half)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        half = POINT_SIZE / 2
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 160))  # a dark halo: visible on light masks too
        painter.drawEllipse(QRectF(-half - 1.5, -half - 1.5, POINT_SIZE + 3, POINT_SIZE + 3))
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.setBrush(POSITIVE_COLOR if self.positive else NEGATIVE_COLOR)
        painter.drawEllipse(QRectF(-half, -half, POINT_SIZE, POINT_SIZE))
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.drawLine(QPointF(-half / 2, 0), QPointF(half / 2, 0))
        if self.positive:
            painter.drawLine(QPointF(0, -half / 2), QPointF(0, half / 2))


def _box_item(rect: QRectF, dashed: bool) -> QGraphicsRectItem:
    item = QGraphicsRectItem(rect)
    pen = QPen(BOX_COLOR, 2)
    pen.setCosmetic(True)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    item.setPen(pen)
    item.setBrush(QBrush(Qt.BrushStyle.NoBrush))
    item.setZValue(Z_BOX)
    return item


# --------------------------------------------------------------------------- on-canvas widgets


class BusyBadge(QFrame):
    """ "Encoding..." with an indeterminate progress bar, over the canvas's top-left corner."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("busyBadge")
        self.setStyleSheet(
            "#busyBadge { background: rgba(20, 20, 20, 200); border-radius: 6px; }"
            "QLabel { color: white; }"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel("Encoding image…")
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # indeterminate
        self.bar.setFixedWidth(90)
        self.bar.setFixedHeight(10)
        self.bar.setTextVisible(False)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        self.hide()


class InfoBadge(QLabel):
    """A one-line note over the canvas's top-right corner (candidate and score)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setStyleSheet(
            "background: rgba(20, 20, 20, 200); color: white; border-radius: 6px; padding: 3px 8px;"
        )
        self.hide()


def painted_mask(overlay: MaskOverlay) -> np.ndarray:
    """The mask as painted by :class:`MaskItem`: image-size bool array from the overlay's ARGB
    image (alpha > 0), placed at its offset."""
    mask = np.zeros(overlay.shape, bool)
    image = overlay.image
    if image is None:
        return mask
    image = image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    width, height = image.width(), image.height()
    buffer = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes())
    rows = buffer.reshape(height, image.bytesPerLine())[:, : width * 4].reshape(height, width, 4)
    alpha = rows[:, :, 3] > 0  # little-endian ARGB32: bytes are B, G, R, A
    mask[overlay.y0 : overlay.y0 + height, overlay.x0 : overlay.x0 + width] = alpha
    return mask
