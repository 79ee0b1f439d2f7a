"""File → Export…: each format through the dialog, the holes choice, cancel and errors."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from shiboken6 import isValid

from sam2_annotator.annotations import export_jobs
from sam2_annotator.annotations.export_jobs import EXPORT_KINDS, ExportOptions, export_project
from sam2_annotator.annotations.store import ProjectStore
from sam2_annotator.gui.export_dialog import ExportDialog, run_export_dialog
from sam2_annotator.gui.jobs import running_jobs, shutdown_jobs
from tests.annotations.helpers import PYCOCOTOOLS_NUMPY2_WARNING, write_png

pytestmark = pytest.mark.filterwarnings(PYCOCOTOOLS_NUMPY2_WARNING)

H, W = 40, 50


def _ring() -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    distance = np.hypot(yy - 20, xx - 25)
    return (distance <= 15) & (distance > 6)


@pytest.fixture
def store(tmp_path: Path) -> ProjectStore:
    store = ProjectStore.create(tmp_path / "project.json", autosave=False)
    cat = store.add_category("cat")
    dog = store.add_category("dog")
    first = store.add_image(write_png(tmp_path / "imgs" / "a.png", W, H), W, H)
    second = store.add_image(write_png(tmp_path / "imgs" / "b.png", W, H), W, H)
    square = np.zeros((H, W), bool)
    square[5:15, 5:20] = True
    store.add_annotation(first.id, cat.id, square)
    store.add_annotation(first.id, dog.id, _ring())
    store.add_annotation(second.id, cat.id, ~square)
    store.save()
    return store


@pytest.fixture
def no_holes_store(tmp_path: Path) -> ProjectStore:
    store = ProjectStore.create(tmp_path / "plain.json", autosave=False)
    cat = store.add_category("cat")
    image = store.add_image(write_png(tmp_path / "imgs" / "c.png", W, H), W, H)
    square = np.zeros((H, W), bool)
    square[5:15, 5:20] = True
    store.add_annotation(image.id, cat.id, square)
    return store


@pytest.fixture(autouse=True)
def _no_leftover_jobs(qtbot):
    yield
    shutdown_jobs(10_000)
    qtbot.waitUntil(lambda: not running_jobs(), timeout=10_000)


def _dialog(qtbot, store: ProjectStore, tmp_path: Path) -> ExportDialog:
    dialog = ExportDialog(
        None, store.project, tmp_path / "out", name="proj", protected=(store.path,)
    )
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _contents(path: Path) -> object:
    if path.is_file():
        return json.loads(path.read_bytes())
    tree = _tree(path)
    tree.pop("data.yaml", None)  # names its own folder
    return tree


def _export(qtbot, dialog: ExportDialog) -> None:
    with qtbot.waitSignal(dialog.exported, timeout=30_000):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=10_000)


def _wait_for_holes(qtbot, dialog: ExportDialog) -> None:
    qtbot.waitUntil(lambda: dialog.holes() is not None, timeout=10_000)


@pytest.mark.parametrize("kind", list(EXPORT_KINDS))
def test_each_format_writes_what_the_core_writes(
    qtbot, store: ProjectStore, tmp_path: Path, kind: str
) -> None:
    dialog = _dialog(qtbot, store, tmp_path)
    dialog.set_kind(kind)
    target = tmp_path / "out" / f"proj{EXPORT_KINDS[kind].suffix}"
    assert dialog.target() == target  # the default, next to the project
    assert dialog.target_label.text() == ("File:" if EXPORT_KINDS[kind].is_file else "Folder:")
    if kind == "coco_polygon":
        _wait_for_holes(qtbot, dialog)
    _export(qtbot, dialog)
    assert target.exists()
    reference = tmp_path / "ref" / target.name
    expected = export_project(store.project, reference, kind)
    assert _contents(target) == _contents(reference)
    summary = dialog.last_summary
    assert summary is not None and summary.kind == kind
    assert (summary.images, summary.annotations, summary.files) == (
        expected.images,
        expected.annotations,
        expected.files,
    )
    assert dialog.status_label.text() == summary.line()
    assert summary.warnings == expected.warnings
    if kind == "yolo_seg":  # YOLO fills the holes (the ring's, the inverted square's), and says so
        assert [w.split()[1] for w in summary.warnings] == ["2", "3"]
    assert dialog.warnings_label.isVisible() == bool(summary.warnings)
    if summary.warnings:
        assert dialog.warnings_label.text() == "\n".join(summary.warnings)
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum()
    assert not dialog.error_label.isVisible()


@pytest.mark.parametrize("choice", ["rle", "fill"])
def test_polygon_export_lists_holes_and_honours_the_choice(
    qtbot, store: ProjectStore, tmp_path: Path, choice: str
) -> None:
    dialog = _dialog(qtbot, store, tmp_path)
    assert dialog.holes_group.isHidden()
    dialog.set_kind("coco_polygon")
    assert dialog.holes_group.isVisible()
    _wait_for_holes(qtbot, dialog)
    assert [e.annotation_id for e in dialog.holes()] == [2, 3]
    assert dialog.holes_list.count() == 2
    assert dialog.holes_list.item(0).text() == "annotation 2 in imgs/a.png: 1 hole"
    assert dialog.keep_rle.isChecked() and dialog.keep_rle.isVisible()
    if choice == "fill":
        qtbot.mouseClick(dialog.fill_holes, Qt.MouseButton.LeftButton)
        assert dialog.fill_holes.isChecked()
    target = tmp_path / "polys.json"
    dialog.set_target(target)
    _export(qtbot, dialog)
    segmentations = {
        a["id"]: a["segmentation"] for a in json.loads(target.read_bytes())["annotations"]
    }
    assert isinstance(segmentations[1], list)
    for hole_id in (2, 3):
        assert isinstance(segmentations[hole_id], dict if choice == "rle" else list)
    reference = tmp_path / "ref.json"
    export_project(store.project, reference, "coco_polygon", options=ExportOptions(holes=choice))
    assert json.loads(target.read_bytes()) == json.loads(reference.read_bytes())


def test_polygon_export_without_holes_says_so(
    qtbot, no_holes_store: ProjectStore, tmp_path: Path
) -> None:
    dialog = _dialog(qtbot, no_holes_store, tmp_path)
    dialog.set_kind("coco_polygon")
    _wait_for_holes(qtbot, dialog)
    assert dialog.holes() == []
    assert "No mask has holes" in dialog.holes_status.text()
    assert dialog.holes_list.isHidden() and dialog.keep_rle.isHidden()
    assert dialog.export_button.isEnabled()


def test_export_waits_for_the_holes_scan(qtbot, store: ProjectStore, tmp_path, monkeypatch) -> None:
    release = threading.Event()
    real = export_jobs.holes_report

    def slow_report(project, **kwargs):
        release.wait(10)
        return real(project, **kwargs)

    monkeypatch.setattr("sam2_annotator.gui.export_dialog.holes_report", slow_report)
    dialog = _dialog(qtbot, store, tmp_path)
    dialog.set_kind("coco_polygon")
    assert not dialog.export_button.isEnabled()
    assert "Looking for masks" in dialog.holes_status.text()
    release.set()
    _wait_for_holes(qtbot, dialog)
    assert dialog.export_button.isEnabled()


def test_cancel_stops_the_export_and_leaves_nothing(
    qtbot, store: ProjectStore, tmp_path: Path, monkeypatch
) -> None:
    started = threading.Event()
    release = threading.Event()
    real_step = export_jobs.exporters.step

    def gated_step(progress, cancelled, done, total, message):
        if done == 1:  # hold the export inside its loop until the test has pressed Cancel
            started.set()
            release.wait(10)
        real_step(progress, cancelled, done, total, message)

    monkeypatch.setattr(export_jobs.exporters, "step", gated_step)
    dialog = _dialog(qtbot, store, tmp_path)
    dialog.set_kind("yolo_seg")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert started.wait(10)
    assert dialog.cancel_button.isEnabled() and not dialog.export_button.isEnabled()
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    release.set()
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=10_000)
    assert dialog.status_label.text() == "Export cancelled; nothing was written."
    assert dialog.last_summary is None
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert dialog.export_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_errors_are_shown_in_the_dialog(qtbot, store: ProjectStore, tmp_path: Path) -> None:
    dialog = _dialog(qtbot, store, tmp_path)
    dialog.set_target(store.path)  # the project file itself
    job = dialog.start_export()
    assert job is not None
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=10_000)
    assert dialog.error_label.isVisible()
    assert "project's own file" in dialog.error_label.text()
    dialog.set_target("")
    assert dialog.start_export() is None and "Choose where" in dialog.error_label.text()


def test_targets_are_kept_per_format(qtbot, store: ProjectStore, tmp_path: Path) -> None:
    dialog = _dialog(qtbot, store, tmp_path)
    dialog.set_kind("yolo_seg")
    qtbot.keyClicks(dialog.target_edit, "_v2")
    dialog.set_kind("coco_rle")
    assert dialog.target().name == "proj_coco_rle.json"
    dialog.set_kind("yolo_seg")
    assert dialog.target().name == "proj_yolo_v2"


def test_run_export_dialog_opens_window_modal(qtbot, store: ProjectStore, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QWidget

    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    dialog = run_export_dialog(window, store.project, tmp_path, name="p")
    assert dialog.isVisible() and dialog.isModal()
    assert dialog.target() == tmp_path / "p_coco_rle.json"
    _export(qtbot, dialog)
    assert (tmp_path / "p_coco_rle.json").is_file()
    dialog.close_button.click()
    qtbot.waitUntil(lambda: not isValid(dialog), timeout=10_000)  # deleted on close
