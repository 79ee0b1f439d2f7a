"""Polygon, brush and eraser through the real window (mouse and keys), with no model loaded; and
the per-image flags and the image-list filter."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from sam2_annotator.annotations import ProjectStore, project_to_coco
from sam2_annotator.app.workspace import PROJECT_FILE_NAME
from sam2_annotator.gui.main_window import MainWindow
from sam2_annotator.gui.settings import AppSettings

TIMEOUT_MS = 20_000


def open_window(qtbot, folder: Path, name: str = "groceries.jpg") -> MainWindow:
    window = MainWindow(AppSettings(no_ai=True), ask_for_model=False)
    qtbot.addWidget(window)
    window.resize(1100, 750)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.open_path(folder)
    path = str((folder / name).resolve())
    window.go_to([str(p) for p in window.image_paths].index(path))
    qtbot.waitUntil(lambda: window.loaded is not None and window.loaded.path == path,
                    timeout=TIMEOUT_MS)  # fmt: skip
    window.canvas.setFocus()
    return window


def view(window: MainWindow, x: float, y: float) -> QPoint:
    return window.canvas.view_pos(x, y)


def label(qtbot, window: MainWindow, name: str) -> None:
    qtbot.waitUntil(lambda: window.label_dialog is not None, timeout=5000)
    qtbot.keyClicks(window.label_dialog.edit, name)
    qtbot.keyClick(window.label_dialog.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.label_dialog is None, timeout=5000)


def saved_project(window: MainWindow) -> ProjectStore:
    window.workspace.store.flush(10)
    return ProjectStore.open(window.workspace.project_path, check_images=False)


def drag(qtbot, window: MainWindow, points: list[tuple[float, float]]) -> None:
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=view(window, *points[0]))
    for x, y in points[1:]:
        qtbot.mouseMove(viewport, view(window, x, y))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=view(window, *points[-1]))


def test_polygon_tool_without_a_model_and_vertex_drag(qtbot, image_dir: Path) -> None:
    window = open_window(qtbot, image_dir)
    assert window.model is None
    qtbot.keyClick(window.canvas, Qt.Key.Key_P)
    assert window.controller.tool == "polygon"
    vertices: list[tuple[float, float]] = []
    window.tools.vertex_added.connect(lambda x, y: vertices.append((x, y)))
    for x, y in ((120, 100), (420, 110), (400, 380), (140, 350)):
        qtbot.mouseClick(
            window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=view(window, x, y)
        )
    assert len(vertices) == 4
    qtbot.keyClick(window.canvas, Qt.Key.Key_Backspace)  # removes the last vertex...
    assert window.controller.polygon.vertices == vertices[:3]
    qtbot.mouseClick(
        window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=view(window, 140, 350)
    )
    vertices = vertices[:3] + vertices[4:]  # ...and it is clicked again
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    label(qtbot, window, "shelf")

    project = saved_project(window)
    (annotation,) = project.project.annotations.values()
    expected = np.zeros((window.loaded.height, window.loaded.width), np.uint8)
    cv2.fillPoly(expected, [np.round(np.array(vertices)).astype(np.int32)], 1)
    assert expected.sum() > 50_000
    assert np.array_equal(annotation.mask, expected.astype(bool))
    flat = [[v for vertex in vertices for v in vertex]]
    saved = json.loads(window.workspace.project_path.read_text())["annotations"][0]
    assert saved["sam2_annotator"]["polygon"] == flat  # the exact mask as RLE, the vertices kept
    exported, _ = project_to_coco(project.project, segmentation="rle", tool_data=False)
    assert exported["annotations"][0]["segmentation"] == flat  # every export writes the polygon

    # Correct it: E opens its vertices; drag the second one; Enter saves; Ctrl+Z undoes.
    window.annotation_list.select_id(annotation.id)
    qtbot.keyClick(window.canvas, Qt.Key.Key_E)
    assert window.controller.polygon.annotation_id == annotation.id
    old = vertices[1]
    drag(qtbot, window, [old, (old[0] + 60, old[1] + 90), (old[0] + 120, old[1] + 180)])
    moved = window.controller.polygon.vertices
    assert moved[0] == vertices[0] and moved[2:] == vertices[2:]
    assert moved[1] != old and moved[1][0] > old[0] + 100
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    edited = saved_project(window).annotation(annotation.id)
    expected_moved = np.zeros_like(expected)
    cv2.fillPoly(expected_moved, [np.round(np.array(moved)).astype(np.int32)], 1)
    assert np.array_equal(edited.mask, expected_moved.astype(bool))
    assert not np.array_equal(edited.mask, annotation.mask)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(saved_project(window).annotation(annotation.id).mask, annotation.mask)


def _stroke_mask(shape, points, radius: int) -> np.ndarray:
    """The expected pixels: a cv2.circle at every point, cv2.line between them."""
    out = np.zeros(shape, np.uint8)
    pixels = [(round(x), round(y)) for x, y in points]
    for point in pixels:
        cv2.circle(out, point, radius, 1, thickness=-1)
    for a, b in itertools.pairwise(pixels):
        cv2.line(out, a, b, 1, thickness=2 * radius + 1)
    return out.astype(bool)


def test_brush_paints_and_eraser_removes_exactly(qtbot, image_dir: Path) -> None:
    window = open_window(qtbot, image_dir)
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)
    for _ in range(3):
        qtbot.keyClick(window.canvas, Qt.Key.Key_BracketRight)
    radius = window.editing.brush_radius
    assert radius > 12 and window.tools.brush_radius == radius
    assert f"brush {radius} px" in window.status.tool.text()
    strokes = []
    window.tools.stroke_finished.connect(strokes.append)
    drag(qtbot, window, [(100, 100), (250, 140), (400, 300), (420, 420)])
    (stroke,) = strokes
    assert stroke.add and stroke.radius == radius and len(stroke.points) >= 3
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    label(qtbot, window, "painted")
    shape = (window.loaded.height, window.loaded.width)
    painted = _stroke_mask(shape, stroke.points, radius)
    (annotation,) = saved_project(window).project.annotations.values()
    assert np.array_equal(annotation.mask, painted)

    # The eraser on the selected annotation removes exactly its stroke's pixels.
    window.annotation_list.select_id(annotation.id)
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)
    drag(qtbot, window, [(100, 300), (300, 120), (450, 150)])
    erase = strokes[-1]
    assert not erase.add
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    erased = saved_project(window).annotation(annotation.id).mask
    expected = painted & ~_stroke_mask(shape, erase.points, erase.radius)
    assert np.array_equal(erased, expected) and erased.sum() < painted.sum()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(saved_project(window).annotation(annotation.id).mask, painted)


def test_esc_drops_a_painting_and_saves_nothing(qtbot, image_dir: Path) -> None:
    window = open_window(qtbot, image_dir)
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)
    with qtbot.waitSignal(window.editing.draft_shown, timeout=TIMEOUT_MS):  # built off-thread
        drag(qtbot, window, [(100, 100), (200, 200)])
    assert window.controller.draft is not None and window.canvas.current_mask() is not None
    assert np.array_equal(window.canvas.current_mask(), window.controller.draft.mask)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert window.controller.draft is None and window.canvas.current_mask() is None
    assert not (image_dir / PROJECT_FILE_NAME).exists()


@pytest.fixture
def annotated(image_dir: Path) -> Path:
    store = ProjectStore.create(image_dir / PROJECT_FILE_NAME)
    image = store.add_image(image_dir / "cars.jpg", width=2250, height=1500)
    car = store.add_category("car")
    mask = np.zeros((1500, 2250), bool)
    mask[100:400, 200:600] = True
    store.add_annotation(image.id, car.id, mask)
    return image_dir


def test_flags_filter_and_counts(qtbot, annotated: Path) -> None:
    window = open_window(qtbot, annotated, "cars.jpg")
    assert "1/3 annotated · 0 done · 0 to review · 1 object" in window.status.counts.text()
    qtbot.keyClick(window.canvas, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    record = saved_project(window).project.image_by_path(annotated / "cars.jpg")
    assert record.flag("done") and not record.flag("review")
    assert "1 done" in window.status.counts.text()
    bar = window.images_panel.filter_bar
    bar.flagged.setChecked(True)
    assert [Path(p).name for p in window.file_list.shown_paths()] == ["cars.jpg"]
    bar.flagged.setChecked(False)
    bar.unannotated.setChecked(True)
    assert [Path(p).name for p in window.file_list.shown_paths()] == ["groceries.jpg", "truck.jpg"]
    bar.unannotated.setChecked(False)
    bar.text.setText("TRU")
    assert [Path(p).name for p in window.file_list.shown_paths()] == ["truck.jpg"]
    bar.text.setText("")
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    record = saved_project(window).project.image_by_path(annotated / "cars.jpg")
    assert not record.flag("done") and "0 done" in window.status.counts.text()
    window.close()
    data = json.loads((annotated / PROJECT_FILE_NAME).read_text())
    assert all("done" not in json.dumps(i) for i in data["images"])


def test_undo_while_drawing_never_undoes_a_saved_edit(qtbot, image_dir: Path) -> None:
    window = open_window(qtbot, image_dir)
    qtbot.keyClick(window.canvas, Qt.Key.Key_P)
    viewport = window.canvas.viewport()
    for x, y in ((100, 100), (300, 100), (300, 300)):
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=view(window, x, y))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    label(qtbot, window, "box")
    (annotation_id,) = window.annotation_list.ids()
    for x, y in ((400, 100), (500, 100)):
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=view(window, x, y))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(window.controller.polygon.vertices) == 1  # the last vertex, not the annotation
    assert window.annotation_list.ids() == [annotation_id]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    # Correcting it while it gets deleted: Enter reports it, nothing is saved, nothing crashes.
    window.annotation_list.select_id(annotation_id)
    qtbot.keyClick(window.canvas, Qt.Key.Key_E)
    assert window.controller.polygon.annotation_id == annotation_id
    assert window.controller.drawing  # an open edit: Ctrl+Z would act on its vertices
    window.delete_annotations([annotation_id])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert "was deleted meanwhile" in window.error_box.text()
    assert saved_project(window).project.annotations == {}
