"""``coco validate``, ``coco export`` and ``export yolo|masks`` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sam2_annotator.annotations.coco_io import SEGMENTATION_FORMATS
from sam2_annotator.annotations.exporters import EXPORTERS
from sam2_annotator.annotations.model import TOOL_KEY
from sam2_annotator.annotations.store import ProjectStore
from sam2_annotator.cli import main
from sam2_annotator.commands.coco import SEGMENTATION_CHOICES
from sam2_annotator.commands.exports import EXPORT_FORMATS
from tests.annotations.helpers import (
    PYCOCOTOOLS_NUMPY2_WARNING,
    coco_from_file,
    minimal_coco,
    ring,
    snapshot,
    write_png,
)
from tests.annotations.malformed import all_cases

pytestmark = pytest.mark.filterwarnings(PYCOCOTOOLS_NUMPY2_WARNING)

MALFORMED = all_cases()


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def clean_file(tmp_path: Path) -> Path:
    write_png(tmp_path / "a.png", 10, 8)
    path = tmp_path / "clean.json"
    path.write_text(json.dumps(minimal_coco()))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with a plain square and a donut (a mask with a hole)."""
    store = ProjectStore.create(tmp_path / "project.json")
    image = store.add_image(write_png(tmp_path / "img.png", 40, 30), 40, 30)
    category = store.add_category("thing")
    square = np.zeros((30, 40), bool)
    square[2:9, 3:12] = True
    store.add_annotation(image.id, category.id, square, score=0.9)
    store.add_annotation(image.id, category.id, ring(np.random.default_rng(0), 30, 40))
    return store.path


def test_choices_match_the_registries() -> None:
    assert SEGMENTATION_CHOICES == SEGMENTATION_FORMATS
    assert tuple(EXPORT_FORMATS) == tuple(EXPORTERS)


def test_validate_clean_file(capsys: pytest.CaptureFixture[str], clean_file: Path) -> None:
    code, out, err = _run(capsys, "coco", "validate", clean_file)
    assert code == 0, err
    assert "images:      1" in out and "categories:  2" in out
    assert "annotations: 2 (polygon 1, uncompressed_rle 1)" in out
    assert "no problems" in out


def test_validate_lists_every_problem(
    capsys: pytest.CaptureFixture[str], clean_file: Path, tmp_path: Path
) -> None:
    data = minimal_coco()
    data["annotations"][0]["id"] = 0
    data["images"].append({"id": 2, "file_name": "gone.png", "width": 5, "height": 5})
    path = tmp_path / "issues.json"
    path.write_text(json.dumps(data))
    before = snapshot(tmp_path)
    code, out, _err = _run(capsys, "coco", "validate", path)
    assert code == 0  # it imports: repairs are warnings
    assert "2 warning(s)" in out
    assert "warning [renumbered_id] annotations[0] (id 0): id 0 -> id 3" in out
    assert "warning [missing_image_file] image 2:" in out and "gone.png" in out
    assert "written by another tool" in out
    code, strict_out, _err = _run(capsys, "coco", "validate", path, "--strict")
    assert code == 1 and "--strict: failing" in strict_out
    assert snapshot(tmp_path) == before  # validate never writes


def test_validate_with_images_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write_png(tmp_path / "pictures" / "a.png", 10, 8)
    path = tmp_path / "annotations" / "train.json"
    path.parent.mkdir()
    path.write_text(json.dumps(minimal_coco()))
    code, out, _ = _run(capsys, "coco", "validate", path, "--strict")
    assert code == 1 and "missing_image_file" in out
    code, out, _ = _run(capsys, "coco", "validate", path, "--images", tmp_path / "pictures")
    assert code == 0 and "no problems" in out


@pytest.mark.parametrize(("name", "raw", "fragment"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_validate_malformed_is_one_error_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, raw: bytes, fragment: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(raw)
    code, out, err = _run(capsys, "coco", "validate", path, "--strict")
    assert code == 2  # errors, not warnings: 2 with or without --strict
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err
    assert "Traceback" not in out + err
    assert fragment in out  # the full problem list goes to stdout


def test_validate_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _out, err = _run(capsys, "coco", "validate", tmp_path / "nope.json")
    assert code == 2 and "project file not found" in err


def test_export_rle_is_clean_coco(
    capsys: pytest.CaptureFixture[str], project: Path, tmp_path: Path
) -> None:
    out_file = tmp_path / "out" / "train.json"
    out_file.parent.mkdir()
    code, out, err = _run(capsys, "coco", "export", project, "--out", out_file)
    assert code == 0, err
    assert "2 annotations (0 as polygons, 2 as RLE)" in out
    data = json.loads(out_file.read_text())
    assert TOOL_KEY not in json.dumps(data)
    assert data["images"][0]["file_name"] == "../img.png"
    source = ProjectStore.open(project)
    coco = coco_from_file(out_file)
    for annotation in source.project.annotations.values():
        decoded = coco.annToMask(coco.anns[annotation.id]).astype(bool)
        assert np.array_equal(decoded, annotation.mask)

    code, _, _ = _run(capsys, "coco", "export", project, "--out", out_file, "--keep-tool-data")
    assert (
        code == 0 and json.loads(out_file.read_text())["annotations"][0][TOOL_KEY]["score"] == 0.9
    )


def test_export_polygons_names_masks_with_holes(
    capsys: pytest.CaptureFixture[str], project: Path, tmp_path: Path
) -> None:
    out_file = tmp_path / "poly.json"
    code, out, _ = _run(
        capsys, "coco", "export", project, "--out", out_file, "--segmentation", "polygon"
    )
    assert code == 0
    assert "1 as polygons, 1 as RLE" in out
    assert "kept as RLE because of holes: annotation(s) 2" in out
    code, out, _ = _run(
        capsys,
        "coco",
        "export",
        project,
        "--out",
        out_file,
        "--segmentation",
        "polygon",
        "--force-polygons",
    )
    assert code == 0 and "holes filled: annotation(s) 2" in out
    segmentations = [a["segmentation"] for a in json.loads(out_file.read_text())["annotations"]]
    assert all(isinstance(s, list) for s in segmentations)


def test_export_refuses_bad_combinations(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    before = project.read_bytes()
    code, _, err = _run(capsys, "coco", "export", project, "--out", project)
    assert code == 2 and "must not be the project file" in err
    code, _, err = _run(
        capsys, "coco", "export", project, "--out", project.parent / "x.json", "--force-polygons"
    )
    assert code == 2 and "--force-polygons only applies" in err
    with pytest.raises(SystemExit) as caught:
        _run(
            capsys,
            "coco",
            "export",
            project,
            "--out",
            project.parent / "x.json",
            "--segmentation",
            "mesh",
        )
    assert caught.value.code == 2
    assert project.read_bytes() == before and not (project.parent / "x.json").exists()


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_export_other_formats(
    capsys: pytest.CaptureFixture[str], project: Path, tmp_path: Path, fmt: str
) -> None:
    out_dir = tmp_path / fmt
    code, out, err = _run(capsys, "export", fmt, project, "--out", out_dir)
    assert code == 0, err
    assert f"wrote {fmt} export" in out and "1 images, 2 annotations" in out
    expected = {"yolo": "data.yaml", "masks": "masks.json"}[fmt]
    assert (out_dir / expected).is_file()
    if fmt == "yolo":
        assert "1 warning(s)" in out  # the donut's hole


def test_export_of_a_malformed_project_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": 3}')
    code, _, err = _run(capsys, "export", "yolo", bad, "--out", tmp_path / "y")
    assert code == 2 and "images: must be a list" in err
    assert not (tmp_path / "y").exists()
