"""Brush strokes and polygons as exact mask operations."""

from __future__ import annotations

import cv2
import numpy as np

from sam2_annotator.app.tools import (
    PolygonDraft,
    Stroke,
    apply_stroke,
    next_brush_size,
    polygon_vertices,
)


def test_a_stroke_on_a_big_mask_touches_only_its_box() -> None:
    mask = np.zeros((6000, 8000), bool)
    stroke = Stroke(((100.0, 100.0), (300.0, 180.0)), 10)
    box = apply_stroke(mask, stroke)
    assert box == (88, 88, 313, 193)
    expected = np.zeros((6000, 8000), np.uint8)
    cv2.circle(expected, (100, 100), 10, 1, -1)
    cv2.circle(expected, (300, 180), 10, 1, -1)
    cv2.line(expected, (100, 100), (300, 180), 1, 21)
    assert np.array_equal(mask, expected.astype(bool))
    apply_stroke(mask, Stroke(((100.0, 100.0),), 4, add=False))
    assert not mask[100, 100] and mask[100, 92]


def test_polygon_draft_clamps_and_rasterises_with_fillpoly() -> None:
    draft = PolygonDraft((50, 40))
    for x, y in ((-5, 2), (30, 2), (45, 60)):
        draft.add(x, y)
    assert draft.vertices == [(0.0, 2.0), (30.0, 2.0), (40.0, 50.0)]
    expected = np.zeros((50, 40), np.uint8)
    cv2.fillPoly(expected, [np.array([[0, 2], [30, 2], [40, 50]], np.int32)], 1)
    assert np.array_equal(draft.mask(), expected.astype(bool))
    assert draft.nearest_vertex(29, 3, radius=2) == 1 and draft.nearest_vertex(15, 30, 2) is None
    assert polygon_vertices(draft.segmentation()) == draft.vertices
    assert polygon_vertices([[1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]]) is None  # two parts


def test_brush_size_steps() -> None:
    assert next_brush_size(12, True) == 14 and next_brush_size(12, False) == 10
    assert next_brush_size(1, False) == 1 and next_brush_size(500, True) == 500
