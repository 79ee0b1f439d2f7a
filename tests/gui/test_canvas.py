"""The canvas without a model: mouse and key gestures, zoom, overlays, large images."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent

from sam2_annotator.gui.canvas import AnnotationShape, Canvas, painted_mask
from sam2_annotator.gui.overlay import make_overlay
from sam2_annotator.gui.pyramid import build_pyramid, level_for_scale

WIDTH, HEIGHT = 600, 400


@pytest.fixture
def canvas(qtbot) -> Canvas:
    view = Canvas()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    rgb = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    view.set_image(build_pyramid(rgb))
    return view


def near(point: tuple[float, float], expected: tuple[float, float], tolerance: float) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(point, expected, strict=True))


def test_clicks_report_image_coordinates_and_labels(qtbot, canvas) -> None:
    tolerance = 1.0 / canvas.zoom + 0.01  # one screen pixel
    for button, modifier, positive in (
        (Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, True),
        (Qt.MouseButton.RightButton, Qt.KeyboardModifier.NoModifier, False),
        (Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, False),
    ):
        with qtbot.waitSignal(canvas.point_clicked) as blocker:
            qtbot.mouseClick(canvas.viewport(), button, modifier, canvas.view_pos(120.0, 80.0))
        x, y, label = blocker.args
        assert near((x, y), (120.0, 80.0), tolerance) and label is positive


def test_clicks_outside_the_image_are_ignored(qtbot, canvas) -> None:
    with qtbot.assertNotEmitted(canvas.point_clicked):
        qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=canvas.view_pos(-20, 50))


def test_drag_draws_a_box_clamped_to_the_image(qtbot, canvas) -> None:
    viewport = canvas.viewport()
    start, end = canvas.view_pos(500.0, 300.0), canvas.view_pos(700.0, 100.0)
    with (
        qtbot.waitSignal(canvas.box_drawn) as blocker,
        qtbot.assertNotEmitted(canvas.point_clicked),
    ):
        qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
        qtbot.mouseMove(viewport, (start + end) / 2)
        qtbot.mouseMove(viewport, end)
        qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)
    x0, y0, x1, y1 = blocker.args
    tolerance = 1.0 / canvas.zoom + 0.01
    assert near((x0, y0, x1, y1), (500.0, 100.0, WIDTH, 300.0), tolerance)


def wheel(canvas: Canvas, at: QPoint, notches: int) -> None:
    event = QWheelEvent(
        QPointF(at),
        QPointF(canvas.viewport().mapToGlobal(at)),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    canvas.wheelEvent(event)


def test_wheel_zooms_around_the_cursor(canvas) -> None:
    fit = canvas.zoom
    anchor = canvas.view_pos(150.0, 100.0)
    before = canvas.image_pos(anchor)
    wheel(canvas, anchor, 3)
    assert canvas.zoom == pytest.approx(fit * 1.25**3)
    after = canvas.image_pos(anchor)
    assert near((after.x(), after.y()), (before.x(), before.y()), 1.0 / canvas.zoom + 0.01)
    wheel(canvas, anchor, -40)  # zooming out stops at a quarter of "fit"
    view = canvas.viewport().rect()
    assert canvas.zoom == pytest.approx(min(view.width() / WIDTH, view.height() / HEIGHT) / 4)
    canvas.fit_to_window()
    assert canvas.zoom == pytest.approx(fit)


def test_middle_drag_and_space_drag_pan(qtbot, canvas) -> None:
    canvas.zoom_to(4.0)
    viewport = canvas.viewport()
    centre = viewport.rect().center()
    before = canvas.image_pos(centre)
    qtbot.mousePress(viewport, Qt.MouseButton.MiddleButton, pos=centre)
    qtbot.mouseMove(viewport, centre + QPoint(40, 0))
    qtbot.mouseRelease(viewport, Qt.MouseButton.MiddleButton, pos=centre + QPoint(40, 0))
    assert canvas.image_pos(centre).x() == pytest.approx(before.x() - 40 / 4.0, abs=0.5)

    with (
        qtbot.assertNotEmitted(canvas.accept_requested),
        qtbot.assertNotEmitted(canvas.point_clicked),
    ):
        canvas.setFocus()
        qtbot.keyPress(canvas, Qt.Key.Key_Space)
        qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=centre)
        qtbot.mouseMove(viewport, centre + QPoint(0, 40))
        qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=centre + QPoint(0, 40))
        qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.image_pos(centre).y() == pytest.approx(before.y() - 40 / 4.0, abs=0.5)


def test_space_tap_accepts_and_tab_cycles(qtbot, canvas) -> None:
    canvas.setFocus()
    with qtbot.waitSignal(canvas.accept_requested, timeout=1000):
        qtbot.keyClick(canvas, Qt.Key.Key_Space)
    with qtbot.waitSignal(canvas.cycle_requested, timeout=1000):
        qtbot.keyClick(canvas, Qt.Key.Key_Tab)
    assert canvas.hasFocus()  # Tab did not move the focus away


def test_current_mask_is_painted_where_the_mask_is(canvas) -> None:
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[100:300, 50:250] = True
    mask[150:200, 100:150] = False  # a hole
    overlay = make_overlay(mask)
    assert (overlay.x0, overlay.y0, overlay.crop.shape) == (50, 100, (200, 200))
    assert np.array_equal(overlay.full_mask(), mask)
    canvas.set_mask_opacity(1.0)
    canvas.set_current_mask(overlay)
    assert np.array_equal(canvas.current_mask(), mask)
    assert np.array_equal(painted_mask(overlay), mask)
    shot = canvas.viewport().grab().toImage()
    inside = shot.pixelColor(canvas.view_pos(150.0, 120.0))
    hole = shot.pixelColor(canvas.view_pos(125.0, 175.0))
    assert (inside.red(), inside.green(), inside.blue()) == overlay.color
    assert (hole.red(), hole.green(), hole.blue()) == (90, 90, 90)
    canvas.set_current_mask(make_overlay(np.zeros((HEIGHT, WIDTH), bool)))
    assert canvas.current_mask() is None  # an empty mask shows nothing


def test_annotations_toggle_and_highlight(canvas) -> None:
    masks = [np.zeros((HEIGHT, WIDTH), bool) for _ in range(2)]
    masks[0][10:50, 10:50] = True
    masks[1][100:150, 200:260] = True
    canvas.annotation_layer.set_shapes(
        AnnotationShape(i + 1, make_overlay(m, (200, 40, 40))) for i, m in enumerate(masks)
    )
    assert canvas.annotation_ids() == [1, 2]
    canvas.annotation_layer.set_visible(2, False)
    assert not canvas.annotation_item(2).isVisible() and canvas.annotation_item(1).isVisible()
    canvas.annotation_layer.set_all_visible(False)
    assert not canvas.annotation_item(1).isVisible()
    canvas.annotation_layer.set_all_visible(True)
    assert canvas.annotation_item(1).isVisible() and not canvas.annotation_item(2).isVisible()
    canvas.annotation_layer.highlight(1)
    assert canvas.annotation_item(1).highlighted and not canvas.annotation_item(2).highlighted
    canvas.annotation_layer.remove(1)
    assert canvas.annotation_ids() == [2]


def test_point_markers_follow_the_prompt(canvas) -> None:
    canvas.set_prompt(
        np.array([[10, 10], [20, 20]], np.float32), np.array([1, 0]), np.array([5, 5, 50, 60])
    )
    assert canvas.point_count == 2
    canvas.clear_prompt()
    assert canvas.point_count == 0


@pytest.mark.parametrize(
    ("scale", "count", "level"), [(1.0, 4, 0), (0.6, 4, 0), (0.5, 4, 1), (0.1, 4, 3), (0.01, 2, 1)]
)
def test_pyramid_level_choice(scale: float, count: int, level: int) -> None:
    assert level_for_scale(scale, count) == level


def test_a_large_image_repaints_fast(qtbot, canvas) -> None:
    rgb = np.zeros((6000, 8000, 3), np.uint8)
    rgb[::7] = 200
    pyramid = build_pyramid(rgb)
    assert [(p.width(), p.height()) for p in pyramid] == [
        (8000, 6000), (4000, 3000), (2000, 1500), (1000, 750)
    ]  # fmt: skip
    canvas.set_image(pyramid)
    mask = np.zeros((6000, 8000), bool)
    mask[1000:5000, 2000:7000] = True
    canvas.set_current_mask(make_overlay(mask))
    timings = []
    for zoom in (canvas.zoom, 1.0, 4.0):
        canvas.zoom_to(zoom)
        start = time.perf_counter()
        canvas.viewport().repaint()
        timings.append((time.perf_counter() - start) * 1000.0)
    print(f"\n8000x6000 repaint ms at fit/100%/400%: {[round(t, 1) for t in timings]}")
    assert max(timings) < 100.0
