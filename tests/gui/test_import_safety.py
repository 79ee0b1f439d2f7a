"""A COCO file another tool wrote is never written to; the window works in a project of its own
beside it, keeps untouched annotations as they came, and never closes on unsaved work silently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from sam2_annotator.annotations import store as store_module
from sam2_annotator.annotations.atomic import ProjectSaveError
from sam2_annotator.annotations.coco_io import read_project, write_coco
from sam2_annotator.app.workspace import sidecar_for
from sam2_annotator.gui import save_prompts
from sam2_annotator.gui.main_window import MainWindow
from sam2_annotator.gui.save_prompts import CloseChoice
from sam2_annotator.gui.settings import AppSettings

TIMEOUT_MS = 20_000


def _polygon(ann_id: int, x: int, y: int, **extra) -> dict:
    return {
        "id": ann_id,
        "image_id": 0,
        "category_id": 0,
        "segmentation": [[x, y, x + 200.5, y, x + 200.5, y + 150.25, x, y + 150.25]],
        "area": 30125.0,
        "bbox": [x, y, 200.5, 150.25],
        "iscrowd": 0,
        **extra,
    }


@pytest.fixture
def third_party(tmp_path: Path, shared_images: dict[str, Path]) -> Path:
    """cars.jpg and a labelme/CVAT-style COCO file: ids from 0, polygons, crowd RLE, extra keys."""
    folder = tmp_path / "dataset"
    folder.mkdir()
    shutil.copy(shared_images["cars"], folder / "cars.jpg")
    crowd_counts = [1500 * 100 + 300, 40, 1500 * 2250 - 150340]  # column 100, rows 300-339
    data = {
        "info": {"description": "from another tool", "year": 2024},
        "licenses": [{"id": 1, "name": "CC-BY"}],
        "images": [{"id": 0, "file_name": "cars.jpg", "width": 2250, "height": 1500}],
        "categories": [
            {"id": 0, "name": "car", "supercategory": "vehicle"},
            {"id": 1, "name": "people", "supercategory": ""},
        ],
        "annotations": [
            _polygon(0, 100, 200, attributes={"occluded": False}),
            _polygon(5, 900, 300, track_id=7),
            {
                "id": 6,
                "image_id": 0,
                "category_id": 1,
                "segmentation": {"size": [1500, 2250], "counts": crowd_counts},
                "area": 40,
                "bbox": [100, 300, 1, 40],
                "iscrowd": 1,
            },
        ],
    }
    path = folder / "instances_default.json"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def open_window(qtbot, path: Path) -> MainWindow:
    window = MainWindow(AppSettings(no_ai=True), ask_for_model=False)
    qtbot.addWidget(window)
    window.resize(1000, 700)
    window.show()
    qtbot.waitExposed(window)
    window.open_path(path)
    qtbot.waitUntil(lambda: window.loaded is not None, timeout=TIMEOUT_MS)
    return window


def test_editing_a_third_party_file_never_writes_it(qtbot, third_party: Path) -> None:
    original = third_party.read_bytes()
    folder_before = sorted(p.name for p in third_party.parent.iterdir())
    looking = open_window(qtbot, third_party)  # only looking writes nothing at all
    looking.close()
    assert sorted(p.name for p in third_party.parent.iterdir()) == folder_before
    window = open_window(qtbot, third_party)
    sidecar = sidecar_for(third_party)
    assert window.workspace.project_path == sidecar and not sidecar.exists()
    assert "instances_default.sam2.json (from instances_default.json)" in window.windowTitle()
    ids = window.annotation_list.ids()
    assert len(ids) == 3 and 0 not in ids  # id 0 renumbered (a repair), 5 and 6 kept
    assert {5, 6} <= set(ids)

    window.annotation_list.select_id(6)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)  # an edit: delete the crowd region
    window.workspace.store.flush(10)
    assert sidecar.is_file()
    window.close()

    assert third_party.read_bytes() == original  # byte-identical, no .bak, nothing else
    after = sorted(p.name for p in third_party.parent.iterdir() if not p.name.endswith(".bak"))
    assert after == sorted([*folder_before, sidecar.name])
    assert not (third_party.parent / (third_party.name + ".bak")).exists()
    source = json.loads(original)
    project, _ = read_project(sidecar)
    assert sorted(project.annotations) == sorted(i for i in ids if i != 6)
    out = third_party.parent / "export.json"
    write_coco(project, out, tool_data=False, backup=False)
    exported = {a["id"]: a for a in json.loads(out.read_text())["annotations"]}
    # untouched: the same polygons, area, bbox, iscrowd and extra keys (category/image ids are
    # renumbered from 0 like the annotation id: those repairs are listed by `coco validate`)
    for key in ("segmentation", "area", "bbox", "iscrowd", "track_id"):
        assert exported[5][key] == source["annotations"][1][key]
    renumbered = next(i for i in exported if i not in (5, 6))
    assert exported[renumbered]["segmentation"] == source["annotations"][0]["segmentation"]
    assert exported[renumbered]["attributes"] == {"occluded": False}


def test_reopening_the_original_offers_to_continue(
    qtbot, third_party: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = open_window(qtbot, third_party)
    window.annotation_list.select_id(5)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)
    window.close()
    asked: list[tuple[str, str]] = []

    def answer(parent, original, sidecar, value):
        asked.append((original.name, sidecar.name))
        return value

    monkeypatch.setattr(save_prompts, "ask_resume", lambda *a: answer(*a, True))
    resumed = open_window(qtbot, third_party)
    assert asked == [("instances_default.json", "instances_default.sam2.json")]
    assert 5 not in resumed.annotation_list.ids() and len(resumed.annotation_list.ids()) == 2
    resumed.close()
    monkeypatch.setattr(save_prompts, "ask_resume", lambda *a: answer(*a, False))
    fresh = open_window(qtbot, third_party)
    assert 5 in fresh.annotation_list.ids() and len(fresh.annotation_list.ids()) == 3
    fresh.close()


def test_closing_with_a_failed_save_asks_and_can_save_elsewhere(
    qtbot, third_party: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    window = open_window(qtbot, third_party)
    real_write = store_module.write_atomic

    def full_disk(path, data, **kwargs):
        if Path(path) == sidecar_for(third_party):
            raise ProjectSaveError(f"cannot save {Path(path).name}: no space left on device")
        real_write(path, data, **kwargs)

    from sam2_annotator.annotations import saver as saver_module

    monkeypatch.setattr(store_module, "write_atomic", full_disk)
    monkeypatch.setattr(saver_module, "write_atomic", full_disk)
    with qtbot.waitSignal(window.save_finished, timeout=TIMEOUT_MS) as finished:
        window.delete_annotations([5])
    assert not finished.args[0].ok
    assert window.error_box.isVisible() and "no space left" in window.error_box.text()

    choices = [CloseChoice.CANCEL, CloseChoice.RETRY, CloseChoice.SAVE_ELSEWHERE]
    reasons: list[str] = []

    def ask(parent, path, reason):
        reasons.append(reason)
        return choices.pop(0)

    elsewhere = tmp_path / "elsewhere" / "rescued.json"
    elsewhere.parent.mkdir()
    monkeypatch.setattr(save_prompts, "ask_unsaved", ask)
    monkeypatch.setattr(save_prompts, "ask_save_path", lambda parent, suggestion: elsewhere)
    assert not window.close()  # cancel: the window stays open with the work in memory
    assert window.isVisible() and window.workspace.store.dirty
    assert window.close()  # retry fails again, then "save elsewhere" writes the rescue file
    assert len(reasons) == 3 and all("no space left" in r for r in reasons)
    rescued, _ = read_project(elsewhere)
    assert 5 not in rescued.annotations and len(rescued.annotations) == 2
