"""The categories dock in the window: add, rename, merge, delete and the number keys, each checked
in the project file on disk and undone."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt

from sam2_annotator.gui.main_window import MainWindow
from sam2_annotator.gui.settings import AppSettings

TIMEOUT_MS = 20_000


def on_disk(window: MainWindow) -> tuple[dict[int, str], dict[int, str]]:
    """(category id -> name, annotation id -> category name) as saved."""
    window.workspace.store.flush(10)
    data = json.loads(window.workspace.project_path.read_text(encoding="utf-8"))
    names = {c["id"]: c["name"] for c in data["categories"]}
    return names, {a["id"]: names[a["category_id"]] for a in data["annotations"]}


def undo(qtbot, window: MainWindow) -> None:
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)


def test_category_edits_and_number_keys(qtbot, project_dir: Path) -> None:
    window = MainWindow(AppSettings(no_ai=True, labels=["truck"]), ask_for_model=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.open_path(project_dir)
    qtbot.waitUntil(lambda: window.loaded is not None, timeout=TIMEOUT_MS)
    window.canvas.setFocus()
    panel = window.categories.panel
    assert [r.name for r in panel.rows()] == ["car", "truck"]  # the predefined label was added
    assert on_disk(window)[0] == {1: "car", 2: "truck"}

    # number key 2 gives the 2nd category to the selection; undo takes it back
    window.annotation_list.select_id(2)
    qtbot.keyClick(window.canvas, Qt.Key.Key_2)
    assert on_disk(window)[1] == {1: "car", 2: "truck"}
    assert "truck" in window.annotation_list.item(1).text()
    assert [r.count for r in panel.rows()] == [1, 1]
    undo(qtbot, window)
    assert on_disk(window)[1] == {1: "car", 2: "car"}
    qtbot.keyClick(window.canvas, Qt.Key.Key_2)

    panel.rename_requested.emit(2, "lorry")
    assert on_disk(window) == ({1: "car", 2: "lorry"}, {1: "car", 2: "lorry"})
    assert "lorry" in window.annotation_list.item(1).text()
    undo(qtbot, window)
    assert on_disk(window)[0] == {1: "car", 2: "truck"}

    panel.merge_requested.emit(2, 1)  # truck into car
    assert on_disk(window) == ({1: "car"}, {1: "car", 2: "car"})
    assert [r.name for r in panel.rows()] == ["car"]
    undo(qtbot, window)
    assert on_disk(window) == ({1: "car", 2: "truck"}, {1: "car", 2: "truck"})

    panel.delete_requested.emit(2, "move", 1)
    assert on_disk(window) == ({1: "car"}, {1: "car", 2: "car"})
    undo(qtbot, window)
    panel.delete_requested.emit(2, "delete", None)
    assert on_disk(window) == ({1: "car"}, {1: "car"})
    assert window.annotation_list.ids() == [1]
    undo(qtbot, window)
    assert on_disk(window) == ({1: "car", 2: "truck"}, {1: "car", 2: "truck"})
    assert window.annotation_list.ids() == [1, 2]

    # iscrowd toggle on the selection, undoable
    window.annotation_list.select_id(1)
    qtbot.keyClick(window.canvas, Qt.Key.Key_C, Qt.KeyboardModifier.ShiftModifier)
    window.workspace.store.flush(10)
    data = json.loads(window.workspace.project_path.read_text(encoding="utf-8"))
    assert [a["iscrowd"] for a in data["annotations"]] == [1, 0]
    assert "[crowd]" in window.annotation_list.item(0).text()
    undo(qtbot, window)
    window.workspace.store.flush(10)
    data = json.loads(window.workspace.project_path.read_text(encoding="utf-8"))
    assert [a["iscrowd"] for a in data["annotations"]] == [0, 0]
