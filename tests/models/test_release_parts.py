"""The release pipeline's parts that need no torch: parity verdicts, URLs, pinning, prompts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sam2_annotator.models import release
from sam2_annotator.models.parity import (
    TOLERANCES,
    CaseResult,
    ParityReport,
    Tolerance,
    prompt_cases,
)
from sam2_annotator.models.release import ReleaseError, archive_name, checkpoint, publish_base


def _result(
    case: str,
    iou: float,
    *,
    token_iou: float | None = None,
    same: bool = True,
    diff: float = 1e-4,
    excess: float | None = -1e-3,
) -> CaseResult:
    return CaseResult(
        "truck", case, iou, iou if token_iou is None else token_iou, diff, excess, same
    )


def test_fp32_parity_needs_the_same_choice_close_logits_and_equal_masks() -> None:
    report = ParityReport("fp32", TOLERANCES["fp32"], [_result("box", 1.0), _result("pos", 0.999)])
    assert report.ok and report.summary().startswith("2 prompts: mask IoU min 0.9990")
    flipped = ParityReport("fp32", TOLERANCES["fp32"], [_result("box", 0.6, same=False)])
    problems = flipped.failures()
    assert problems[0] == "the chosen candidate differs on 1 prompt(s), e.g. truck/box"
    assert "mask IoU 0.6000 < 0.995 on truck/box" in problems[1]
    drifted = ParityReport("fp32", TOLERANCES["fp32"], [_result("box", 1.0, diff=0.2, excess=0.1)])
    assert drifted.failures() == [
        "low-res logits differ by 2.00e-01 (> 0.001 + 0.0001*|ref|) on truck/box"
    ]
    assert ParityReport("fp32", TOLERANCES["fp32"]).failures() == ["no prompt was compared"]


def test_int8_parity_judges_the_reference_candidate_and_counts_flips() -> None:
    """A quantized model may flip a near-tied choice; the mask of PyTorch's choice must hold."""
    results = [_result("a", 0.62, token_iou=0.99, same=False, excess=None), _result("b", 0.99)]
    report = ParityReport("int8", TOLERANCES["int8"], results)
    assert report.ok and len(report.flips) == 1
    assert report.summary().endswith("1 candidate flip(s)")
    worse = ParityReport("int8", TOLERANCES["int8"], [_result("a", 0.9, token_iou=0.9)])
    assert worse.failures() == ["mask IoU 0.9000 < 0.95 on truck/a", "mean mask IoU 0.9000 < 0.97"]
    assert report.to_dict()["candidate_flips"] == 1


def test_tolerances_are_strict_for_fp32_and_looser_for_quantized() -> None:
    assert TOLERANCES["fp32"] == Tolerance(0.995, 0.995, 1e-3, 1e-4, True)
    assert TOLERANCES["int8"].atol is None and not TOLERANCES["int8"].same_choice


def test_prompt_cases_scale_with_the_photo_and_refine_with_a_second_click() -> None:
    cases = prompt_cases(900, 600)
    assert [c.name for c in cases] == ["one-point", "pos-neg", "box", "box+point"]
    assert cases[0].points == [(250.0, 187.5)]
    refined = cases[2].refined(900, 600)
    assert refined.name == "box+refine" and refined.points == [(350.0, 225.0)]
    assert refined.labels == [1] and refined.box == cases[2].box
    prompt = refined.prompt(np.zeros((256, 256), np.float32))
    assert prompt.mask_input is not None and prompt.box is not None


def test_publish_url_must_be_pinned() -> None:
    template = release.PUBLISH_URL
    assert publish_base(template, "o/r", "") == "https://huggingface.co/o/r/resolve/{revision}"
    assert publish_base(template, "o/r", "a" * 40).endswith("/resolve/" + "a" * 40)
    with pytest.raises(ReleaseError, match="--repo is needed"):
        publish_base(template, "", "")
    with pytest.raises(ReleaseError, match="40-hex commit"):
        publish_base(template, "o/r", "main")
    with pytest.raises(ReleaseError, match="not pinned to a revision"):
        publish_base("https://huggingface.co/o/r/resolve/main", "", "")


def test_pin_fills_in_the_revision(tmp_path: Path) -> None:
    entries = tmp_path / release.ENTRIES_FILE
    source = {
        "base_url": "https://h/o/r/resolve/{revision}",
        "repo": "o/r",
        "revision": "{revision}",
    }
    entries.write_text(
        json.dumps({"format": 1, "sources": {release.SOURCE_NAME: source}, "models": []})
    )
    assert release.main(["pin", str(entries), "--revision", "b" * 40]) == 0
    pinned = json.loads(entries.read_text())["sources"][release.SOURCE_NAME]
    assert pinned == {
        "base_url": "https://h/o/r/resolve/" + "b" * 40,
        "repo": "o/r",
        "revision": "b" * 40,
    }


def test_checkpoints_and_names() -> None:
    tiny = checkpoint("sam2.1", "tiny")
    assert tiny.filename == "sam2.1_hiera_tiny.pt" and tiny.config == "sam2.1_hiera_t"
    assert (
        tiny.url()
        == "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt"
    )
    assert (
        checkpoint("sam2", "large").url("http://127.0.0.1:1/x/")
        == "http://127.0.0.1:1/x/sam2_hiera_large.pt"
    )
    assert all(c.sha256 for c in release.CHECKPOINTS) and len(release.CHECKPOINTS) == 8
    assert archive_name("sam2", "base_plus", "int8") == "sam2_hiera_base_plus_exact_int8"


def test_command_line_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--images", str(tmp_path / "none.jpg"), "--work", str(tmp_path), "--out", str(tmp_path)]
    assert release.main(args) == 1
    assert capsys.readouterr().err == f"error: no such photo or folder: {tmp_path / 'none.jpg'}\n"
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"")
    assert (
        release.main(["--images", str(photo), "--work", str(tmp_path), "--out", str(tmp_path)]) == 1
    )
    assert capsys.readouterr().err.startswith("error: --repo is needed")
