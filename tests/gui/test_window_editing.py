"""The window without a model: navigation, annotation list edits, export, drops, settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent

from sam2_annotator.annotations import TOOL_KEY
from sam2_annotator.app.workspace import PROJECT_FILE_NAME
from sam2_annotator.gui import dialogs, main_window
from sam2_annotator.gui.main_window import MainWindow
from sam2_annotator.gui.settings import AppSettings

TIMEOUT_MS = 20_000


def open_window(qtbot, path: Path | None = None, **settings) -> MainWindow:
    window = MainWindow(AppSettings(no_ai=True, **settings), ask_for_model=False)
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    if path is not None:
        window.open_path(path)
        qtbot.waitUntil(lambda: window.loaded is not None, timeout=TIMEOUT_MS)
    return window


def saved(project_dir: Path, window: MainWindow) -> dict:
    """The project file once the window's saver has written every queued edit."""
    window.workspace.store.flush(10)
    return json.loads((project_dir / PROJECT_FILE_NAME).read_text(encoding="utf-8"))


def test_navigation_keys_and_file_list(qtbot, project_dir) -> None:
    window = open_window(qtbot, project_dir)
    names = [p.name for p in window.image_paths]
    assert names == ["cars.jpg", "groceries.jpg", "truck.jpg"]
    assert window.file_list.count_of(str(project_dir / "cars.jpg")) == 2
    for key, expected in ((Qt.Key.Key_D, 1), (Qt.Key.Key_PageDown, 2), (Qt.Key.Key_D, 2),
                          (Qt.Key.Key_A, 1), (Qt.Key.Key_PageUp, 0)):  # fmt: skip
        qtbot.keyClick(window.canvas, key)
        assert window.current_index == expected
    window.file_list.setCurrentRow(2)
    assert window.current_index == 2
    qtbot.waitUntil(lambda: window.loaded is not None and window.loaded.path.endswith("truck.jpg"),
                    timeout=TIMEOUT_MS)  # fmt: skip
    assert "truck.jpg (3/3)" in window.windowTitle()


def test_annotation_list_select_hide_relabel_delete_undo(qtbot, project_dir) -> None:
    window = open_window(qtbot, project_dir)
    assert window.annotation_list.ids() == [1, 2]
    qtbot.waitUntil(lambda: window.canvas.annotation_ids() == [1, 2], timeout=TIMEOUT_MS)

    window.annotation_list.select_id(2)
    assert window.canvas.annotation_item(2).highlighted
    window.annotation_list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert not window.canvas.annotation_item(1).isVisible()

    window.relabel(2)
    qtbot.waitUntil(lambda: window.label_dialog is not None, timeout=5000)
    qtbot.keyClicks(window.label_dialog.edit, "truck")
    qtbot.keyClick(window.label_dialog.edit, Qt.Key.Key_Return)
    data = saved(project_dir, window)
    names = {c["id"]: c["name"] for c in data["categories"]}
    assert [names[a["category_id"]] for a in data["annotations"]] == ["car", "truck"]
    assert "truck" in window.annotation_list.item(1).text()

    window.annotation_list.select_id(1)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)
    assert [a["id"] for a in saved(project_dir, window)["annotations"]] == [2]
    assert window.canvas.annotation_ids() == [2]
    assert window.file_list.count_of(str(project_dir / "cars.jpg")) == 1
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [a["id"] for a in saved(project_dir, window)["annotations"]] == [1, 2]
    qtbot.waitUntil(lambda: window.canvas.annotation_ids() == [1, 2], timeout=TIMEOUT_MS)
    assert not window.canvas.annotation_item(1).isVisible()  # still hidden by the user


def test_opacity_and_visibility_toggles(qtbot, project_dir) -> None:
    window = open_window(qtbot, project_dir)
    qtbot.waitUntil(lambda: window.canvas.annotation_ids() == [1, 2], timeout=TIMEOUT_MS)
    window.opacity_slider.setValue(80)
    assert window.canvas.annotation_layer.opacity == pytest.approx(0.8)
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert not window.canvas.annotation_layer.visible
    assert not window.canvas.annotation_item(2).isVisible()
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert window.canvas.annotation_item(2).isVisible()


def test_export_from_the_file_menu_writes_polygons(qtbot, project_dir, tmp_path) -> None:
    window = open_window(qtbot, project_dir)
    qtbot.keyClick(window.canvas, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    dialog = window.opening.export_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.set_kind("coco_polygon")
    target = tmp_path / "export.json"
    dialog.set_target(target)
    qtbot.waitUntil(lambda: dialog.holes() is not None, timeout=TIMEOUT_MS)
    assert dialog.holes() == []  # two rectangles: nothing to choose
    with qtbot.waitSignal(dialog.exported, timeout=TIMEOUT_MS):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    data = json.loads(target.read_text(encoding="utf-8"))
    assert len(data["annotations"]) == 2
    assert all(isinstance(a["segmentation"], list) for a in data["annotations"])
    assert TOOL_KEY not in json.dumps(data)
    dialog.close()


def test_drop_a_folder_opens_it_and_remembers_it(qtbot, project_dir) -> None:
    window = open_window(qtbot)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(project_dir))])
    event = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    window.dropEvent(event)
    assert [p.name for p in window.image_paths] == ["cars.jpg", "groceries.jpg", "truck.jpg"]
    assert AppSettings.load().recent_projects == [str(project_dir.resolve())]
    assert [a.text() for a in window.recent_menu.actions()] == [str(project_dir.resolve())]


def test_opening_a_broken_project_shows_an_error_and_keeps_going(qtbot, tmp_path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json", encoding="utf-8")
    window = open_window(qtbot)
    window.open_path(broken)
    assert window.error_box.isVisible() and not window.error_box.isModal()
    assert "broken.json" in window.error_box.text()
    assert window.workspace is None


def test_window_geometry_is_restored(qtbot) -> None:
    first = open_window(qtbot)
    first.resize(700, 500)
    first.close()
    second = MainWindow(AppSettings(no_ai=True), ask_for_model=False)
    qtbot.addWidget(second)
    assert (second.width(), second.height()) == (700, 500)


def test_no_model_asks_once_and_remembers_without_ai(qtbot, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SAM2_ANNOTATOR_DATA_DIR", str(tmp_path / "data"))  # no installed models
    shown: list[str] = []

    def fake_exec(dialog: dialogs.FirstRunDialog) -> int:
        shown.append("first-run")
        dialog.model_folder = None
        return dialogs.FirstRunDialog.DialogCode.Accepted

    monkeypatch.setattr(dialogs.FirstRunDialog, "exec", fake_exec)
    window = MainWindow(AppSettings(), ask_for_model=True)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: shown == ["first-run"], timeout=5000)
    assert AppSettings.load().no_ai
    assert "no model" in window.status_model.text()
    window.close()
    again = MainWindow(AppSettings.load(), ask_for_model=True)
    qtbot.addWidget(again)
    # The window would ask from a zero-delay timer; one queued after it has fired by now.
    flushed: list[bool] = []
    QTimer.singleShot(0, lambda: flushed.append(True))
    qtbot.waitUntil(lambda: flushed == [True], timeout=5000)
    assert shown == ["first-run"]


def test_a_model_folder_that_fails_shows_a_non_modal_error(qtbot, tmp_path) -> None:
    window = MainWindow(AppSettings(), model_dir=tmp_path / "nothing", ask_for_model=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.error_box.isVisible(), timeout=TIMEOUT_MS)
    assert "nothing" in window.error_box.text()
    assert "no model" in window.status_model.text()


def test_images_that_cannot_be_read_are_reported(qtbot, tmp_path, shared_images) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(shared_images["cars"], folder / "a.jpg")
    (folder / "b.jpg").write_bytes(b"not a jpeg")
    window = open_window(qtbot, folder)
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: window.error_box.isVisible(), timeout=TIMEOUT_MS)
    assert "b.jpg" in window.error_box.text()
    assert window.file_list.state_of(str(folder / "b.jpg")) == "failed"
    assert not window.canvas.busy.isVisible()


def test_action_table_has_unique_shortcuts_and_live_handlers(qtbot) -> None:
    from sam2_annotator.gui.actions import resolve

    window = open_window(qtbot)
    seen: dict[str, str] = {}
    for spec in main_window.ACTIONS:
        for shortcut in spec.shortcuts:
            assert shortcut not in seen, f"{shortcut} used by {seen[shortcut]} and {spec.name}"
            seen[shortcut] = spec.name
        assert callable(resolve(window, spec.handler)), spec.handler


def test_ctrl_click_selects_and_double_click_corrects_the_annotation_under_the_cursor(
    qtbot, project_dir
) -> None:
    window = open_window(qtbot, project_dir)
    qtbot.waitUntil(lambda: window.canvas.annotation_ids() == [1, 2], timeout=TIMEOUT_MS)
    viewport, canvas = window.canvas.viewport(), window.canvas
    ctrl = Qt.KeyboardModifier.ControlModifier
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, ctrl, canvas.view_pos(1100, 600))
    assert window.annotation_list.selected_ids() == [2]
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, ctrl, canvas.view_pos(2000, 1400))
    assert window.annotation_list.selected_ids() == []  # nothing there
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=canvas.view_pos(250, 400))
    assert window.controller.editing == 1 and window.annotation_list.selected_ids() == [1]
