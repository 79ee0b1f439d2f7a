"""``sam2-annotator --self-test`` (what installers run after installing)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sam2_annotator import platform_check
from sam2_annotator.cli import main


def test_self_test_passes_with_a_model(model_dir, capsys) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    assert main(["--self-test", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "random-init" in out and "provider  cpu" in out
    assert "sample    640x427" in out and "COCO RLE round trip OK" in out
    assert "video     12 frames 160x90 (H.264/MP4) decoded" in out
    assert "gui       Qt" in out and out.rstrip().endswith("self-test OK")
    assert "\ndesktop   " in out  # the X11 library check ran (its verdict depends on the machine)


def test_self_test_fails_when_x11_libraries_are_missing(
    model_dir, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a bundle on a bare desktop reports: the missing libraries and the packages, exit 1."""
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    monkeypatch.setattr(platform_check.sys, "platform", "linux")
    monkeypatch.setattr(platform_check, "find_xcb_plugin", lambda: Path("/x/libqxcb.so"))
    monkeypatch.setattr(
        platform_check, "run_ldd", lambda plugin: "\tlibxcb-icccm.so.4 => not found\n"
    )
    assert main(["--self-test", "--no-gui", "--model", str(model_dir)]) == 0  # --no-gui: skipped
    assert "desktop" not in capsys.readouterr().out
    assert main(["--self-test", "--model", str(model_dir)]) == 1
    out = capsys.readouterr().out
    assert "gui       " not in out  # Qt is not even tried
    assert out.rstrip().splitlines()[-1] == (
        "self-test FAILED: Qt cannot start on this X11 desktop: missing system libraries "
        "libxcb-icccm.so.4. Install them with: sudo apt-get install libxcb-icccm4 (Debian/Ubuntu) "
        "or: sudo dnf install xcb-util-wm (Fedora)."
    )


def test_self_test_fails_clearly_without_a_model(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("SAM2_ANNOTATOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SAM2_ANNOTATOR_MODEL", raising=False)
    assert main(["--self-test", "--no-gui"]) == 1
    out = capsys.readouterr().out
    assert "self-test FAILED: no model to test" in out


def test_self_test_names_a_broken_model(tmp_path, capsys) -> None:
    (tmp_path / "encoder.onnx").write_bytes(b"garbage")
    (tmp_path / "decoder.onnx").write_bytes(b"garbage")
    assert main(["--self-test", "--no-gui", "--model", str(tmp_path)]) == 1
    assert "encoder.onnx" in capsys.readouterr().out


def test_self_test_fails_when_the_sample_video_cannot_be_decoded(
    model_dir, tmp_path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle whose OpenCV cannot read video (no FFmpeg, a codec left out) fails, naming it."""
    import sam2_annotator.resources as resources

    broken = tmp_path / "sample.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    real = resources.resource_path
    monkeypatch.setattr(
        resources,
        "resource_path",
        lambda name: broken if name == resources.SAMPLE_VIDEO else real(name),
    )
    assert main(["--self-test", "--no-gui", "--model", str(model_dir)]) == 1
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    assert last.startswith("self-test FAILED: cannot open video") and "sample.mp4" in last
