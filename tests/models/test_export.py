"""The exporter: manifest, I/O contract, checkpoint path and user errors."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from sam2_annotator.cli import main
from sam2_annotator.engine.manifest import Manifest, sha256_file

torch = pytest.importorskip("torch")
pytest.importorskip("sam2")


def test_random_init_manifest_says_so(model_dir) -> None:
    manifest = Manifest.read(model_dir)
    assert manifest is not None
    assert manifest.weights == "random-init" and manifest.seed == 0
    assert "random-init" in manifest.display_name
    assert manifest.variant == "sam2.1_hiera_t" and manifest.input_size == 1024
    for name, entry in manifest.files.items():
        assert sha256_file(model_dir / name) == entry.sha256
        assert (model_dir / name).stat().st_size == entry.bytes
    assert manifest.exporter["torch"] == torch.__version__
    assert manifest.source_checkpoint is None


def test_graphs_follow_the_samexporter_contract(model_dir) -> None:
    enc = ort.InferenceSession(str(model_dir / "encoder.onnx"), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(model_dir / "decoder.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in enc.get_inputs()] == [("image", [1, 3, 1024, 1024])]
    assert [(o.name, o.shape) for o in enc.get_outputs()] == [
        ("high_res_feats_0", [1, 32, 256, 256]),
        ("high_res_feats_1", [1, 64, 128, 128]),
        ("image_embed", [1, 256, 64, 64]),
    ]
    inputs = {i.name: i for i in dec.get_inputs()}
    assert list(inputs) == [
        "image_embed", "high_res_feats_0", "high_res_feats_1", "point_coords",
        "point_labels", "mask_input", "has_mask_input",
    ]  # fmt: skip
    assert isinstance(inputs["point_coords"].shape[1], str)  # N is dynamic
    assert all(i.type == "tensor(float)" for i in inputs.values())
    # Padding is inside the graph: a one-point prompt runs as is and gives 4 candidates.
    feed = {
        "image_embed": np.zeros((1, 256, 64, 64), np.float32),
        "high_res_feats_0": np.zeros((1, 32, 256, 256), np.float32),
        "high_res_feats_1": np.zeros((1, 64, 128, 128), np.float32),
        "point_coords": np.array([[[10.0, 10.0]]], np.float32),
        "point_labels": np.array([[1.0]], np.float32),
        "mask_input": np.zeros((1, 1, 256, 256), np.float32),
        "has_mask_input": np.array([0.0], np.float32),
    }
    masks, iou = dec.run(None, feed)
    assert masks.shape == (1, 4, 256, 256) and iou.shape == (1, 4)


def test_export_from_checkpoint_matches_the_same_weights(tmp_path, model_dir) -> None:
    from sam2_annotator.models.export import build_model, resolve_variant

    model = build_model(resolve_variant("sam2.1_hiera_t"), checkpoint=None, seed=0)
    checkpoint = tmp_path / "weights.pt"
    torch.save({"model": model.state_dict()}, checkpoint)
    out = tmp_path / "from-ckpt"
    code = main(["models", "export", "--config", "sam2.1_hiera_tiny", "--checkpoint",
                 str(checkpoint), "--out", str(out)])  # fmt: skip
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights"] == "checkpoint" and manifest["seed"] is None
    assert manifest["source_checkpoint"]["sha256"] == sha256_file(checkpoint)
    video = json.loads((out / "video.json").read_text())  # the tracking graphs come along
    written = {f.name for f in (out / "video").glob("*.onnx")}
    assert written == {f"{name}.onnx" for name in video["files"]} and len(written) == 3
    feed = {"image": np.random.default_rng(0).normal(size=(1, 3, 1024, 1024)).astype(np.float32)}
    outs = [
        ort.InferenceSession(str(d / "encoder.onnx"), providers=["CPUExecutionProvider"]).run(
            None, feed
        )
        for d in (out, model_dir)
    ]
    for a, b in zip(*outs, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "sam3_hiera_t", "--random-init"], "unknown SAM2 config"),
        (["--config", "sam2.1_hiera_t", "--checkpoint", "{tmp}/missing.pt"], "not found"),
        (["--config", "sam2.1_hiera_s", "--checkpoint", "{tmp}/tiny.pt"], "checkpoint match"),
    ],
)
def test_export_user_errors(tmp_path, capsys, args, message) -> None:
    if "{tmp}/tiny.pt" in args:
        torch.save({"model": {"not": torch.zeros(1)}}, tmp_path / "tiny.pt")
    args = [a.format(tmp=tmp_path) for a in args]
    assert main(["models", "export", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_exporter_fingerprint_covers_every_exporter_module() -> None:
    """Each ``sam2_annotator.models`` module that ``export`` imports is hashed into the
    fingerprint of a cached export (a stale cache would hide an exporter change), and the
    modules named on top of them count too."""
    import ast
    from pathlib import Path

    from sam2_annotator.models import export

    tree = ast.parse(Path(export.__file__).read_text())
    imported = {
        node.module.rsplit(".", 1)[1]
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("sam2_annotator.models.")
    }
    assert imported and imported <= set(export.EXPORTER_MODULES)
    assert export.exporter_fingerprint() != export.exporter_fingerprint("export_video")
    assert export.exporter_fingerprint() == export.exporter_fingerprint()
