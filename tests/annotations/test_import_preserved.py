"""Annotations the user did not touch are written back as they came: same polygons, crowd RLE,
id, iscrowd and extra keys, in the project file and in every export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sam2_annotator.annotations.coco_io import project_to_coco, read_project
from sam2_annotator.annotations.store import ProjectStore
from tests.annotations.helpers import PYCOCOTOOLS_NUMPY2_WARNING, write_png

pytestmark = pytest.mark.filterwarnings(PYCOCOTOOLS_NUMPY2_WARNING)

POLYGON = {
    "id": 7,
    "image_id": 1,
    "category_id": 1,
    "segmentation": [[1.5, 1.25, 12.0, 1.0, 12.5, 9.75, 1.0, 9.0], [14, 2, 18, 2, 18, 6]],
    "area": 99.5,
    "bbox": [1.0, 1.0, 17.0, 8.75],
    "iscrowd": 0,
    "attributes": {"occluded": True},
    "track_id": 3,
}
CROWD = {
    "id": 9,
    "image_id": 1,
    "category_id": 2,
    "segmentation": {"size": [12, 20], "counts": [30, 6, 6, 6, 6, 6, 180]},
    "area": 24,
    "bbox": [2, 6, 3, 6],
    "iscrowd": 1,
}


def _third_party(tmp_path: Path) -> Path:
    write_png(tmp_path / "a.png", 20, 12)
    data = {
        "images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 12, "flickr": "x"}],
        "categories": [
            {"id": 1, "name": "cat", "supercategory": "animal"},
            {"id": 2, "name": "crowd", "supercategory": ""},
        ],
        "annotations": [POLYGON, CROWD],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def _by_id(data: dict) -> dict[int, dict]:
    return {a["id"]: a for a in data["annotations"]}


@pytest.mark.parametrize("segmentation", ["rle", "polygon"])
def test_untouched_annotations_are_exported_verbatim(tmp_path: Path, segmentation: str) -> None:
    project, report = read_project(_third_party(tmp_path))
    assert report.foreign
    data, export = project_to_coco(project, segmentation=segmentation, tool_data=False)
    out = _by_id(data)
    assert out[7] == POLYGON  # every key, the same polygons, the file's own area and bbox
    assert out[9] == CROWD  # the crowd RLE stays uncompressed RLE, as it came
    assert export.kept_original == 2


def test_an_edited_mask_is_reencoded_and_the_rest_kept(tmp_path: Path) -> None:
    source = _third_party(tmp_path)
    original_bytes = source.read_bytes()
    store = ProjectStore.import_coco(source, tmp_path / "instances.sam2.json")
    mask = np.zeros((12, 20), bool)
    mask[3:8, 4:9] = True
    store.replace_mask(7, mask)
    assert source.read_bytes() == original_bytes
    saved = _by_id(json.loads(store.path.read_text()))
    assert saved[7]["segmentation"] != POLYGON["segmentation"]
    assert isinstance(saved[7]["segmentation"], dict) and saved[7]["area"] == 25
    assert saved[7]["attributes"] == {"occluded": True} and saved[7]["track_id"] == 3
    assert {k: v for k, v in saved[9].items() if k != "sam2_annotator"} == CROWD
    store.undo()  # undo brings back the imported geometry itself
    data, _ = project_to_coco(store.project, tool_data=False)
    assert _by_id(data)[7] == POLYGON
    # reopening our project file keeps the untouched annotations verbatim too
    reopened, report = read_project(store.path)
    assert not report.foreign
    data, _ = project_to_coco(reopened, segmentation="polygon", tool_data=False)
    assert _by_id(data)[7] == POLYGON and _by_id(data)[9] == CROWD


def test_repaired_geometry_is_not_kept_verbatim(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png", 20, 12)
    entry = dict(POLYGON, segmentation=[[1, 1, 12, 1, 12, 9], [3, 3, 4, 4]])  # 2nd part degenerate
    data = {
        "images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 12}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [entry],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    project, report = read_project(path)
    assert report.codes()["degenerate_polygon"] == 1
    written, export = project_to_coco(project, segmentation="polygon", tool_data=False)
    assert export.kept_original == 0
    assert written["annotations"][0]["segmentation"] != entry["segmentation"]
