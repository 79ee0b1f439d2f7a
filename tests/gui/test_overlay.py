"""Mask overlays: crop, outline and painted image agree with the mask."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtGui import QPainterPath, QPolygonF

from sam2_annotator.gui.canvas import painted_mask
from sam2_annotator.gui.overlay import make_overlay, outline_path, recolor


def ragged_mask(seed: int = 3, shape: tuple[int, int] = (120, 160)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) > 0.55  # many small parts and holes, like a random-init model's
    mask[:5] = False
    return mask


def test_overlay_round_trips_a_ragged_mask() -> None:
    mask = ragged_mask()
    overlay = make_overlay(mask, (10, 20, 30))
    assert np.array_equal(overlay.full_mask(), mask)
    assert np.array_equal(painted_mask(overlay), mask)
    assert overlay.area == int(mask.sum())
    assert overlay.y0 >= 5 and len(overlay.contours) > 10


def test_fast_outline_equals_the_point_by_point_path() -> None:
    overlay = make_overlay(ragged_mask(5))
    slow = QPainterPath()
    for contour in overlay.contours:
        slow.addPolygon(QPolygonF([QPointF(x, y) for x, y in contour.tolist()]))
        slow.closeSubpath()
    fast = outline_path(overlay.contours)
    assert fast.elementCount() == slow.elementCount() > 100
    assert fast == slow


def test_empty_mask_has_no_image_and_no_outline() -> None:
    overlay = make_overlay(np.zeros((30, 40), bool))
    assert overlay.empty and overlay.image is None and overlay.outline.isEmpty()
    assert not overlay.full_mask().any()
    assert outline_path(()).isEmpty()


def test_recolor_keeps_the_shape() -> None:
    overlay = make_overlay(ragged_mask(7), (255, 0, 0))
    green = recolor(overlay, (0, 255, 0))
    assert green.color == (0, 255, 0)
    assert np.array_equal(painted_mask(green), overlay.full_mask())
    pixel = green.image.pixelColor(int(np.argmax(green.crop[0])), 0)
    assert (pixel.red(), pixel.green(), pixel.blue()) == (0, 255, 0)


def test_annotation_overlays_are_built_in_the_background(qtbot) -> None:
    from sam2_annotator.annotations import Annotation
    from sam2_annotator.gui.annotation_overlays import AnnotationOverlays

    mask = ragged_mask(9)
    annotation = Annotation.from_mask(1, 1, 1, mask)
    overlays = AnnotationOverlays()
    try:
        with qtbot.waitSignal(overlays.ready, timeout=5000):
            assert overlays.get(annotation, (255, 0, 0)) is None  # queued
        red = overlays.get(annotation, (255, 0, 0))
        assert red is not None and np.array_equal(red.full_mask(), mask)
        with qtbot.waitSignal(overlays.ready, timeout=5000):
            assert overlays.get(annotation, (0, 0, 255)) is red  # the old one meanwhile
        blue = overlays.get(annotation, (0, 0, 255))
        assert blue.color == (0, 0, 255) and not overlays.busy
    finally:
        overlays.shutdown()
    assert overlays.get(Annotation.from_mask(2, 1, 1, mask), (1, 2, 3)) is None  # closed: no work


def test_void_qt_calls_do_not_exhaust_none() -> None:
    """PySide6 6.12.0 on Python < 3.12 drops a reference to None per void call (see _compat);
    with the guard, a million such calls must leave None alive."""
    import sys

    from PySide6.QtCore import QPointF

    point = QPointF()
    for _ in range(1_000_000):
        point.setX(1.0)
    assert sys.getrefcount(None) > 1000
