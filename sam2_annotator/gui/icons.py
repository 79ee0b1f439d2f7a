"""A few toolbar icons drawn with QPainter (no files to ship), where Qt's standard icons have
nothing that fits: undo and redo (curved arrows)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QTransform

SIZE = 32
INK = QColor(60, 60, 66)


def undo_icon() -> QIcon:
    return QIcon(_curved_arrow(mirror=False))


def redo_icon() -> QIcon:
    return QIcon(_curved_arrow(mirror=True))


def _curved_arrow(mirror: bool) -> QPixmap:
    """An arrow that bends back to the left (undo), or to the right when ``mirror``."""
    pixmap = QPixmap(SIZE, SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    if mirror:
        painter.setTransform(QTransform(-1, 0, 0, 1, SIZE, 0))
    pen = QPen(INK, 3.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    body = QPainterPath(QPointF(9, 12))
    body.arcTo(QRectF(6, 6, 20, 18), 90, -180)  # over the top and down the right side
    body.lineTo(QPointF(12, 24))
    painter.drawPath(body)
    head = QPainterPath(QPointF(4, 12))
    head.lineTo(QPointF(12, 5))
    head.lineTo(QPointF(12, 19))
    head.closeSubpath()
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(INK)
    painter.drawPath(head)
    painter.end()
    return pixmap


def app_icon() -> QIcon | None:
    """The application icon from the package resources, if they are installed."""
    try:
        from sam2_annotator.resources import APP_ICON_SVG, resource_path
    except ImportError:
        return None
    path = resource_path(APP_ICON_SVG)
    return QIcon(str(path)) if path.is_file() else None
