"""Mask overlays prepared off the GUI thread: the mask cropped to its bounding box, its outline
and a ready-to-paint ARGB image.

A mask is the size of the image (48 MB of bools for 8000x6000). Painting or even converting that
on the GUI thread would stall it, so the worker turns each decoded mask into a
:class:`MaskOverlay`: only the bounding box is kept, the outline is traced once
(``cv2.findContours``), and the coloured image is built with numpy. ``QImage`` may be created
and used outside the GUI thread (unlike ``QPixmap``), so the worker can do all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from PySide6.QtCore import QByteArray, QDataStream, Qt
from PySide6.QtGui import QImage, QPainterPath

RGB = tuple[int, int, int]

#: Colour of the mask being edited (the accepted ones use their category's colour).
CURRENT_MASK_COLOR: RGB = (0, 220, 255)


@dataclass(frozen=True)
class MaskOverlay:
    """A mask as the canvas draws it.

    ``crop`` is the mask inside its bounding box (``uint8`` 0/1, ``(h, w)``) placed at ``(x0, y0)``
    in an image of ``shape`` ``(H, W)``; ``contours`` are the outlines in image pixels (pixel
    centres); ``image`` is ``crop`` painted in ``color`` (ARGB32 premultiplied, transparent where
    the mask is off). An empty mask has an empty crop and no image.
    """

    shape: tuple[int, int]
    x0: int
    y0: int
    crop: np.ndarray
    contours: tuple[np.ndarray, ...]
    area: int
    color: RGB
    image: QImage | None
    outline: QPainterPath = field(default_factory=QPainterPath)
    #: Only the contours that matter at overview zoom (see :func:`major_contours`).
    outline_overview: QPainterPath = field(default_factory=QPainterPath)

    @property
    def empty(self) -> bool:
        return self.area == 0

    def full_mask(self) -> np.ndarray:
        """The mask at image size, rebuilt from the crop (what the canvas shows)."""
        mask = np.zeros(self.shape, bool)
        h, w = self.crop.shape
        mask[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = self.crop.astype(bool)
        return mask


def make_overlay(mask: np.ndarray, color: RGB = CURRENT_MASK_COLOR) -> MaskOverlay:
    """Crop, trace and paint ``mask`` (bool ``(H, W)``)."""
    mask = np.asarray(mask, bool)
    shape = (int(mask.shape[0]), int(mask.shape[1]))
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        empty = np.zeros((0, 0), np.uint8)
        return MaskOverlay(shape, 0, 0, empty, (), 0, color, None)
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = np.ascontiguousarray(mask[y0:y1, x0:x1], dtype=np.uint8)
    contours = _trace(crop, x0, y0)
    area = int(np.count_nonzero(crop))
    return MaskOverlay(
        shape=shape,
        x0=x0,
        y0=y0,
        crop=crop,
        contours=contours,
        area=area,
        color=color,
        image=paint_mask(crop, color),
        outline=outline_path(contours),
        outline_overview=outline_path(major_contours(contours, area)),
    )


#: At overview zoom, contours smaller than this many pixels, or than this share of the mask's
#: area, are left unoutlined (they are still filled).
OVERVIEW_MIN_AREA = 256
OVERVIEW_MIN_SHARE = 0.002


def major_contours(contours: tuple[np.ndarray, ...], mask_area: int) -> tuple[np.ndarray, ...]:
    """The contours worth outlining when zoomed out.

    A mask with many specks (SAM's small stray regions; every mask of a random-init model) gets
    thousands of tiny outlines that, zoomed out, merge into a grey mesh hiding the image. They are
    outlined again from 100% zoom on.
    """
    threshold = max(OVERVIEW_MIN_AREA, OVERVIEW_MIN_SHARE * mask_area)
    return tuple(c for c in contours if len(c) >= 3 and abs(cv2.contourArea(c)) >= threshold)


def recolor(overlay: MaskOverlay, color: RGB) -> MaskOverlay:
    """The same overlay painted in another colour."""
    if overlay.empty or color == overlay.color:
        return overlay
    return replace(overlay, color=color, image=paint_mask(overlay.crop, color))


def paint_mask(crop: np.ndarray, color: RGB) -> QImage:
    """``crop`` (0/1) as an opaque ``color`` on transparent, in a QImage that owns its pixels."""
    red, green, blue = color
    pixels = crop.astype(np.uint32)  # 0/1
    pixels *= np.uint32((255 << 24) | (red << 16) | (green << 8) | blue)
    height, width = pixels.shape
    image = QImage(pixels.data, width, height, width * 4, QImage.Format.Format_ARGB32_Premultiplied)
    return image.copy()  # detach from the numpy buffer, which dies with this frame


#: QPainterPath element types as QDataStream writes them (QPainterPath::ElementType).
_MOVE_TO, _LINE_TO = 0, 1
#: One serialised path element: type (int32), x, y (float64), big-endian like QDataStream.
_ELEMENT = np.dtype([("type", ">i4"), ("x", ">f8"), ("y", ">f8")])


def outline_path(contours: tuple[np.ndarray, ...]) -> QPainterPath:
    """The contours as closed sub-paths, built without a Python loop over the points.

    A random-init model's masks have thousands of ragged contours (tens of thousands of points);
    adding them point by point costs ~50 ms of Python holding the GIL. Instead the path is
    written in QPainterPath's QDataStream format with numpy and read back in one call. The result
    is the same as ``addPolygon`` + ``closeSubpath`` per contour (checked by the tests).
    """
    kept = [c for c in contours if len(c) >= 2]
    if not kept:
        return QPainterPath()
    lengths = np.array([len(c) for c in kept])
    ends = np.cumsum(lengths)  # where each ring's closing point (its first point) goes
    flat = np.concatenate(kept)
    points = np.insert(flat, ends, flat[ends - lengths], axis=0)
    starts = ends - lengths + np.arange(len(kept))  # the rings' starts once closed
    elements = np.empty(len(points), _ELEMENT)
    elements["type"] = _LINE_TO
    elements["type"][starts] = _MOVE_TO
    elements["x"] = points[:, 0]
    elements["y"] = points[:, 1]
    header = np.array([len(elements)], ">i4").tobytes()
    trailer = np.array([starts[-1], int(Qt.FillRule.OddEvenFill.value)], ">i4").tobytes()
    stream = QDataStream(QByteArray(header + elements.tobytes() + trailer))
    path = QPainterPath()
    stream >> path
    return path


def _trace(crop: np.ndarray, x0: int, y0: int) -> tuple[np.ndarray, ...]:
    contours, _hierarchy = cv2.findContours(crop, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    offset = np.array([x0 + 0.5, y0 + 0.5], np.float32)  # through pixel centres
    return tuple(c.reshape(-1, 2).astype(np.float32) + offset for c in contours)
