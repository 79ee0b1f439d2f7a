"""``sam2-annotator track``: masks per frame, COCO with track ids, clear errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from sam2_annotator.cli import main
from tests.video.conftest import VIDEO

pytestmark = pytest.mark.slow


def test_track_two_objects_backward_from_a_video_file(video_model_dir, tmp_path, capsys) -> None:
    prompts = tmp_path / "prompts.json"
    prompts.write_text(
        json.dumps(
            [
                {"frame": 1, "object": 1, "points": [[640, 360, 1]]},
                {"frame": 1, "object": 7, "box": [200, 300, 500, 650]},
            ]
        )
    )
    out, coco = tmp_path / "masks", tmp_path / "track.json"
    argv = ["track", str(VIDEO), "--model", str(video_model_dir), "--prompts", str(prompts)]
    argv += ["--reverse", "--out", str(out), "--coco", str(coco), "--threads", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "memory attention" in printed and "random-init" in printed
    for obj in (1, 7):
        names = sorted(p.name for p in (out / f"obj{obj}").iterdir())
        assert names == ["00000.png", "00001.png"]
        mask = cv2.imread(str(out / f"obj{obj}" / "00000.png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (720, 1280) and set(np.unique(mask)) <= {0, 255}
    data = json.loads(coco.read_text())
    assert [im["frame"] for im in data["images"]] == [0, 1]
    assert {a["track_id"] for a in data["annotations"]} == {1, 7}
    assert all(a["area"] > 0 for a in data["annotations"])


def test_track_needs_video_graphs(model_dir, tmp_path, capsys) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "00000.jpg"), np.zeros((64, 96, 3), np.uint8))
    argv = ["track", str(frames), "--model", str(model_dir), "--point", "10,10"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert "no video graphs" in capsys.readouterr().err


def test_track_needs_a_prompt(video_model_dir, tmp_path, capsys) -> None:
    argv = ["track", str(VIDEO), "--model", str(video_model_dir), "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "--point" in capsys.readouterr().err
