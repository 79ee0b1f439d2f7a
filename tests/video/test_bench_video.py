"""``bench --video``: the per-graph split, the JSON fields, reduced memory labelled approximate,
and (torch installed) the PyTorch side alternated on the same frames."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from sam2_annotator import cli
from sam2_annotator.bench.video import PARTS, memory_attention_flops
from tests.video.conftest import VIDEO

pytestmark = pytest.mark.slow


def _bench(video_model_dir, out, *extra: str) -> int:
    argv = ["bench", "--video", str(VIDEO), "--model", str(video_model_dir), "--out", str(out)]
    return cli.main([*argv, "--threads", "2", "--no-progress", *extra])


@pytest.fixture(scope="module")
def ort_only(video_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-video")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = _bench(video_model_dir, out, "--frames", "3", "--memory-frames", "0", "--no-torch")
    assert code == 0
    data = json.loads((out / "results.json").read_text())
    return data, (out / "results.md").read_text(), printed.getvalue()


def test_frame_costs_split_into_the_four_graphs(ort_only) -> None:
    data, _, _ = ort_only
    ort = data["onnxruntime"]
    assert [f["frame"] for f in ort["frames"]] == [1, 2]
    for frame in ort["frames"]:
        parts = sum(frame[f"{p}_ms"] for p in PARTS)
        assert frame["graphs_ms"] == pytest.approx(parts, abs=0.05)
        assert frame["wall_ms"] >= frame["graphs_ms"] > 0
        assert all(frame[f"{p}_ms"] > 0 for p in PARTS), frame
    # frame 1 attends to the prompted frame; frame 2 also to frame 1 (and both pointers)
    assert [(f["memories"], f["pointers"]) for f in ort["frames"]] == [(1, 1), (2, 2)]
    first = ort["first_frame"]
    assert first["frame"] == 0 and first["memory_attention_ms"] == 0
    assert first["encoder_ms"] > 0 and first["decoder_ms"] > 0 and first["memory_encoder_ms"] > 0
    stats = ort["propagated"]
    assert stats["frames"] == 2
    for part in (*PARTS, "graphs", "other", "wall"):
        assert stats[part]["p50_ms"] is not None and stats[part]["mean_ms"] is not None
    assert ort["non_empty_masks"] == ort["masks"] == 3  # the biased model: objects present


def test_results_name_machine_torch_reason_and_flops(ort_only) -> None:
    data, table, _ = ort_only
    machine = data["machine"]
    assert data["kind"] == "video" and machine["cpu"] and "int8_dot" in machine["isa"]
    assert data["torch"] == {"available": False, "reason": "disabled with --no-torch"}
    assert data["source"]["frames_used"] == 3 and data["source"]["width"] == 1280
    flops = data["memory_attention_flops"]
    assert [r["frame"] for r in flops["per_frame"]] == [1, 2]
    assert flops["per_frame"][1]["gflop"] > flops["per_frame"][0]["gflop"]
    assert flops["achieved_gflops_largest_memory"] > 0
    peak = flops["peak"]
    assert peak["nominal_gflops"] > 0 and peak["measured_sgemm_gflops"] > 0
    assert flops["met"] == (flops["share_of_nominal_peak"] >= 0.6)
    assert data["machine"]["cpu"] in table and "memory attention" in table


def test_flop_count_follows_the_shapes() -> None:
    """A full SAM2.1 bank (7 frames of 4,096 tokens, 16 pointers): the cross-attention products
    are the issue's ~480 GFLOP; self-attention does not depend on the memory."""
    n, d = 4096, 256
    full = memory_attention_flops(7, 16)
    assert full["memory_tokens"] == 7 * n + 16 * 4
    assert full["cross_attention_products"] == 4 * (4 * n * (7 * n + 64) * d)
    assert 470e9 < full["cross_attention_products"] < 490e9
    assert memory_attention_flops(1, 0)["self_attention"] == full["self_attention"]


def test_reduced_memory_is_labelled_approximate_and_measured(ort_only) -> None:
    data, table, printed = ort_only
    reduced = data["reduced_memory"]
    assert reduced["approximate"] is True and "APPROXIMATE" in reduced["label"]
    assert reduced["memory_frames"] == 0 and reduced["exact_memory_frames"] == 6
    # frame 2 is the first whose memory differs (the exact one also holds frame 1)
    assert reduced["differs_from_frame"] == 2 and reduced["frames_compared"] == 1
    assert reduced["memory_attention_speedup"] > 1.0
    agreement = reduced["vs_exact"]
    assert agreement["frames"] == 1 and agreement["frames_both_empty"] == 0
    assert 0.0 < agreement["iou_min"] <= 1.0
    assert "APPROXIMATE" in table
    warning = next(line for line in printed.splitlines() if line.startswith("warning:"))
    assert "--memory-frames 0 is APPROXIMATE" in warning


def test_bench_video_torch_side_on_the_same_frames(video_model_dir, tmp_path, capsys) -> None:
    pytest.importorskip("torch", reason="the PyTorch side needs the export extra (torch + sam2)")
    assert _bench(video_model_dir, tmp_path, "--frames", "2") == 0
    data = json.loads((tmp_path / "results.json").read_text())
    torch = data["torch"]
    assert torch["available"] and torch["version"] and torch["threads"] >= 1
    assert "PyTorch SAM2VideoPredictor" in data["alternation"]
    assert [f["frame"] for f in torch["frames"]] == [1]
    frame = torch["frames"][0]
    assert all(frame[f"{p}_ms"] > 0 for p in PARTS), frame
    assert torch["first_frame"]["encoder_ms"] > 0 and torch["first_frame"]["decoder_ms"] > 0
    # same weights, same JPEG files: the masks agree (both non-empty)
    agreement = torch["vs_onnxruntime"]
    assert agreement["frames"] == 2 and agreement["frames_both_empty"] == 0
    assert agreement["iou_min"] >= 0.99
    speed = data["speedup"]
    assert speed["torch_over_ort_wall_p50"] > 0 and set(speed["by_part_p50"]) == set(PARTS)
    assert "PyTorch / ORT" in capsys.readouterr().out
