"""``sam2-annotator --self-test`` (what installers run after installing)."""

from __future__ import annotations

import os

from sam2_annotator.cli import main


def test_self_test_passes_with_a_model(model_dir, capsys) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    assert main(["--self-test", "--model", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "random-init" in out and "provider  cpu" in out
    assert "sample    640x427" in out
    assert "gui       Qt" in out and out.rstrip().endswith("self-test OK")


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
