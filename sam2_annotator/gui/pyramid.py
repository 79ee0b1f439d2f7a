"""Image pyramids for large images (built off the GUI thread).

Drawn straight from full resolution, an 8000x6000 image shown at 1/8 scale is sampled bilinearly:
63 of every 64 pixels are skipped, so fine texture turns into moire and shimmers while zooming.
The canvas instead paints from the smallest level that still has at least one image pixel per
screen pixel (as napari and slide viewers do); the levels are made with Qt's smooth (averaging)
downscale, so what is shown is a proper average, and the work per repaint stays bounded by the
screen size. Levels halve each side until the longest side is at most :data:`MIN_LEVEL_SIDE`.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

#: The smallest level's longest side (smaller than any view is wide).
MIN_LEVEL_SIDE = 1024


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """An RGB ``uint8`` ``(H, W, 3)`` array as a QImage in the fastest format to paint (RGB32).

    The result owns its pixels (the array may be freed afterwards).
    """
    array = np.ascontiguousarray(rgb, np.uint8)
    height, width = array.shape[:2]
    wrapped = QImage(array.data, width, height, width * 3, QImage.Format.Format_RGB888)
    return wrapped.convertToFormat(QImage.Format.Format_RGB32)


def build_pyramid(rgb: np.ndarray) -> tuple[QImage, ...]:
    """Level 0 is the image itself; each next level has half the width and height."""
    levels = [rgb_to_qimage(rgb)]
    while max(levels[-1].width(), levels[-1].height()) > MIN_LEVEL_SIDE:
        last = levels[-1]
        levels.append(
            last.scaled(
                max(1, last.width() // 2),
                max(1, last.height() // 2),
                Qt.AspectRatioMode.IgnoreAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
    return tuple(levels)


def level_for_scale(scale: float, count: int) -> int:
    """The pyramid level to paint at view ``scale`` (screen pixels per image pixel).

    Level ``i`` has ``2**-i`` of the resolution; pick the coarsest one that still has at least one
    pixel per screen pixel, so downscaling never skips detail and never samples more than 2x.
    """
    level = 0
    while level + 1 < count and scale * (2 ** (level + 1)) <= 1.0:
        level += 1
    return level
