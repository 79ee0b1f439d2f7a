"""Reading any COCO file to continue work, and writing files every COCO consumer accepts."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import COCOeval

from sam2_annotator.annotations.coco_io import (
    ISSUE_CODES,
    project_to_coco,
    read_project,
    write_coco,
)
from sam2_annotator.annotations.masks import mask_to_rle
from sam2_annotator.annotations.model import TOOL_KEY
from sam2_annotator.annotations.store import ProjectStore
from sam2_annotator.errors import ProjectError
from tests.annotations.helpers import (
    MEASURED,
    PYCOCOTOOLS_NUMPY2_WARNING,
    build_store,
    coco_from_file,
    minimal_coco,
    ring,
    write_png,
)

pytestmark = pytest.mark.filterwarnings(PYCOCOTOOLS_NUMPY2_WARNING)


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _self_ap(path: Path) -> float:
    """COCOeval (segm) of a file's annotations, as detections with score 1, against itself."""
    gt = coco_from_file(path)
    detections = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "segmentation": gt.annToRLE(a),  # results must be RLE; polygons are converted
            "score": 1.0,
        }
        for a in gt.dataset["annotations"]
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(gt, gt.loadRes(detections), "segm")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0])


def _decoded_masks(path: Path) -> list[np.ndarray]:
    """Every annotation's mask as pycocotools decodes it, in file order."""
    coco = coco_from_file(path)
    return [coco.annToMask(a).astype(bool) for a in coco.dataset["annotations"]]


# --------------------------------------------------------------------------- writing


@pytest.mark.parametrize("segmentation", ["rle", "polygon"])
def test_cocoeval_of_exported_file_against_itself_is_ap_1(
    tmp_path: Path, segmentation: str
) -> None:
    store = build_store(tmp_path, images=4, per_image=7)
    out = tmp_path / f"export-{segmentation}.json"
    report = write_coco(store.project, out, segmentation=segmentation, tool_data=False)
    ap = _self_ap(out)
    assert ap == pytest.approx(1.0)
    if segmentation == "polygon":
        assert report.polygon > 0 and report.kept_rle_for_holes  # both kinds in the file
    MEASURED[f"COCOeval self AP ({segmentation})"] = (
        f"{ap:.3f} over {len(store.project.annotations)}"
    )


def test_exported_file_decodes_to_the_project_masks(tmp_path: Path) -> None:
    store = build_store(tmp_path, images=3, per_image=7)
    out = tmp_path / "export.json"
    write_coco(store.project, out)
    decoded = _decoded_masks(out)
    expected = [a.mask for a in store.project.annotations.values()]
    assert len(decoded) == len(expected) == 21
    assert all(np.array_equal(d, e) for d, e in zip(decoded, expected, strict=True))
    data = json.loads(out.read_text())
    for entry, annotation in zip(data["annotations"], expected, strict=True):
        assert entry["area"] == int(annotation.sum())
        assert entry["iscrowd"] == 0
        assert isinstance(entry["segmentation"]["counts"], str)  # compressed RLE


def test_tool_fields_live_under_one_key(tmp_path: Path) -> None:
    store = build_store(tmp_path, images=1, per_image=2)
    data, _ = project_to_coco(store.project)
    annotation = data["annotations"][0]
    assert set(annotation) == {
        "id",
        "image_id",
        "category_id",
        "segmentation",
        "area",
        "bbox",
        "iscrowd",
        TOOL_KEY,
    }
    assert set(annotation[TOOL_KEY]) == {"prompts", "score", "created", "edited"}
    assert annotation[TOOL_KEY]["prompts"]["labels"] == [1, 0]
    assert data["categories"][0][TOOL_KEY]["color"] == list(store.categories[0].color)
    assert data[TOOL_KEY]["format"] == 1
    assert data["images"][0]["file_name"] == "images/img0.png"  # relative to the project file
    clean, _ = project_to_coco(store.project, tool_data=False)
    assert TOOL_KEY not in json.dumps(clean)


def test_polygon_export_keeps_holes_as_rle_unless_forced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ProjectStore.create(tmp_path / "p.json")
    image = store.add_image(tmp_path / "x.png", 40, 40)
    category = store.add_category("donut")
    donut = store.add_annotation(image.id, category.id, ring(np.random.default_rng(1), 40, 40))
    plain = np.zeros((40, 40), bool)
    plain[:5, :5] = True
    square = store.add_annotation(image.id, category.id, plain)

    data, report = project_to_coco(store.project, segmentation="polygon")
    segs = {a["id"]: a["segmentation"] for a in data["annotations"]}
    assert isinstance(segs[donut.id], dict)  # RLE, holes intact
    assert isinstance(segs[square.id], list)
    assert report.kept_rle_for_holes == [donut.id] and not report.warnings

    with caplog.at_level(logging.WARNING, logger="sam2_annotator"):
        data, report = project_to_coco(store.project, segmentation="polygon", force_polygons=True)
    forced = next(a for a in data["annotations"] if a["id"] == donut.id)
    assert isinstance(forced["segmentation"], list)
    assert report.holes_filled == [donut.id]
    assert f"annotation {donut.id}" in report.warnings[0]
    assert f"annotation {donut.id}" in caplog.text and "hole" in caplog.text
    assert forced["area"] > donut.area  # area of what was written: holes filled


def test_nan_score_cannot_reach_the_file(tmp_path: Path) -> None:
    store = ProjectStore.create(tmp_path / "p.json")
    image = store.add_image(tmp_path / "x.png", 4, 4)
    category = store.add_category("a")
    with pytest.raises(ValueError, match="finite"):
        store.add_annotation(image.id, category.id, np.ones((4, 4), bool), score=float("nan"))


# --------------------------------------------------------------------------- reading


def test_imports_every_segmentation_form(tmp_path: Path) -> None:
    mask = np.zeros((8, 10), bool)
    mask[2:6, 3:7] = True
    compressed = mask_to_rle(mask).to_coco()
    data = minimal_coco()
    data["annotations"].append(
        {"id": 3, "image_id": 1, "category_id": 1, "segmentation": compressed, "iscrowd": 0}
    )
    data["annotations"].append(
        {"id": 4, "image_id": 1, "category_id": 1, "segmentation": [1, 1, 4, 1, 4, 4]}
    )
    data["annotations"].append({"id": 5, "image_id": 1, "category_id": 2, "bbox": [0, 0, 2, 3]})
    project, report = read_project(_write(tmp_path / "in.json", data), check_images=False)
    annotations = project.annotations
    assert report.segmentations == {
        "polygon": 1,
        "uncompressed_rle": 1,
        "rle": 1,
        "flat_polygon": 1,
        "bbox": 1,
    }
    expected_polygon = np.zeros((8, 10), bool)
    expected_polygon[1:4, 1:5] = True
    assert np.array_equal(annotations[1].mask, expected_polygon)
    reference = mask_utils.decode(
        mask_utils.frPyObjects(data["annotations"][1]["segmentation"], 8, 10)
    )
    assert annotations[2].area == 10 and np.array_equal(annotations[2].mask, reference)
    assert np.array_equal(annotations[3].mask, mask)
    assert annotations[5].bbox == (0.0, 0.0, 2.0, 3.0) and annotations[5].area == 6
    assert {i.code for i in report.issues} == {"flat_polygon", "bbox_only"}


def test_ids_from_zero_duplicates_and_category_zero(tmp_path: Path) -> None:
    data = minimal_coco()
    data["categories"].append({"id": 0, "name": "background-ish"})
    annotations = data["annotations"]
    annotations[0]["id"] = 0
    annotations[1]["id"] = 7
    annotations[1]["category_id"] = 0
    duplicate = dict(annotations[1])
    missing = {k: v for k, v in annotations[0].items() if k != "id"}
    annotations += [duplicate, missing]
    path = _write(tmp_path / "in.json", data)
    project, report = read_project(path, check_images=False)

    assert sorted(project.annotations) == [7, 8, 9, 10]  # 7 kept; 0, the duplicate, none renumbered
    assert 0 in project.categories and project.annotations[7].category_id == 0
    assert report.codes() == {"renumbered_id": 1, "duplicate_id": 1, "missing_id": 1}
    assert "id 0 -> id 8" in report.of("renumbered_id")[0].message
    assert all(issue.code in ISSUE_CODES for issue in report.issues)

    # COCOeval cannot match a ground truth with id 0; after the repair it can.
    assert _self_ap(_write(tmp_path / "zero.json", {**data, "annotations": annotations[:2]})) < 1
    out = tmp_path / "saved.json"
    write_coco(project, out)
    assert _self_ap(out) == pytest.approx(1.0)
    ids = [a["id"] for a in json.loads(out.read_text())["annotations"]]
    assert len(set(ids)) == len(ids) and min(ids) >= 1


def test_missing_images_and_wrong_sizes_are_reported_and_kept(tmp_path: Path) -> None:
    data = minimal_coco()
    data["images"].append({"id": 2, "file_name": "sub/b.png", "width": 10, "height": 8})
    data["images"].append({"id": 3, "file_name": "c.png", "width": 10, "height": 8})
    write_png(tmp_path / "a.png", 10, 8)  # correct
    write_png(tmp_path / "sub" / "b.png", 12, 8)  # wrong width in the JSON
    project, report = read_project(_write(tmp_path / "in.json", data))
    assert sorted(project.images) == [1, 2, 3]
    assert report.codes() == {"size_mismatch": 1, "missing_image_file": 1}
    assert "12x8" in report.of("size_mismatch")[0].message
    assert "c.png" in report.of("missing_image_file")[0].message
    assert project.images[2].width == 10  # masks keep the annotated size


def test_images_dir_is_searched_and_paths_become_relative_to_the_project(tmp_path: Path) -> None:
    write_png(tmp_path / "dataset" / "train" / "a.png", 10, 8)
    source = _write(tmp_path / "dataset" / "annotations.json", minimal_coco())
    target = tmp_path / "work" / "project.json"
    target.parent.mkdir()
    store = ProjectStore.import_coco(source, target, images_dir=tmp_path / "dataset" / "train")
    assert store.report is not None and store.report.ok
    assert store.images[0].file_name == "../dataset/train/a.png"
    assert store.image_path(store.images[0]).resolve() == (tmp_path / "dataset" / "train" / "a.png")
    reopened = ProjectStore.open(target)
    assert reopened.report is not None and reopened.report.ok
    assert json.loads(source.read_text()) == minimal_coco()  # the source is never touched


def test_import_then_save_keeps_every_mask_and_unknown_key(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    data = minimal_coco()
    data["info"] = {"year": 2024, "contributor": "someone"}
    data["licenses"] = [{"id": 1, "name": "CC-BY"}]
    data["dataset_version"] = "v7"  # unknown top-level key
    data["images"][0]["coco_url"] = "http://example/a.png"
    data["images"][0][TOOL_KEY] = {"future_field": [1, 2]}
    data["categories"][0]["keypoints"] = ["nose"]
    data["annotations"][0]["attributes"] = {"occluded": False}  # CVAT
    data["annotations"][0][TOOL_KEY] = {"reviewed_by": "ann"}  # from a newer version
    for index in range(30):
        mask = rng.random((8, 10)) < 0.4
        counts = mask_to_rle(mask).to_coco()
        uncompressed = index % 2 == 0
        if uncompressed:
            flat = mask.T.ravel().astype(np.int8)
            edges = np.concatenate(([0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]))
            runs = np.diff(edges).tolist()
            counts = {"size": [8, 10], "counts": [0, *runs] if flat[0] else runs}
        data["annotations"].append(
            {
                "id": 100 + index,
                "image_id": 1,
                "category_id": 1 + index % 2,
                "segmentation": counts,
                "iscrowd": int(uncompressed),
            }
        )
    source = _write(tmp_path / "in.json", data)
    write_png(tmp_path / "a.png", 10, 8)
    before = _decoded_masks(source)

    store = ProjectStore.open(source)
    store.save()
    after = _decoded_masks(source)
    assert len(before) == len(after) == 32
    assert all(np.array_equal(b, a) for b, a in zip(before, after, strict=True))

    saved = json.loads(source.read_text())
    assert saved["info"] == data["info"] and saved["licenses"] == data["licenses"]
    assert saved["dataset_version"] == "v7"
    assert saved["images"][0]["coco_url"] == "http://example/a.png"
    assert saved["images"][0][TOOL_KEY] == {"future_field": [1, 2]}
    assert saved["categories"][0]["keypoints"] == ["nose"]
    assert saved["annotations"][0]["attributes"] == {"occluded": False}
    assert saved["annotations"][0][TOOL_KEY] == {"reviewed_by": "ann"}
    assert [a["iscrowd"] for a in saved["annotations"][2:6]] == [1, 0, 1, 0]
    assert json.loads((tmp_path / "in.json.bak").read_text()) == data  # the original, kept


def test_degenerate_and_empty_segmentations_are_reported(tmp_path: Path) -> None:
    data = minimal_coco()
    data["annotations"][0]["segmentation"] = [[1, 1, 5, 1, 5, 4, 1, 4], [2, 2, 3, 3]]
    data["annotations"][1]["segmentation"] = []
    del data["annotations"][1]["bbox"]
    project, report = read_project(_write(tmp_path / "in.json", data), check_images=False)
    assert report.codes() == {"degenerate_polygon": 1, "empty_mask": 1}
    assert project.annotations[1].area == 12
    assert project.annotations[2].area == 0


def test_newer_format_is_refused(tmp_path: Path) -> None:
    data = minimal_coco(**{TOOL_KEY: {"format": 99}})
    with pytest.raises(ProjectError, match="newer sam2-annotator"):
        read_project(_write(tmp_path / "in.json", data), check_images=False)


def test_exif_rotated_size_is_explained(tmp_path: Path) -> None:
    from PIL import Image

    image = Image.new("RGB", (10, 8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: the upright image is 8 wide, 10 high
    image.save(tmp_path / "a.jpg", exif=exif)
    data = minimal_coco()
    data["images"][0]["file_name"] = "a.jpg"
    _project, report = read_project(_write(tmp_path / "in.json", data))
    (issue,) = report.of("size_mismatch")
    assert "8x10" in issue.message and "EXIF" in issue.message
