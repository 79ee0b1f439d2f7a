"""YOLO segmentation and PNG mask exports."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from sam2_annotator.annotations.exporters import EXPORTERS, export, join_parts, output_stems
from sam2_annotator.annotations.masks import iou, polygons_to_mask
from sam2_annotator.annotations.store import ProjectStore
from sam2_annotator.errors import ProjectError
from tests.annotations.helpers import PYCOCOTOOLS_NUMPY2_WARNING, blob, ring, write_png

pytestmark = pytest.mark.filterwarnings(PYCOCOTOOLS_NUMPY2_WARNING)

H, W = 60, 80


@pytest.fixture
def store(tmp_path: Path) -> ProjectStore:
    """Two images: a two-part object, a donut, a plain blob and an overlapping small square."""
    rng = np.random.default_rng(2)
    store = ProjectStore.create(tmp_path / "project.json", autosave=False)
    person = store.add_category("person")
    car = store.add_category("car, red")
    first = store.add_image(write_png(tmp_path / "imgs" / "one.png", W, H), W, H)
    second = store.add_image(write_png(tmp_path / "imgs" / "two.png", W, H), W, H)
    parts = np.zeros((H, W), bool)
    parts[5:20, 5:25] = True
    parts[40:55, 50:75] = True
    store.add_annotation(first.id, person.id, parts)
    store.add_annotation(first.id, car.id, ring(rng, H, W))
    big = blob(rng, H, W)
    store.add_annotation(second.id, car.id, big)
    small = np.zeros((H, W), bool)
    small[28:33, 38:43] = True
    store.add_annotation(second.id, person.id, small)
    store.save()
    return store


def _yolo_mask(line: str, height: int, width: int) -> tuple[int, np.ndarray]:
    values = line.split()
    points = np.array([float(v) for v in values[1:]]).reshape(-1, 2) * [width, height]
    return int(values[0]), polygons_to_mask([points.ravel().tolist()], height, width)


def test_yolo_export(store: ProjectStore, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "yolo"
    with caplog.at_level(logging.WARNING, logger="sam2_annotator"):
        summary = export("yolo", store.project, out)
    assert summary.images == 2 and summary.annotations == 4
    donut = store.annotations_for(1)[1]
    assert len(summary.warnings) == 1 and f"annotation {donut.id}" in summary.warnings[0]
    assert "hole" in caplog.text

    lines = (out / "labels" / "one.txt").read_text().splitlines()
    assert len(lines) == 2  # the two-part object is ONE line
    for line, annotation in zip(lines, store.annotations_for(1), strict=True):
        class_index, mask = _yolo_mask(line, H, W)
        assert class_index == annotation.category_id - 1
        assert all(0.0 <= float(v) <= 1.0 for v in line.split()[1:])
        expected = annotation.mask
        if annotation.id == donut.id:
            expected = polygons_to_mask([p.ravel().tolist() for p in _outer(annotation.mask)], H, W)
        assert iou(mask, expected) >= 0.99
    assert len((out / "labels" / "two.txt").read_text().splitlines()) == 2
    assert (out / "images" / "one.png").is_file() and (out / "images" / "two.png").is_file()

    yaml = (out / "data.yaml").read_text(encoding="utf-8")
    assert f"path: {json.dumps(str(out.resolve()))}" in yaml
    assert '  0: "person"' in yaml and '  1: "car, red"' in yaml
    assert "train: images" in yaml and "val: images" in yaml


def _outer(mask: np.ndarray) -> list[np.ndarray]:
    from sam2_annotator.annotations.masks import mask_to_polygons

    return [np.asarray(p).reshape(-1, 2) for p in mask_to_polygons(mask).parts]


def test_join_parts_makes_one_ring_through_every_part() -> None:
    a = np.array([[0, 0], [4, 0], [4, 4], [0, 4]], float)
    b = a + np.array([10, 0])
    c = a + np.array([0, 10])
    joined = join_parts([a, b, c])
    assert len(joined) == 3 * 4 + 2 * 2  # every vertex, plus both ends of each bridge again
    for part in (a, b, c):
        assert all(any((row == joined).all(axis=1)) for row in part)
    mask = polygons_to_mask([joined.ravel().tolist()], 20, 20)
    expected = polygons_to_mask([p.ravel().tolist() for p in (a, b, c)], 20, 20)
    assert iou(mask, expected) >= 0.95


def test_png_masks_export(store: ProjectStore, tmp_path: Path) -> None:
    out = tmp_path / "masks"
    summary = export("masks", store.project, out)
    assert summary.images == 2 and summary.annotations == 4
    index = json.loads((out / "masks.json").read_text())
    assert [c["name"] for c in index["classes"]] == ["person", "car, red"]
    for entry in index["images"]:
        instances = cv2.imread(str(out / entry["instances"]), cv2.IMREAD_UNCHANGED)
        semantic = cv2.imread(str(out / entry["semantic"]), cv2.IMREAD_UNCHANGED)
        assert instances.dtype == np.uint16 and instances.shape == (H, W)
        assert semantic.dtype == np.uint8
        covered = np.zeros((H, W), bool)
        for obj in reversed(entry["objects"]):  # topmost (smallest) first
            mask = store.annotation(obj["annotation_id"]).mask
            visible = mask & ~covered
            assert np.array_equal(instances == obj["value"], visible)
            assert (semantic[visible] == obj["category_id"]).all()  # class index + 1 == id here
            covered |= mask
        assert np.array_equal(instances > 0, covered)
        assert np.array_equal(semantic > 0, covered)
    # The small square lies inside the big blob and still shows completely.
    second = index["images"][1]["objects"]
    assert [o["annotation_id"] for o in second] == [3, 4]


def test_output_names_do_not_collide(tmp_path: Path) -> None:
    store = ProjectStore.create(tmp_path / "p.json", autosave=False)
    for folder in ("a", "b"):
        store.add_image(tmp_path / folder / "x.png", 4, 4)
    store.add_image(tmp_path / "c" / "y.png", 4, 4)
    store.add_image(tmp_path / "c" / "X_1.jpg", 4, 4)  # clashes with the renamed a/x.png
    names = list(output_stems(store.project).values())
    assert names[:3] == ["x_1", "x_2", "y"] and names[3].casefold() not in {"x_1", "x_2", "y"}
    summary = export("masks", store.project, tmp_path / "out")
    assert summary.images == 4 and len(list((tmp_path / "out" / "instances").iterdir())) == 4


def test_unknown_format_and_registry(store: ProjectStore, tmp_path: Path) -> None:
    assert set(EXPORTERS) == {"yolo", "masks"}
    with pytest.raises(ProjectError, match="unknown export format 'voc'"):
        export("voc", store.project, tmp_path / "x")


def test_missing_images_are_reported_in_yolo(store: ProjectStore, tmp_path: Path) -> None:
    (tmp_path / "imgs" / "two.png").unlink()
    summary = export("yolo", store.project, tmp_path / "yolo")
    assert any("two.png" in w and "not found" in w for w in summary.warnings)
    assert (tmp_path / "yolo" / "labels" / "two.txt").is_file()
