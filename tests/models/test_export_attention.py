"""The encoder's trace-time attention rewrites compute what SAM2's own modules compute."""

from __future__ import annotations

import collections

import onnx
import onnxruntime as ort
import pytest

from sam2_annotator.models.export_attention import (
    hiera_attention_as_three_projections,
    query_chunked_attention,
)

torch = pytest.importorskip("torch")
hieradet = pytest.importorskip("sam2.modeling.backbones.hieradet")

TRUNK_ATTENTION = "/image_encoder/trunk/blocks."


@pytest.mark.parametrize(
    ("dim", "dim_out", "heads", "pooled", "side"),
    [
        (96, 96, 1, False, 8),  # stage 1: one head, 8x8 windows
        (96, 192, 2, True, 8),  # stage change: Q pooling, more heads
        (192, 384, 4, False, 14),  # stage 3 window
        (384, 384, 4, False, 40),  # global attention, longer than one query chunk
    ],
)
def test_three_projection_attention_matches_sam2(dim, dim_out, heads, pooled, side) -> None:
    torch.manual_seed(0)
    pool = torch.nn.MaxPool2d(kernel_size=2, stride=2) if pooled else None
    module = hieradet.MultiScaleAttention(dim, dim_out, heads, q_pool=pool).eval()
    x = torch.randn(3, side, side, dim)
    with torch.no_grad():
        expected = module(x)
        with query_chunked_attention(torch, rows=512), hiera_attention_as_three_projections(torch):
            got = module(x)
    assert got.shape == expected.shape
    assert float(expected.abs().max()) > 0.1  # a real output, not zeros
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_rewrite_is_undone_after_the_trace() -> None:
    original = hieradet.MultiScaleAttention.forward
    with hiera_attention_as_three_projections(torch):
        assert hieradet.MultiScaleAttention.forward is not original
    assert hieradet.MultiScaleAttention.forward is original


def test_exported_attention_moves_no_token_axis_inward(model_dir, tmp_path) -> None:
    """No qkv ``Split``, and after ONNX Runtime's optimizer no transpose in Hiera's attention
    makes the token axis innermost (k^T is folded into the score MatMul instead)."""
    exported = onnx.load(str(model_dir / "encoder.onnx"), load_external_data=False)
    attention = [n for n in exported.graph.node if n.name.startswith(TRUNK_ATTENTION)]

    def blocks(op_type: str) -> collections.Counter:
        return collections.Counter(
            n.name[len(TRUNK_ATTENTION) :].split("/")[0] for n in attention if n.op_type == op_type
        )

    # The only Splits left are the query chunks of the global blocks (several Softmaxes each).
    chunked = {block for block, count in blocks("Softmax").items() if count > 1}
    assert len(chunked) == 3 and len(blocks("Softmax")) == 12
    assert set(blocks("Split")) == chunked

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(model_dir / "encoder.onnx"), options, ["CPUExecutionProvider"])
    optimized = onnx.load(options.optimized_model_filepath, load_external_data=False)
    transposes = [
        (n.name, next(list(a.ints) for a in n.attribute if a.name == "perm"))
        for n in optimized.graph.node
        if n.op_type == "Transpose" and "/attn/" in n.name and n.name.startswith(TRUNK_ATTENTION)
    ]
    assert transposes  # the head transposes are still there ...
    inward = [(name, perm) for name, perm in transposes if perm[-1] != len(perm) - 1]
    assert not inward  # ... but none of them moves the token axis innermost
