"""int8 / fp16 variants of an fp32 export: what the graphs hold, the manifest, and fidelity."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from sam2_annotator.annotations.masks import iou
from sam2_annotator.engine.manifest import Manifest, sha256_file
from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.engine.predictor import Sam2Engine
from sam2_annotator.engine.types import Prompt
from sam2_annotator.errors import ModelError, UserError
from sam2_annotator.models.precision import convert_precision

FLOAT = onnx.TensorProto.FLOAT
FLOAT16 = onnx.TensorProto.FLOAT16


def _ops(path: Path) -> Counter[str]:
    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def _initializers(path: Path) -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in onnx.load(str(path)).graph.initializer}


def _float_matmuls_with_constant_weight(path: Path) -> int:
    graph = onnx.load(str(path)).graph
    constants = {t.name for t in graph.initializer}
    return sum(1 for n in graph.node if n.op_type == "MatMul" and n.input[1] in constants)


def _prompt(points: list[tuple[float, float]]) -> Prompt:
    return Prompt(points=np.array(points, np.float32), labels=np.ones(len(points), np.int64))


def test_int8_quantizes_matmuls_and_keeps_convolutions_fp32(model_dir: Path, int8_dir: Path):
    for part in ("encoder.onnx", "decoder.onnx"):
        source, quantized = _ops(model_dir / part), _ops(int8_dir / part)
        assert quantized["MatMulInteger"] > 0, part
        assert _float_matmuls_with_constant_weight(int8_dir / part) == 0, part
        assert quantized["Conv"] == source["Conv"], part
        assert quantized["ConvInteger"] == 0 and quantized["QLinearConv"] == 0, part
        weights = _initializers(int8_dir / part)
        conv_weights = [
            n.input[1] for n in onnx.load(str(int8_dir / part)).graph.node if n.op_type == "Conv"
        ]
        assert all(weights[name].data_type == FLOAT for name in conv_weights), part
    # int8 weights: the encoder (mostly matmul weights) shrinks to well under half.
    ratio = (int8_dir / "encoder.onnx").stat().st_size / (model_dir / "encoder.onnx").stat().st_size
    assert ratio < 0.5


def test_int8_manifest_describes_the_new_files(model_dir: Path, int8_dir: Path):
    source = Manifest.read(model_dir)
    manifest = Manifest.read(int8_dir)
    assert manifest is not None and source is not None
    assert manifest.precision == "int8"
    assert (manifest.variant, manifest.weights, manifest.seed) == (
        source.variant,
        source.weights,
        source.seed,
    )
    for name, entry in manifest.files.items():
        assert entry.sha256 == sha256_file(int8_dir / name)
        assert entry.bytes == (int8_dir / name).stat().st_size
        assert manifest.exporter["converted_from"][name] == source.files[name].sha256

    # The engine's I/O contract (names, dtypes, declared shapes) is unchanged.
    def names_and_types(io: dict) -> dict:
        return {
            part: {kind: [(a["name"], a["dtype"]) for a in args] for kind, args in d.items()}
            for part, d in io.items()
        }

    assert names_and_types(manifest.io) == names_and_types(source.io)
    for part in ("encoder.onnx", "decoder.onnx"):
        declared = [onnx.load(str(folder / part)).graph.output for folder in (model_dir, int8_dir)]
        assert [str(v.type) for v in declared[0]] == [str(v.type) for v in declared[1]]
    assert "(int8)" in ModelFiles.from_folder(int8_dir).display_name


#: ``vpmaddubsw`` (the AVX2 / AVX-512BW u8 x s8 kernel) adds two u8 x s8 products into a signed
#: 16-bit lane with saturation: weights within this bound never saturate (2 * 255 * 64 = 32640).
NO_SATURATION_WEIGHT_BOUND = 32767 // (2 * 255)


def _int8_weights(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, zero point) of every MatMulInteger with a constant weight."""
    graph = onnx.load(str(path)).graph
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    found = []
    for node in graph.node:
        if node.op_type == "MatMulInteger" and node.input[1] in constants:
            zero = constants.get(node.input[3]) if len(node.input) > 3 else np.zeros((), np.int8)
            found.append((constants[node.input[1]], zero))
    return found


def test_int8_weights_cannot_saturate_any_x86_kernel(int8_dir: Path):
    """The property that makes int8 correct on AVX2 CPUs, checked on whatever CPU runs the test.

    ONNX Runtime picks its int8 kernel by cpuid at run time, so a VNNI machine never executes
    the AVX2 path; but whether that path saturates depends only on the weights' range.
    """
    for part in ("encoder.onnx", "decoder.onnx"):
        weights = _int8_weights(int8_dir / part)
        assert weights, part
        for weight, zero in weights:
            assert weight.dtype == np.int8 and not np.any(zero), part  # symmetric s8
            assert np.abs(weight.astype(np.int32)).max() <= NO_SATURATION_WEIGHT_BOUND, part
    assert "reduce_range" in Manifest.read(int8_dir).exporter["converter"]["method"]


def test_int8_engine_stays_close_to_fp32(engine, int8_dir, groceries, groceries_embedding):
    """int8 vs fp32 on a photo: embedding correlation > 0.998 and mask IoU > 0.95.

    Thresholds, for AVX-512/VNNI and AVX2 alike: the int8 weights are 7-bit
    (``test_int8_weights_cannot_saturate_any_x86_kernel``), so every x86 kernel (VNNI
    ``vpdpbusd``, AMX, AVX2/AVX-512BW ``vpmaddubsw``) computes the same exact 32-bit integer
    products; what is left is quantization noise, identical on both ISAs up to float rounding.
    Measured with random-init weights: correlation 0.9996 on an AVX-512 VNNI Zen 5 and 0.9998
    on an AVX2 Zen 3 (reduce_range); the test prompt's IoU 0.99. 0.998 leaves 5x that noise
    as margin while catching saturation, which gave 0.961 on AVX2 with full-range s8 weights
    (masks IoU down to 0.78). The IoU bound 0.95 is the issue's per-prompt minimum.
    """
    quantized = Sam2Engine(ModelFiles.from_folder(int8_dir))
    embedding = quantized.encode(groceries)
    correlation = np.corrcoef(
        embedding.image_embed.ravel(), groceries_embedding.image_embed.ravel()
    )[0, 1]
    assert correlation > 0.998
    prompt = _prompt([(400, 260), (470, 250)])
    reference = engine.decode(groceries_embedding, prompt).mask
    assert iou(quantized.decode(embedding, prompt).mask, reference) > 0.95


def test_fp16_keeps_float32_io_and_matches_fp32(engine, model_dir, tmp_path, groceries_embedding):
    manifest = convert_precision(model_dir, tmp_path, "fp16")
    assert manifest.precision == "fp16"
    for part in ("encoder", "decoder"):
        for arg in manifest.io[part]["inputs"] + manifest.io[part]["outputs"]:
            assert arg["dtype"] == "tensor(float)", (part, arg)
        weights = _initializers(tmp_path / f"{part}.onnx").values()
        assert sum(w.data_type == FLOAT16 for w in weights) > 0
    half = Sam2Engine(ModelFiles.from_folder(tmp_path))
    prompt = _prompt([(400, 260)])
    expected = engine.decode(groceries_embedding, prompt)
    got = half.decode(groceries_embedding, prompt)  # fp16 decoder on the fp32 embedding
    assert np.abs(got.low_res_logits - expected.low_res_logits).max() < 0.05
    assert iou(got.mask, expected.mask) > 0.99


def test_refuses_bad_requests(model_dir: Path, int8_dir: Path, tmp_path: Path):
    with pytest.raises(UserError, match="unknown precision"):
        convert_precision(model_dir, tmp_path / "x", "int4")
    with pytest.raises(UserError, match="new folder"):
        convert_precision(model_dir, model_dir, "int8")
    with pytest.raises(ModelError, match="already int8"):
        convert_precision(int8_dir, tmp_path / "y", "fp16")
    crowded = tmp_path / "crowded"
    crowded.mkdir()
    (crowded / "other_encoder.onnx").write_bytes(b"")
    with pytest.raises(UserError, match="other model files"):
        convert_precision(model_dir, crowded, "int8")
