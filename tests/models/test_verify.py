from __future__ import annotations

from pathlib import Path

import pytest

from sam2_annotator import cli
from sam2_annotator.engine.manifest import FileEntry, Manifest, sha256_file
from sam2_annotator.errors import ModelError
from sam2_annotator.models.verify import verify_folder
from tests.models.conftest import decoder_bytes


def _write_manifest(folder: Path, weights: str = "checkpoint") -> Manifest:
    files = {
        p.name: FileEntry(sha256_file(p), p.stat().st_size) for p in sorted(folder.glob("*.onnx"))
    }
    manifest = Manifest(variant="sam2.1_hiera_t", weights=weights, files=files)  # type: ignore[arg-type]
    manifest.write(folder)
    return manifest


def test_folder_without_manifest_verifies(model_folder: Path) -> None:
    report = verify_folder(model_folder)
    assert report.contract == "sam2-annotator"
    assert set(report.encoder.outputs) == {"high_res_feats_0", "high_res_feats_1", "image_embed"}
    assert "point_coords" in report.decoder.inputs
    assert report.decoder.inputs["point_coords"].rank == 3
    assert report.checked_sha256 == ()
    text = "\n".join(report.lines())
    assert "no manifest.json" in text and "contract: sam2-annotator" in text


def test_manifest_checksums_are_checked(model_folder: Path) -> None:
    _write_manifest(model_folder)
    report = verify_folder(model_folder)
    assert report.checked_sha256 == ("m.decoder.onnx", "m.encoder.onnx")
    assert report.manifest is not None and report.manifest.variant == "sam2.1_hiera_t"


def test_replaced_file_fails_the_sha256_check(model_folder: Path) -> None:
    _write_manifest(model_folder)
    original = (model_folder / "m.decoder.onnx").read_bytes()
    tampered = bytearray(original)
    tampered[-1] ^= 0xFF
    (model_folder / "m.decoder.onnx").write_bytes(bytes(tampered))
    with pytest.raises(ModelError, match=r"m\.decoder\.onnx sha256 .* does not match"):
        verify_folder(model_folder)


def test_truncated_file_fails_the_size_check(model_folder: Path) -> None:
    _write_manifest(model_folder)
    data = (model_folder / "m.encoder.onnx").read_bytes()
    (model_folder / "m.encoder.onnx").write_bytes(data[:-10])
    with pytest.raises(ModelError, match="truncated"):
        verify_folder(model_folder)


def test_file_missing_from_folder_named_in_manifest(model_folder: Path) -> None:
    _write_manifest(model_folder)
    (model_folder / "m.decoder.onnx").rename(model_folder / "other.decoder.onnx")
    with pytest.raises(ModelError, match=r"listed in manifest\.json but missing"):
        verify_folder(model_folder)


def test_unloadable_graph_is_a_model_error(model_folder: Path) -> None:
    (model_folder / "m.encoder.onnx").write_bytes(b"\x08\x07 definitely not a protobuf graph")
    with pytest.raises(ModelError, match=r"ONNX Runtime cannot load .*m\.encoder\.onnx"):
        verify_folder(model_folder)


def test_unknown_contract_is_a_model_error(model_folder: Path) -> None:
    (model_folder / "m.decoder.onnx").write_bytes(decoder_bytes(drop_input="mask_input"))
    with pytest.raises(ModelError, match="do not match any known SAM2 contract"):
        verify_folder(model_folder)


def test_missing_decoder_is_a_model_error(model_folder: Path) -> None:
    (model_folder / "m.decoder.onnx").unlink()
    with pytest.raises(ModelError, match="exactly one"):
        verify_folder(model_folder)


def test_random_init_is_said_loudly(model_folder: Path) -> None:
    _write_manifest(model_folder, weights="random-init")
    lines = verify_folder(model_folder).lines()
    assert "weights:  random-init" in lines
    assert any("RANDOM-INIT" in line and "meaningless" in line for line in lines)


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def models_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ``cli.main`` with only the ``models`` command registered."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("models",))


def test_cli_verify_ok(
    models_cli: None, model_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["models", "verify", str(model_folder)]) == 0
    out = capsys.readouterr().out
    assert "contract: sam2-annotator" in out
    assert "decoder inputs:  image_embed" in out
    assert out.rstrip().endswith("ok")


def test_cli_verify_random_init_warns_on_both_streams(
    models_cli: None, model_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_manifest(model_folder, weights="random-init")
    assert cli.main(["models", "verify", str(model_folder)]) == 0
    captured = capsys.readouterr()
    assert "RANDOM-INIT" in captured.out
    assert "random-init" in captured.err


def test_cli_verify_broken_folder_exits_non_zero_with_one_line(
    models_cli: None, model_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (model_folder / "m.decoder.onnx").write_bytes(b"<html>not found</html>")
    assert cli.main(["models", "verify", str(model_folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ONNX Runtime cannot load")
    assert "Traceback" not in err


def test_cli_verify_accepts_an_installed_name(
    models_cli: None, data_dir: Path, pair: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = data_dir / "models" / "my_model"
    folder.mkdir(parents=True)
    for name, data in pair.items():
        (folder / name).write_bytes(data)
    assert cli.main(["models", "verify", "my_model"]) == 0
    assert f"folder:   {folder}" in capsys.readouterr().out
