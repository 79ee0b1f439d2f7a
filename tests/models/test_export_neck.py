"""The encoder's folded high-resolution projections compute what SAM2's two convolutions do."""

from __future__ import annotations

import types

import onnx
import pytest

from sam2_annotator.models.export_neck import high_res_projections_folded

torch = pytest.importorskip("torch")
image_encoder = pytest.importorskip("sam2.modeling.backbones.image_encoder")
position_encoding = pytest.importorskip("sam2.modeling.position_encoding")

#: Hiera-tiny's stage widths, lowest resolution first as FpnNeck takes them.
CHANNELS = [768, 384, 192, 96]


def sam2_like(top_down: list[int]) -> types.SimpleNamespace:
    """The parts of a SAM2 model that ``forward_image`` runs after the trunk."""
    torch.manual_seed(0)
    neck = image_encoder.FpnNeck(
        position_encoding=position_encoding.PositionEmbeddingSine(num_pos_feats=256),
        d_model=256,
        backbone_channel_list=CHANNELS,
        fpn_top_down_levels=top_down,
        fpn_interp_model="nearest",
    )
    decoder = torch.nn.Module()
    decoder.conv_s0 = torch.nn.Conv2d(256, 32, kernel_size=1)
    decoder.conv_s1 = torch.nn.Conv2d(256, 64, kernel_size=1)
    return types.SimpleNamespace(
        image_encoder=types.SimpleNamespace(neck=neck.eval()),
        sam_mask_decoder=decoder.eval(),
        use_high_res_features_in_sam=True,
    )


def high_res_features(model: types.SimpleNamespace, trunk: list) -> list:
    """``SAM2Base.forward_image`` from the trunk's output on: the neck, then ``conv_s0/s1``."""
    out, _ = model.image_encoder.neck(trunk)
    decoder = model.sam_mask_decoder
    return [decoder.conv_s0(out[0]), decoder.conv_s1(out[1]), out[2]]


@pytest.mark.parametrize(
    ("top_down", "expected_folded"),
    [
        ([2, 3], [0, 1]),  # SAM2's and SAM2.1's configs
        ([1, 2, 3], [0]),  # level 1 carries a top-down sum
        ([0, 2, 3], []),  # level 0 takes level 1's output as its top-down input
        ([0, 1, 2, 3], []),  # FpnNeck's default
    ],
)
def test_folded_projections_match_sam2(top_down, expected_folded) -> None:
    model = sam2_like(top_down)
    side = 32
    trunk = [torch.randn(1, c, side >> i, side >> i) for i, c in enumerate(CHANNELS[::-1])]
    with torch.no_grad():
        expected = high_res_features(model, trunk)
        with high_res_projections_folded(torch, model) as folded:
            got = high_res_features(model, trunk)
    assert folded == expected_folded
    for level, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g.shape == e.shape
        assert float(e.abs().max()) > 0.1  # a real output, not zeros
        if level in folded:
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
            assert not torch.equal(g, e)  # computed another way: one convolution, not two
        else:
            assert torch.equal(g, e)


def test_fold_is_undone_after_the_trace() -> None:
    model = sam2_like([2, 3])
    neck, decoder = model.image_encoder.neck, model.sam_mask_decoder
    originals = (neck.convs[3].conv, neck.convs[2].conv, decoder.conv_s0, decoder.conv_s1)
    with high_res_projections_folded(torch, model):
        assert isinstance(decoder.conv_s0, torch.nn.Identity)
        assert neck.convs[3].conv.weight.shape == (32, 96, 1, 1)
    assert (neck.convs[3].conv, neck.convs[2].conv, decoder.conv_s0, decoder.conv_s1) == originals


def test_exported_encoder_projects_high_res_features_once(model_dir) -> None:
    """The export computes ``high_res_feats_0/1`` with one 96 -> 32 and one 192 -> 64
    convolution, and keeps no 256-channel convolution of the trunk's first two stages."""
    graph = onnx.load(str(model_dir / "encoder.onnx"), load_external_data=False).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    convs = [shapes[node.input[1]] for node in graph.node if node.op_type == "Conv"]
    assert (32, 96, 1, 1) in convs and (64, 192, 1, 1) in convs
    assert (256, 96, 1, 1) not in convs and (256, 192, 1, 1) not in convs
    assert (256, 384, 1, 1) in convs and (256, 768, 1, 1) in convs  # levels 2 and 3 unchanged
