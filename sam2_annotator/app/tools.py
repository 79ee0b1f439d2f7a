"""Hand tools as mask operations (no Qt): the polygon being drawn and brush/eraser strokes.

The window forwards mouse positions in image pixels; these classes hold the geometry and produce
exact masks with OpenCV (``cv2.fillPoly`` for polygons, ``cv2.circle``/``cv2.line`` for strokes),
so a test can compute the expected pixels with the same primitives.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from sam2_annotator.engine.types import LOW_RES

ToolName = Literal["prompt", "polygon", "brush", "eraser"]
#: Every tool of the window, in the order their keys are documented.
TOOLS: tuple[ToolName, ...] = ("prompt", "polygon", "brush", "eraser")

MIN_BRUSH = 1
MAX_BRUSH = 500
#: Logit magnitude given to a binary mask used as SAM2's mask prompt (inside +, outside -).
MASK_PROMPT_LOGIT = 10.0


def mask_to_low_res_logits(mask: np.ndarray) -> np.ndarray:
    """A binary ``(H, W)`` mask as SAM2's ``mask_input``: ``(256, 256)`` float32 logits.

    SAM2 resizes the image to 1024x1024 without keeping the aspect ratio and its low-res masks
    cover that whole square, so the mask is resized to 256x256 the same way (area average), and
    the covered fraction is mapped to +-:data:`MASK_PROMPT_LOGIT`.
    """
    fraction = cv2.resize(mask.astype(np.float32), (LOW_RES, LOW_RES), interpolation=cv2.INTER_AREA)
    return ((fraction * 2.0 - 1.0) * MASK_PROMPT_LOGIT).astype(np.float32)


# =========================================================================== polygon


@dataclass
class PolygonDraft:
    """The vertices of the polygon being drawn or edited, in image pixels.

    ``annotation_id`` is set when an existing polygon annotation is being edited.
    """

    shape: tuple[int, int]  # (H, W) of the image
    vertices: list[tuple[float, float]] = field(default_factory=list)
    annotation_id: int | None = None

    @property
    def closable(self) -> bool:
        return len(self.vertices) >= 3

    def add(self, x: float, y: float) -> None:
        height, width = self.shape
        self.vertices.append((min(max(x, 0.0), width), min(max(y, 0.0), height)))

    def remove_last(self) -> bool:
        if not self.vertices:
            return False
        self.vertices.pop()
        return True

    def move(self, index: int, x: float, y: float) -> None:
        height, width = self.shape
        self.vertices[index] = (min(max(x, 0.0), width), min(max(y, 0.0), height))

    def nearest_vertex(self, x: float, y: float, radius: float) -> int | None:
        return nearest_vertex(self.vertices, x, y, radius)

    def insert_on_edge(self, x: float, y: float, radius: float) -> int | None:
        """Insert a vertex where ``(x, y)`` lies within ``radius`` of an edge; its index."""
        if len(self.vertices) < 2:
            return None
        best, best_distance = None, radius
        count = len(self.vertices)
        for index in range(count):
            a, b = self.vertices[index], self.vertices[(index + 1) % count]
            distance = _distance_to_segment((x, y), a, b)
            if distance <= best_distance:
                best, best_distance = index + 1, distance
        if best is not None:
            self.vertices.insert(best, (x, y))
        return best

    def mask(self) -> np.ndarray:
        """The filled polygon as a bool ``(H, W)`` mask (``cv2.fillPoly`` on rounded vertices)."""
        return polygon_mask(self.shape, self.vertices)

    def segmentation(self) -> list[list[float]]:
        """COCO polygon segmentation of this polygon (one part)."""
        return [[float(v) for vertex in self.vertices for v in vertex]]


def nearest_vertex(
    vertices: Sequence[tuple[float, float]], x: float, y: float, radius: float
) -> int | None:
    """The index of the vertex within ``radius`` pixels of ``(x, y)`` (the closest), if any."""
    best, best_distance = None, radius
    for index, (vx, vy) in enumerate(vertices):
        distance = math.hypot(vx - x, vy - y)
        if distance <= best_distance:
            best, best_distance = index, distance
    return best


def polygon_mask(shape: tuple[int, int], vertices: Sequence[tuple[float, float]]) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    if len(vertices) >= 3:
        points = np.round(np.asarray(vertices, np.float64)).astype(np.int32)
        cv2.fillPoly(canvas, [points], 1)
    return canvas.astype(bool)


def polygon_vertices(segmentation: object) -> list[tuple[float, float]] | None:
    """The vertices of a one-part COCO polygon segmentation, ``None`` for anything else."""
    if not (isinstance(segmentation, list) and len(segmentation) == 1):
        return None
    flat = segmentation[0]
    if not isinstance(flat, list) or len(flat) < 6 or len(flat) % 2:
        return None
    return [(float(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]


def _distance_to_segment(
    p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]
) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    length = dx * dx + dy * dy
    t = 0.0 if length == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


# =========================================================================== brush


@dataclass(frozen=True)
class Stroke:
    """One press-drag-release of the brush (``add``) or eraser (``add=False``)."""

    points: tuple[tuple[float, float], ...]
    radius: int
    add: bool = True

    def bounds(self, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of the pixels this stroke can touch, clipped to ``shape``."""
        height, width = shape
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        pad = self.radius + 2
        x0 = max(0, math.floor(min(xs)) - pad)
        y0 = max(0, math.floor(min(ys)) - pad)
        x1 = min(width, math.ceil(max(xs)) + pad + 1)
        y1 = min(height, math.ceil(max(ys)) + pad + 1)
        return x0, y0, x1, y1


def apply_stroke(mask: np.ndarray, stroke: Stroke) -> tuple[int, int, int, int] | None:
    """Paint (or erase) ``stroke`` into the bool ``mask`` in place; the touched box.

    Only the stroke's bounding box is converted and drawn into, so a stroke on an 8000x6000 mask
    costs what its own pixels cost.
    """
    if not stroke.points:
        return None
    x0, y0, x1, y1 = stroke.bounds(mask.shape)
    if x1 <= x0 or y1 <= y0:
        return None
    region = np.zeros((y1 - y0, x1 - x0), np.uint8)
    points = [(round(x - x0), round(y - y0)) for x, y in stroke.points]
    for point in points:
        cv2.circle(region, point, stroke.radius, 1, thickness=-1)
    for start, end in itertools.pairwise(points):
        cv2.line(region, start, end, 1, thickness=2 * stroke.radius + 1)
    view = mask[y0:y1, x0:x1]
    if stroke.add:
        view |= region.astype(bool)
    else:
        view &= ~region.astype(bool)
    return x0, y0, x1, y1


def clamp_brush(radius: int) -> int:
    return max(MIN_BRUSH, min(MAX_BRUSH, int(radius)))


def next_brush_size(radius: int, bigger: bool) -> int:
    """``[`` / ``]``: about 20 % smaller/bigger, at least one pixel of change."""
    step = max(1, round(radius * 0.2))
    return clamp_brush(radius + step if bigger else radius - step)
