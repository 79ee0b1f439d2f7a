"""Finding the encoder/decoder pair in model folders of every known layout."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.engine.predictor import Sam2Engine
from sam2_annotator.engine.types import Prompt
from sam2_annotator.errors import ModelError


def test_third_party_folder_without_manifest_segments_like_ours(tmp_path, model_dir, engine):
    """A samexporter-named folder with no manifest.json loads and gives the same masks."""
    (tmp_path / "sam2.1_hiera_tiny.encoder.onnx").symlink_to(model_dir / "encoder.onnx")
    (tmp_path / "sam2.1_hiera_tiny.decoder.onnx").symlink_to(model_dir / "decoder.onnx")
    files = ModelFiles.from_folder(tmp_path)
    assert files.manifest is None and not files.is_random_init
    assert "third-party, no manifest" in files.display_name
    third_party = Sam2Engine(files)
    assert third_party.contract.name == engine.contract.name
    image = np.random.default_rng(2).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    prompt = Prompt(points=np.array([[40, 30]], np.float32), labels=np.ones(1))
    ours = engine.decode(engine.encode(image), prompt)
    theirs = third_party.decode(third_party.encode(image), prompt)
    np.testing.assert_array_equal(ours.mask, theirs.mask)


def test_osam_layout(tmp_path) -> None:
    for name in ("sam2_tiny_preprocess.onnx", "sam2_tiny.onnx"):
        (tmp_path / name).write_bytes(b"x")
    files = ModelFiles.from_folder(tmp_path)
    assert files.encoder.name == "sam2_tiny_preprocess.onnx"
    assert files.decoder.name == "sam2_tiny.onnx"


@pytest.mark.parametrize(
    "names",
    [
        [],
        ["a.encoder.onnx"],
        ["a.encoder.onnx", "b.encoder.onnx", "a.decoder.onnx"],
        ["x_preprocess.onnx", "x.onnx", "y.onnx"],
    ],
)
def test_ambiguous_or_incomplete_folders_name_what_they_hold(tmp_path, names) -> None:
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ModelError) as info:
        ModelFiles.from_folder(tmp_path)
    message = str(info.value)
    assert "*encoder*.onnx" in message and "_preprocess.onnx" in message
    assert all(name in message for name in names)


def test_missing_folder(tmp_path) -> None:
    with pytest.raises(ModelError, match="model folder not found"):
        ModelFiles.from_folder(tmp_path / "nope")
