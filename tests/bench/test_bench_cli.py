"""``sam2-annotator bench`` end to end with a short run (what CI runs), and its plan checks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sam2_annotator import cli
from sam2_annotator.bench.latency import BenchPlan, random_prompt
from sam2_annotator.commands import bench as bench_command
from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.errors import UserError
from sam2_annotator.models import export_reference as torch_ref

RUNS, ENCODER_RUNS = 5, 2


@pytest.fixture(scope="module")
def results(model_dir: Path, int8_dir: Path, shared_images, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench")
    code = cli.main(
        [
            "bench",
            "--model",
            str(model_dir),
            "--runs",
            str(RUNS),
            "--encoder-runs",
            str(ENCODER_RUNS),
            "--image-runs",
            "1",
            "--points",
            "1,3",
            "--point-runs",
            "4",
            "--torch-runs",
            "1",
            "--images",
            str(shared_images["groceries"]),
            "--compare",
            str(int8_dir),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    return json.loads((out / "results.json").read_text()), out


def test_results_have_the_documented_fields(results):
    data, _ = results
    for key in ("machine", "onnxruntime", "provider", "encoder", "decoder", "peak_rss_mb"):
        assert key in data
    assert data["provider"] == "cpu"
    for part in ("encoder", "decoder"):
        for key in ("first_ms", "p50_ms", "p95_ms", "raw_p50_ms", "torch_p50_ms"):
            assert key in data[part], (part, key)
    assert set(data["decoder"]["by_points"]) == {"1", "3"}
    assert data["images"] == [{"name": "groceries", "width": 800, "height": 534}]


def test_results_name_the_cpu_and_its_isa(results):
    """int8 speed and fidelity depend on the ISA (VNNI or not): every result records it."""
    data, out = results
    machine = data["machine"]
    assert machine["cpu"] and machine["cpus"] >= 1
    isa = machine["isa"]
    for flag in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx", "int8_dot"):
        assert flag in isa, flag
    table = (out / "results.md").read_text()
    assert machine["cpu"] in table and "int8 dot product" in table


def test_figures_are_consistent(results):
    data, _ = results
    for part, runs in (("encoder", ENCODER_RUNS), ("decoder", RUNS)):
        figures = data[part]
        assert figures["runs"] == runs
        assert len(data["traces"][f"{part}_ms"]) == runs
        assert len(data["traces"][f"{part}_raw_ms"]) == runs
        assert 0 < figures["min_ms"] <= figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]
        assert figures["first_ms"] == pytest.approx(
            figures["load_ms"] + figures["first_run_ms"], abs=0.01
        )
        assert figures["overhead_ratio"] == pytest.approx(
            figures["p50_ms"] / figures["raw_p50_ms"], abs=0.001
        )
        assert figures["p50_ms"] == pytest.approx(np.median(data["traces"][f"{part}_ms"]), abs=0.01)
    # The full encode includes the bare run plus pre-processing.
    assert data["encoder"]["preprocess_p50_ms"] > 0
    assert data["memory"]["embedding_mb"] == pytest.approx(16.0)  # 4 + 8 + 4 MiB of float32
    assert data["peak_rss_mb"] > 100


def test_torch_column_matches_availability(results):
    data, _ = results
    reason = torch_ref.unavailable_reason()
    if reason is None:
        assert data["torch"]["available"] is True
        assert data["encoder"]["torch_p50_ms"] > 0 and data["decoder"]["torch_p50_ms"] > 0
        assert data["encoder"]["torch_runs"] == data["decoder"]["torch_runs"] == 1
        assert data["encoder"]["torch_over_ort"] == pytest.approx(
            data["encoder"]["torch_p50_ms"] / data["encoder"]["torch_alternated_ort_p50_ms"],
            abs=0.001,
        )
    else:
        assert data["torch"] == {"available": False, "reason": reason}
        assert data["encoder"]["torch_p50_ms"] is None


def test_compare_alternates_bare_runs_of_both_models(results):
    data, _ = results
    compare = data["compare"]
    assert "(int8)" in compare["model"]
    assert compare["encoder"]["runs"] == ENCODER_RUNS
    assert compare["decoder"]["runs"] == 4  # --point-runs
    for part in ("encoder", "decoder"):
        block = compare[part]
        assert block["raw_p50_ms"] > 0 and block["other_raw_p50_ms"] > 0
        assert block["speedup"] == pytest.approx(
            block["raw_p50_ms"] / block["other_raw_p50_ms"], abs=0.001
        )


def test_plots_and_tables_are_written(results):
    _, out = results
    for name in ("latency_trace.png", "encoder_by_image.png", "decoder_by_points.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[1] >= 900, name
        assert (out / name).stat().st_size < 300_000
    table = (out / "results.md").read_text()
    assert "| encoder |" in table and "| decoder |" in table and "groceries (800x534)" in table


def test_plan_validation_and_step_count():
    with pytest.raises(UserError):
        BenchPlan(runs=0)
    with pytest.raises(UserError):
        BenchPlan(points=(0, 1))
    plan = BenchPlan(
        runs=10, encoder_runs=3, image_runs=2, points=(1, 2), point_runs=4, torch_runs=1
    )
    assert plan.steps(images=3, with_torch=False) == 2 + 3 + 10 + 2 * 3 + 4 * 2
    assert plan.steps(images=3, with_torch=True) == plan.steps(3, False) + 2 * 2
    assert plan.steps(3, False, with_compare=True) == plan.steps(3, False) + 1 + 3 + 4
    assert BenchPlan(runs=500).point_count == 100 and BenchPlan(runs=500).torch_count == 20


def test_random_prompts_stay_inside_the_image():
    prompt = random_prompt(np.random.default_rng(0), 50, 30, 20)
    assert prompt.points.shape == (50, 2) and (prompt.labels == 1).all()
    assert (prompt.points >= 0).all()
    assert (prompt.points[:, 0] <= 29).all() and (prompt.points[:, 1] <= 19).all()


def test_cli_errors_and_torch_opt_out(model_dir: Path, tmp_path: Path, capsys):
    code = cli.main(["bench", "--model", str(model_dir), "--runs", "0", "--out", str(tmp_path)])
    assert code == 2
    assert "at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bench", "--points", "1,x", "--out", str(tmp_path)])
    args = argparse.Namespace(no_torch=True, checkpoint=None)
    source, reason = bench_command._torch_source(ModelFiles.from_folder(model_dir), args)
    assert source is None and "--no-torch" in reason


def test_bench_images_default_and_errors(tmp_path: Path):
    first, second = bench_command.load_bench_images(None), bench_command.load_bench_images(None)
    assert len(first) == 1 and first[0].size == bench_command.SYNTHETIC_SIZE
    assert np.array_equal(first[0].pixels, second[0].pixels)
    with pytest.raises(UserError, match="no images"):
        bench_command.load_bench_images([tmp_path])
    with pytest.raises(UserError, match="not found"):
        bench_command.load_bench_images([tmp_path / "missing.jpg"])
