"""export_project: every GUI export kind, progress, cancel without leftovers, holes_report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sam2_annotator.annotations.coco_io import read_project, write_coco
from sam2_annotator.annotations.export_jobs import (
    EXPORT_KINDS,
    ExportOptions,
    HoleEntry,
    default_target,
    export_project,
    holes_report,
)
from sam2_annotator.annotations.exporters import export_masks, export_yolo
from sam2_annotator.annotations.masks import mask_to_polygons
from sam2_annotator.annotations.model import SourceGeometry
from sam2_annotator.annotations.store import ProjectStore
from sam2_annotator.errors import OperationCancelled, ProjectError
from tests.annotations.helpers import PYCOCOTOOLS_NUMPY2_WARNING, blob, ring, write_png

pytestmark = pytest.mark.filterwarnings(PYCOCOTOOLS_NUMPY2_WARNING)

H, W = 60, 80


@pytest.fixture
def store(tmp_path: Path) -> ProjectStore:
    """Three images; image one has a ringed mask (holes) and a two-part mask (no holes)."""
    rng = np.random.default_rng(5)
    store = ProjectStore.create(tmp_path / "project.json", autosave=False)
    person = store.add_category("person")
    car = store.add_category("car")
    images = [
        store.add_image(write_png(tmp_path / "imgs" / f"{name}.png", W, H), W, H)
        for name in ("one", "two", "three")
    ]
    parts = np.zeros((H, W), bool)
    parts[5:20, 5:25] = True
    parts[40:55, 50:75] = True
    store.add_annotation(images[0].id, person.id, parts)
    store.add_annotation(images[0].id, car.id, _donut())
    store.add_annotation(images[1].id, car.id, blob(rng, H, W))
    store.add_annotation(images[2].id, person.id, ring(rng, H, W))
    return store


def _donut() -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    distance = np.hypot(yy - 30, xx - 40)
    return (distance <= 20) & (distance > 8)


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _recorder() -> tuple[list[tuple[int, int, str]], object]:
    calls: list[tuple[int, int, str]] = []
    return calls, lambda done, total, message: calls.append((done, total, message))


def _check_progress(calls: list[tuple[int, int, str]], total: int) -> None:
    done = [c[0] for c in calls]
    assert done == sorted(done) and done[0] == 0 and done[-1] == total
    assert {c[1] for c in calls} == {total}
    assert len(set(done)) == total + 1  # every step reported


def test_holes_report_lists_exactly_the_masks_with_holes(store: ProjectStore) -> None:
    project = store.project
    expected = [
        HoleEntry(a.id, project.images[a.image_id].file_name, mask_to_polygons(a.mask).holes)
        for a in project.annotations.values()
        if mask_to_polygons(a.mask).holes
    ]
    assert [e.annotation_id for e in expected] == [2, 4]
    calls, progress = _recorder()
    assert holes_report(project, progress=progress) == expected
    assert expected[0] == (2, "imgs/one.png", 1)
    _check_progress(calls, 4)


def test_imported_polygons_never_need_the_choice(store: ProjectStore) -> None:
    donut = store.annotation(2)
    kept = dataclasses.replace(donut, original=SourceGeometry([[1, 1, 9, 1, 9, 9]], "polygon"))
    store.project.annotations[2] = kept
    assert [e.annotation_id for e in holes_report(store.project)] == [4]
    rle_original = dataclasses.replace(donut, original=SourceGeometry(donut.rle.to_coco(), "rle"))
    store.project.annotations[2] = rle_original  # an RLE original is re-encoded as polygons
    assert [e.annotation_id for e in holes_report(store.project)] == [2, 4]


@pytest.mark.parametrize(
    ("kind", "segmentation", "holes", "force"),
    [
        ("coco_rle", "rle", "rle", False),
        ("coco_polygon", "polygon", "rle", False),
        ("coco_polygon", "polygon", "fill", True),
    ],
)
def test_coco_kinds_write_what_write_coco_writes(
    store: ProjectStore, tmp_path: Path, kind: str, segmentation: str, holes: str, force: bool
) -> None:
    out = tmp_path / "exports" / "out.json"
    calls, progress = _recorder()
    summary = export_project(
        store.project, out, kind, options=ExportOptions(holes=holes), progress=progress
    )
    reference = out.parent / "reference.json"
    report = write_coco(
        store.project,
        reference,
        segmentation=segmentation,
        force_polygons=force,
        tool_data=False,
        backup=False,
    )
    assert json.loads(out.read_bytes()) == json.loads(reference.read_bytes())
    _check_progress(calls, 4)
    assert summary.kind == kind and summary.out_dir == out.absolute()
    assert (summary.images, summary.annotations, summary.files) == (3, 4, 1)
    assert summary.coco is not None and summary.coco == report
    segmentations = {
        a["id"]: a["segmentation"] for a in json.loads(out.read_bytes())["annotations"]
    }
    if kind == "coco_polygon" and holes == "rle":
        assert report.kept_rle_for_holes == [2, 4]
        assert all(isinstance(segmentations[i], dict) for i in (2, 4))
        assert all(isinstance(segmentations[i], list) for i in (1, 3))
        assert "2 kept as RLE" in summary.line()
    if kind == "coco_polygon" and holes == "fill":
        assert report.holes_filled == [2, 4] and len(summary.warnings) == 2
        assert all(isinstance(s, list) for s in segmentations.values())
    reread, _ = read_project(out, check_images=False)
    assert len(reread.annotations) == 4


@pytest.mark.parametrize(
    ("kind", "reference"),
    [
        ("yolo_seg", lambda p, d: export_yolo(p, d)),
        ("png_instance", lambda p, d: export_masks(p, d, layers=("instances",))),
        ("png_semantic", lambda p, d: export_masks(p, d, layers=("semantic",))),
    ],
)
def test_folder_kinds_write_what_the_exporters_write(
    store: ProjectStore, tmp_path: Path, kind: str, reference
) -> None:
    out = tmp_path / "exports" / kind
    calls, progress = _recorder()
    summary = export_project(store.project, out, kind, progress=progress)
    expected_dir = tmp_path / "reference" / kind
    expected_dir.mkdir(parents=True)
    expected = reference(store.project, expected_dir)
    got, want = _tree(out), _tree(expected_dir)
    if kind == "yolo_seg":  # data.yaml names the folder it is in
        yaml = got.pop("data.yaml").decode()
        assert f'path: "{out.resolve()}"' in yaml
        assert yaml.replace(str(out.resolve()), "X") == want.pop("data.yaml").decode().replace(
            str(expected_dir.resolve()), "X"
        )
    assert got == want
    assert (summary.images, summary.annotations, summary.files) == (3, 4, expected.files)
    assert summary.warnings == expected.warnings
    assert [c[0] for c in calls][-1] == 3 and [c[0] for c in calls][:4] == [0, 1, 2, 3]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_png_kinds_write_one_layer(store: ProjectStore, tmp_path: Path) -> None:
    export_project(store.project, tmp_path / "inst", "png_instance")
    export_project(store.project, tmp_path / "sem", "png_semantic")
    assert sorted(p.name for p in (tmp_path / "inst").iterdir()) == ["instances", "masks.json"]
    assert sorted(p.name for p in (tmp_path / "sem").iterdir()) == ["masks.json", "semantic"]
    inst = json.loads((tmp_path / "inst" / "masks.json").read_text())
    sem = json.loads((tmp_path / "sem" / "masks.json").read_text())
    assert "objects" in inst["images"][0] and "semantic" not in inst["images"][0]
    assert "objects" not in sem["images"][0] and "instances" not in sem["images"][0]
    png = cv2.imread(str(tmp_path / "sem" / sem["images"][0]["semantic"]), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(png)) == {0, 1, 2}


def test_export_into_an_existing_folder_replaces_same_names_only(
    store: ProjectStore, tmp_path: Path
) -> None:
    out = tmp_path / "yolo"
    (out / "labels").mkdir(parents=True)
    (out / "labels" / "one.txt").write_text("stale\n")
    (out / "notes.txt").write_text("mine\n")
    export_project(store.project, out, "yolo_seg")
    assert (out / "notes.txt").read_text() == "mine\n"
    assert (out / "labels" / "one.txt").read_text() != "stale\n"
    assert f'path: "{out.resolve()}"' in (out / "data.yaml").read_text()


def _cancel_after(count: int):
    calls: list[int] = []

    def progress(done: int, total: int, message: str) -> None:
        calls.append(done)

    return calls, progress, lambda: len(calls) >= count


@pytest.mark.parametrize("kind", list(EXPORT_KINDS))
def test_cancel_stops_early_and_leaves_nothing(store: ProjectStore, tmp_path: Path, kind) -> None:
    target = tmp_path / "out" / ("x.json" if EXPORT_KINDS[kind].is_file else "x")
    calls, progress, cancelled = _cancel_after(2)
    with pytest.raises(OperationCancelled):
        export_project(store.project, target, kind, progress=progress, cancelled=cancelled)
    assert calls == [0, 1]  # stopped at the third step
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("kind", ["coco_polygon", "png_semantic"])
def test_cancel_keeps_an_earlier_export(store: ProjectStore, tmp_path: Path, kind: str) -> None:
    target = tmp_path / ("x.json" if EXPORT_KINDS[kind].is_file else "x")
    export_project(store.project, target, kind)
    before = target.read_bytes() if target.is_file() else _tree(target)
    with pytest.raises(OperationCancelled):
        export_project(store.project, target, kind, cancelled=lambda: True)
    assert (target.read_bytes() if target.is_file() else _tree(target)) == before


def test_holes_report_cancels(store: ProjectStore) -> None:
    with pytest.raises(OperationCancelled):
        holes_report(store.project, cancelled=lambda: True)


def test_targets_are_checked(store: ProjectStore, tmp_path: Path) -> None:
    store.save()
    with pytest.raises(ProjectError, match="project's own file"):
        export_project(
            store.project,
            store.path,
            "coco_rle",
            options=ExportOptions(protected=(store.path,)),
        )
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ProjectError, match="needs a folder"):
        export_project(store.project, tmp_path / "afile", "yolo_seg")
    with pytest.raises(ProjectError, match="needs a file name"):
        export_project(store.project, tmp_path / "imgs", "coco_rle")
    with pytest.raises(ProjectError, match="unknown export kind"):
        export_project(store.project, tmp_path / "z", "voc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="holes"):
        export_project(
            store.project,
            tmp_path / "z.json",
            "coco_polygon",
            options=ExportOptions("keep"),  # type: ignore[arg-type]
        )


def test_a_snapshot_exports_like_the_project(store: ProjectStore, tmp_path: Path) -> None:
    export_project(store.project, tmp_path / "a", "yolo_seg")
    export_project(store.project.snapshot(), tmp_path / "b", "yolo_seg")
    assert _tree(tmp_path / "a" / "labels") == _tree(tmp_path / "b" / "labels")
    assert all((tmp_path / "b" / "labels" / f).stat().st_size for f in ("one.txt", "two.txt"))


def test_default_targets(tmp_path: Path) -> None:
    assert default_target("coco_polygon", tmp_path, "proj") == tmp_path / "proj_coco_polygons.json"
    assert default_target("yolo_seg", tmp_path, "proj") == tmp_path / "proj_yolo"
    assert len({EXPORT_KINDS[k].suffix for k in EXPORT_KINDS}) == 5
