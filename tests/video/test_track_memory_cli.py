"""``track``'s frame-feature budget, disk cache and reduced (approximate) memory."""

from __future__ import annotations

import json

import cv2
import pytest

from sam2_annotator.cli import main
from tests.video.conftest import VIDEO

pytestmark = pytest.mark.slow

FRAMES = 3
EMBEDDING_MIB = 16.0  # image_embed 4 + high_res_feats 8 + 4 MiB, float32


@pytest.fixture(scope="module")
def three_frames(tmp_path_factory):
    folder = tmp_path_factory.mktemp("three")
    capture = cv2.VideoCapture(str(VIDEO))
    for index in range(FRAMES):
        ok, frame = capture.read()
        assert ok
        cv2.imwrite(str(folder / f"{index:05d}.jpg"), frame)
    capture.release()
    return folder


def test_budget_bounds_the_frame_cache_and_reduced_memory_says_approximate(
    video_model_dir, three_frames, tmp_path, capsys
) -> None:
    cache_dir = tmp_path / "cache"
    argv = ["track", str(three_frames), "--model", str(video_model_dir), "--point", "640,360"]
    argv += ["--out", str(tmp_path / "masks"), "--json", "--threads", "2"]
    argv += ["--cache-mb", "20", "--memory-frames", "0", "--cache-dir", str(cache_dir)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert warning and "APPROXIMATE" in warning[0] and "--memory-frames 0" in warning[0]
    assert "APPROXIMATE memory" in captured.out
    data = json.loads(captured.out[captured.out.index("\n{") :])
    memory = data["memory"]
    assert memory["approximate"] is True and memory["memory_frames"] == 0
    # three frames' features would be 48 MiB; the 20 MiB budget keeps one
    assert memory["cache_budget_mb"] == 20 and memory["frame_cache_mb"] == EMBEDDING_MIB
    assert memory["memory_bank_mb"] > 0 and memory["peak_rss_mb"] > 0
    # every frame encoded once although its decoder and memory encoder both need it
    assert data["encoder_runs"] == FRAMES
    assert all(r["rss_mb"] > 0 for r in data["frames"])
    # the disk level got every frame (fp16 entries)
    assert len(list(cache_dir.rglob("*.npz"))) == FRAMES
