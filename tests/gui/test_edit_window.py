"""Correcting accepted annotations through the real window with the random-init model: one more
click refines the stored prompt and logits (equal to the engine's own answer), Enter replaces the
mask as one undo step, Esc leaves it; a hand-drawn annotation is refined from its mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from sam2_annotator.annotations import ProjectStore
from sam2_annotator.app.tools import mask_to_low_res_logits
from sam2_annotator.engine.types import Prompt
from tests.gui.test_main_window import DECODE_MS, click, make_window, show_image

pytestmark = pytest.mark.slow


def _label(qtbot, window, name: str) -> None:
    qtbot.waitUntil(lambda: window.label_dialog is not None, timeout=5000)
    qtbot.keyClicks(window.label_dialog.edit, name)
    qtbot.keyClick(window.label_dialog.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.label_dialog is None, timeout=5000)


def _stored(window, annotation_id: int) -> np.ndarray:
    window.workspace.store.flush(10)
    store = ProjectStore.open(window.workspace.project_path, check_images=False)
    return store.annotation(annotation_id).mask


def test_refine_an_accepted_annotation_with_one_more_click(
    qtbot, model_dir: Path, image_dir: Path, reference
) -> None:
    window = make_window(qtbot, model_dir)
    path = show_image(qtbot, window, image_dir, "groceries.jpg")
    clicks: list[tuple[float, float, int]] = []
    window.canvas.point_clicked.connect(lambda x, y, p: clicks.append((x, y, int(p))))
    with qtbot.waitSignal(window.mask_shown, timeout=DECODE_MS):
        click(qtbot, window, 400, 260)
    first = reference.engine.decode(reference.get(Path(path)), _prompt(clicks))
    assert np.array_equal(window.canvas.current_mask(), first.mask) and first.mask.any()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    _label(qtbot, window, "thing")
    (annotation_id,) = window.annotation_list.ids()
    accepted = _stored(window, annotation_id)
    assert np.array_equal(accepted, first.mask)

    # Esc leaves it unchanged.
    window.annotation_list.select_id(annotation_id)
    qtbot.keyClick(window.canvas, Qt.Key.Key_E)
    assert window.controller.editing == annotation_id
    with qtbot.waitSignal(window.mask_shown, timeout=DECODE_MS):
        click(qtbot, window, 600, 120, Qt.MouseButton.RightButton)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert window.controller.editing is None
    assert np.array_equal(_stored(window, annotation_id), accepted)
    first_click = clicks[0]
    clicks.clear()

    # E again, one more click: the stored prompt plus the click, refining the stored logits.
    qtbot.keyClick(window.canvas, Qt.Key.Key_E)
    with qtbot.waitSignal(window.mask_shown, timeout=DECODE_MS):
        click(qtbot, window, 650, 300)
    combined = Prompt(
        np.array([first_click[:2], clicks[0][:2]], np.float32),
        np.array([1, 1], np.int64),
        None,
        first.chosen_low_res,  # the logits remembered from the accept
    )
    assert np.array_equal(window.controller.top.points, combined.points)
    refined = reference.engine.decode(reference.get(Path(path)), combined)
    assert np.array_equal(window.canvas.current_mask(), refined.mask)
    assert not np.array_equal(refined.mask, first.mask)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)  # replaces: no label asked
    assert window.label_dialog is None
    assert np.array_equal(_stored(window, annotation_id), refined.mask)
    assert window.annotation_list.ids() == [annotation_id]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(_stored(window, annotation_id), first.mask)  # undo: exactly the old one


def test_a_hand_drawn_annotation_is_refined_from_its_mask(
    qtbot, model_dir: Path, image_dir: Path, reference
) -> None:
    window = make_window(qtbot, model_dir)
    path = show_image(qtbot, window, image_dir, "groceries.jpg")
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=window.canvas.view_pos(300, 200))
    qtbot.mouseMove(viewport, window.canvas.view_pos(450, 260))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=window.canvas.view_pos(450, 260))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    _label(qtbot, window, "painted")
    (annotation_id,) = window.annotation_list.ids()
    painted = _stored(window, annotation_id)
    window.annotation_list.select_id(annotation_id)
    qtbot.keyClick(window.canvas, Qt.Key.Key_S)  # back to SAM clicks
    qtbot.keyClick(window.canvas, Qt.Key.Key_E)
    with qtbot.waitSignal(window.mask_shown, timeout=DECODE_MS):
        click(qtbot, window, 380, 230)
    points = window.controller.top.points
    prompt = Prompt(points, np.array([1], np.int64), None, mask_to_low_res_logits(painted))
    expected = reference.engine.decode(reference.get(Path(path)), prompt)
    assert np.array_equal(window.canvas.current_mask(), expected.mask)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert np.array_equal(_stored(window, annotation_id), expected.mask)


def _prompt(clicks) -> Prompt:
    points = np.array([(x, y) for x, y, _ in clicks], np.float32)
    labels = np.array([label for _, _, label in clicks], np.int64)
    return Prompt(points, labels)
