"""The accuracy protocol (point sampling, IoU bookkeeping, COCO reading) and ``eval`` end to end."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from sam2_annotator import cli
from sam2_annotator.bench.accuracy import (
    EvalPlan,
    evaluate,
    missing_images_reason,
    nothing_evaluated_reason,
    read_ground_truth,
    sample_points,
)
from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.engine.types import Prompt
from sam2_annotator.errors import UserError
from sam2_annotator.models import export_reference as torch_ref

WIDTH, HEIGHT = 64, 40


def _rle(mask: np.ndarray) -> dict:
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(encoded["size"]), "counts": encoded["counts"].decode("ascii")}


def _write_coco(
    folder: Path, image_name: str, width: int, height: int, segmentations: list[tuple[object, int]]
) -> Path:
    """One image; annotation ids from 0; ``(segmentation, iscrowd)`` per annotation."""
    coco = {
        "images": [{"id": 0, "file_name": image_name, "width": width, "height": height}],
        "categories": [{"id": 0, "name": "thing"}],
        "annotations": [
            {"id": i, "image_id": 0, "category_id": 0, "segmentation": seg, "iscrowd": crowd}
            for i, (seg, crowd) in enumerate(segmentations)
        ],
    }
    path = folder / "gt.json"
    path.write_text(json.dumps(coco), encoding="utf-8")
    return path


@pytest.fixture
def small_project(tmp_path: Path):
    """Annotation 0: polygon square (pixels 10..29); 1: RLE block; 2: crowd; 3: empty RLE."""
    cv2.imwrite(str(tmp_path / "img.png"), np.full((HEIGHT, WIDTH, 3), 128, np.uint8))
    block = np.zeros((HEIGHT, WIDTH), bool)
    block[5:15, 40:56] = True
    path = _write_coco(
        tmp_path,
        "img.png",
        WIDTH,
        HEIGHT,
        [
            ([[10, 10, 30, 10, 30, 30, 10, 30]], 0),
            (_rle(block), 0),
            (_rle(block), 1),
            (_rle(np.zeros_like(block)), 0),
        ],
    )
    return read_ground_truth(path, tmp_path), block


class FixedMask:
    """Predicts the same mask for every prompt and remembers the prompts."""

    def __init__(self, label: str, mask: np.ndarray) -> None:
        self.label = label
        self.mask = mask
        self.prompts: list[Prompt] = []

    def embed(self, image: np.ndarray) -> tuple[int, int]:
        return image.shape[:2]

    def predict(self, state: tuple[int, int], prompt: Prompt) -> np.ndarray:
        assert state == self.mask.shape
        self.prompts.append(prompt)
        return self.mask

    def describe(self) -> dict:
        return {"runtime": "test"}


def test_sample_points_are_distinct_pixels_of_the_mask():
    mask = np.zeros((50, 80), bool)
    mask[10:20, 30:35] = True
    points = sample_points(mask, 25, np.random.default_rng(3))
    assert points.dtype == np.float32 and points.shape == (25, 2)
    xs, ys = points[:, 0].astype(int), points[:, 1].astype(int)
    assert mask[ys, xs].all()
    assert len({(x, y) for x, y in zip(xs, ys, strict=True)}) == 25
    same = sample_points(mask, 25, np.random.default_rng(3))
    assert np.array_equal(points, same)
    tiny = np.zeros((5, 5), bool)
    tiny[2, 2] = True
    assert (sample_points(tiny, 3, np.random.default_rng(0)) == 2).all()
    with pytest.raises(ValueError):
        sample_points(np.zeros((5, 5), bool), 1, np.random.default_rng(0))


def test_evaluate_skips_crowd_and_empty_and_scores_each_model(small_project):
    project, block = small_project
    square = np.zeros((HEIGHT, WIDTH), bool)
    square[10:30, 10:30] = True  # what pycocotools rasterises for the polygon
    truth = {a.id: a.mask for a in project.annotations.values()}
    (polygon_id,) = [i for i, m in truth.items() if np.array_equal(m, square)]
    perfect = FixedMask("square", square)
    nothing = FixedMask("nothing", np.zeros_like(square))
    run = evaluate(project, [perfect, nothing], EvalPlan(points=(1, 3), seed=7))
    assert run.skipped == {"crowd": 1, "empty mask": 1}
    assert len(run.objects) == 2 * 2
    by_object = {(o.annotation_id, o.points): o for o in run.objects}
    (rle_id,) = {o.annotation_id for o in run.objects} - {polygon_id}
    assert np.array_equal(truth[rle_id], block)
    for count in (1, 3):
        assert by_object[polygon_id, count].iou_vs_gt == {"square": 1.0, "nothing": 0.0}
        assert by_object[rle_id, count].iou_vs_gt == {"square": 0.0, "nothing": 0.0}
        assert by_object[polygon_id, count].iou_between == 0.0
    # Prompts: the requested number of positive points, inside the annotation's mask.
    masks = {polygon_id: square, rle_id: block}
    ids = [o.annotation_id for o in run.objects]
    for annotation_id, prompt in zip(ids, perfect.prompts, strict=True):
        assert len(prompt.points) in (1, 3) and (prompt.labels == 1).all()
        xs, ys = prompt.points[:, 0].astype(int), prompt.points[:, 1].astype(int)
        assert masks[annotation_id][ys, xs].all()
    summary = run.summary()
    assert summary["evaluated_objects"] == 2 and summary["evaluated_prompts"] == 4
    assert summary["iou_vs_gt"]["square"]["all"]["mean"] == 0.5
    assert summary["iou_vs_gt"]["square"]["by_points"]["3"]["count"] == 2
    assert summary["iou_between"]["models"] == ["square", "nothing"]


def test_points_depend_on_seed_not_on_other_annotations(small_project):
    project, _ = small_project
    mask = np.zeros((HEIGHT, WIDTH), bool)

    def prompts(plan: EvalPlan) -> list[np.ndarray]:
        model = FixedMask("m", mask)
        evaluate(project, [model], plan)
        return [p.points for p in model.prompts]

    full = prompts(EvalPlan(points=(3,), seed=1))
    first_only = prompts(EvalPlan(points=(3,), seed=1, max_annotations=1))
    assert len(first_only) == 1 and np.array_equal(first_only[0], full[0])
    other_seed = prompts(EvalPlan(points=(3,), seed=2))
    assert not np.array_equal(other_seed[0], full[0])


@pytest.mark.parametrize("problem", ["missing", "wrong size"])
def test_unusable_images_are_skipped_and_reported(small_project, tmp_path: Path, problem: str):
    project, _ = small_project
    if problem == "missing":
        (tmp_path / "img.png").unlink()
    else:
        cv2.imwrite(str(tmp_path / "img.png"), np.zeros((HEIGHT + 1, WIDTH, 3), np.uint8))
    ticks: list[str] = []
    model = FixedMask("m", np.zeros((HEIGHT, WIDTH), bool))
    run = evaluate(project, [model], EvalPlan(points=(1, 2)), progress=ticks.append)
    assert run.objects == [] and model.prompts == []
    assert run.skipped["image unreadable or of the wrong size"] == 2
    assert len(ticks) == 2 * 2  # the progress bar still reaches its total
    assert len(run.problems) == 1 and "img.png" in run.problems[0]


def test_a_run_that_scored_nothing_says_why(small_project, tmp_path: Path):
    project, _ = small_project
    model = FixedMask("m", np.zeros((HEIGHT, WIDTH), bool))
    scored = evaluate(project, [model], EvalPlan(points=(1,)))
    assert nothing_evaluated_reason(scored) is None
    (tmp_path / "img.png").unlink()
    run = evaluate(project, [model], EvalPlan(points=(1,)))
    reason = nothing_evaluated_reason(run, tmp_path)
    assert reason is not None and "\n" not in reason
    assert "nothing was evaluated" in reason and "not found" in reason
    assert str(tmp_path / "img.png") in reason and f"--images {tmp_path}" in reason
    assert missing_images_reason(project, tmp_path) is not None


def _nested_dataset(tmp_path: Path) -> tuple[Path, Path]:
    """COCO file_name ``images/img.png`` relative to ``root``: the layout most datasets ship."""
    root = tmp_path / "dataset"
    (root / "images").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "img.png"), np.full((HEIGHT, WIDTH, 3), 128, np.uint8))
    coco = _write_coco(root, "images/img.png", WIDTH, HEIGHT, [([[10, 10, 30, 10, 30, 30]], 0)])
    return root, coco


def test_missing_images_are_refused_with_the_folder_that_holds_them(tmp_path: Path):
    root, coco = _nested_dataset(tmp_path)
    assert missing_images_reason(read_ground_truth(coco, root), root) is None
    too_deep = root / "images"
    reason = missing_images_reason(read_ground_truth(coco, too_deep), too_deep)
    assert reason is not None and "none of the 1 annotated images was found" in reason
    assert f"pass --images {root}" in reason
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    reason = missing_images_reason(read_ground_truth(coco, elsewhere), elsewhere)
    assert reason is not None and "relative to" in reason


def test_eval_with_images_one_folder_too_deep_fails_with_the_reason(tmp_path: Path, capsys):
    """As a new user tried it: every image "not found" used to print empty tables and exit 0."""
    root, coco = _nested_dataset(tmp_path)
    out = tmp_path / "out"
    args = ["eval", "--coco", str(coco), "--images", str(root / "images"), "--out", str(out)]
    # The images are checked before any model is loaded, so no model is needed here.
    code = cli.main([*args, "--model", str(tmp_path / "no-model"), "--no-progress"])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()  # one clear message, no traceback
    assert line.startswith("error: none of the 1 annotated images was found")
    assert f"pass --images {root}" in line
    assert not (out / "summary.json").exists()


def test_eval_that_scores_nothing_exits_non_zero(tmp_path: Path, model_dir, capsys):
    """Images present, but every annotation skipped (wrong image size here): no result."""
    cv2.imwrite(str(tmp_path / "img.png"), np.zeros((HEIGHT + 1, WIDTH, 3), np.uint8))
    coco = _write_coco(tmp_path, "img.png", WIDTH, HEIGHT, [([[10, 10, 30, 10, 30, 30]], 0)])
    out = tmp_path / "out"
    code = cli.main(
        [
            "eval",
            "--coco",
            str(coco),
            "--images",
            str(tmp_path),
            "--model",
            str(model_dir),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: nothing was evaluated")
    assert "image unreadable or of the wrong size: 1" in line and "COCO file says" in line
    assert not (out / "summary.json").exists()


def test_eval_plan_and_reader_refuse_bad_input(tmp_path: Path):
    with pytest.raises(UserError):
        EvalPlan(points=(0,))
    with pytest.raises(UserError):
        EvalPlan(max_annotations=0)
    empty = _write_coco(tmp_path, "x.png", 4, 4, [])
    with pytest.raises(UserError, match="no annotations"):
        read_ground_truth(empty, tmp_path)


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def groceries_coco(tmp_path_factory: pytest.TempPathFactory, shared_images) -> Path:
    """Two boxes around bags in the groceries photo: one polygon (id 0), one RLE."""
    folder = tmp_path_factory.mktemp("coco")
    image = shared_images["groceries"]
    bag = np.zeros((534, 800), bool)
    bag[175:340, 440:508] = True
    return _write_coco(
        folder,
        image.name,
        800,
        534,
        [
            ([[367, 195, 446, 195, 446, 340, 367, 340]], 0),
            (_rle(bag), 0),
        ],
    )


def _run_eval(coco: Path, images: Path, model: Path, out: Path, *extra: str) -> dict:
    code = cli.main(
        [
            "eval",
            "--coco",
            str(coco),
            "--images",
            str(images),
            "--model",
            str(model),
            "--out",
            str(out),
            "--no-progress",
            *extra,
        ]
    )
    assert code == 0
    return json.loads((out / "summary.json").read_text())


def test_eval_int8_against_fp32(groceries_coco, shared_images, model_dir, int8_dir, tmp_path):
    images = shared_images["groceries"].parent
    summary = _run_eval(
        groceries_coco, images, model_dir, tmp_path, "--compare", str(int8_dir), "--points", "1,3"
    )
    assert summary["evaluated_objects"] == 2 and summary["evaluated_prompts"] == 4
    assert set(summary["iou_vs_gt"]) == {"onnx-fp32", "onnx-int8"}
    assert summary["models"]["onnx-int8"]["precision"] == "int8"
    pair = summary["iou_between"]
    assert pair["models"] == ["onnx-fp32", "onnx-int8"]
    assert pair["all"]["count"] == 4
    assert pair["all"]["min"] > 0.8  # measured ~0.99 on random weights
    objects = json.loads((tmp_path / "per_object.json").read_text())
    assert len(objects) == 4 and {o["points"] for o in objects} == {1, 3}
    assert sorted(Counter(o["annotation_id"] for o in objects).values()) == [2, 2]
    assert all(0.0 <= o["iou_between"] <= 1.0 for o in objects)
    assert cv2.imread(str(tmp_path / "iou_boxplot.png")) is not None
    assert "onnx-fp32 vs onnx-int8" in (tmp_path / "summary.md").read_text()


def test_eval_model_against_itself_is_identical(groceries_coco, shared_images, model_dir, tmp_path):
    summary = _run_eval(
        groceries_coco,
        shared_images["groceries"].parent,
        model_dir,
        tmp_path,
        "--compare",
        str(model_dir),
        "--points",
        "2",
        "--max-annotations",
        "1",
    )
    assert summary["iou_between"]["models"] == ["onnx-fp32", "onnx-fp32-compare"]
    assert summary["iou_between"]["all"]["min"] == 1.0
    assert summary["skipped"] == {"over --max-annotations": 1}
    isa = summary["machine"]["isa"]
    assert {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx", "int8_dot"} <= set(isa)
    assert (tmp_path / "summary.md").read_text().startswith(f"Machine: {summary['machine']['cpu']}")


@pytest.mark.torch
def test_eval_against_pytorch(groceries_coco, shared_images, model_dir, tmp_path):
    if torch_ref.unavailable_reason() is not None:
        pytest.skip(torch_ref.unavailable_reason())
    summary = _run_eval(
        groceries_coco,
        shared_images["groceries"].parent,
        model_dir,
        tmp_path,
        "--torch-reference",
        "--points",
        "1,3",
        "--max-annotations",
        "1",
    )
    assert summary["iou_between"]["models"] == ["onnx-fp32", "pytorch"]
    assert summary["iou_between"]["all"]["min"] > 0.99
    assert summary["models"]["pytorch"]["runtime"] == "pytorch eager"


def test_eval_reports_user_errors(tmp_path, model_dir, capsys):
    code = cli.main(
        [
            "eval",
            "--coco",
            str(tmp_path / "missing.json"),
            "--images",
            str(tmp_path),
            "--model",
            str(model_dir),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(
            [
                "eval",
                "--coco",
                "a",
                "--images",
                "b",
                "--out",
                "c",
                "--compare",
                "d",
                "--torch-reference",
            ]
        )
    assert exc.value.code == 2


def test_torch_source_comes_from_the_manifest(model_dir, int8_dir, tmp_path):
    source = torch_ref.source_for(ModelFiles.from_folder(model_dir))
    files = ModelFiles.from_folder(model_dir)
    assert (source.variant, source.checkpoint, source.seed) == (
        files.manifest.variant,
        None,
        files.manifest.seed,
    )
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("encoder.onnx", "decoder.onnx"):
        (bare / name).symlink_to(model_dir / name)
    with pytest.raises(UserError, match="no manifest"):
        torch_ref.source_for(ModelFiles.from_folder(bare))
