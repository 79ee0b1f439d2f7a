"""Mask selection and clean-up, checked against the reference MaskDecoder's own code."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_annotator.engine import postprocess
from sam2_annotator.engine.types import DecoderOutput


def _output(logits: np.ndarray, iou: np.ndarray, single_token: bool = True) -> DecoderOutput:
    return DecoderOutput(
        low_res_logits=logits.astype(np.float32), iou_predictions=iou, single_token=single_token
    )


def test_stability_score_definition() -> None:
    logits = np.array([[1.0, 0.01, -0.01, -1.0]])
    # > +0.05: 1 pixel; > -0.05: 3 pixels
    assert postprocess.stability_score(logits) == pytest.approx(1 / 3)
    assert postprocess.stability_score(-np.ones((4, 4))) == 1.0


def test_single_mask_keeps_token_zero_when_stable() -> None:
    logits = np.full((4, 8, 8), -5.0)
    logits[0, 2:6, 2:6] = 5.0  # crisp -> stable
    out = _output(logits, np.array([0.1, 0.9, 0.5, 0.2]))
    assert postprocess.choose_single(out) == 0
    assert postprocess.best_multimask(out) == 1


def test_single_mask_falls_back_to_best_multimask_when_unstable() -> None:
    logits = np.full((4, 8, 8), -5.0)
    logits[0] = np.linspace(-0.04, 0.04, 64).reshape(8, 8)  # all inside +-delta -> unstable
    out = _output(logits, np.array([0.99, 0.2, 0.7, 0.3]))
    assert postprocess.choose_single(out) == 2


def test_models_without_single_token_use_all_candidates() -> None:
    out = _output(np.zeros((3, 4, 4)), np.array([0.2, 0.8, 0.1]), single_token=False)
    assert list(postprocess.multimask_indices(out)) == [0, 1, 2]
    assert postprocess.choose_single(out) == 1


def test_choice_matches_reference_dynamic_multimask() -> None:
    torch = pytest.importorskip("torch")
    from sam2.modeling.sam.mask_decoder import MaskDecoder
    from sam2.modeling.sam.transformer import TwoWayTransformer

    decoder = MaskDecoder(
        transformer_dim=32,
        transformer=TwoWayTransformer(depth=1, embedding_dim=32, num_heads=2, mlp_dim=32),
        dynamic_multimask_via_stability=True,
        dynamic_multimask_stability_delta=0.05,
        dynamic_multimask_stability_thresh=0.98,
    )
    rng = np.random.default_rng(0)
    for trial in range(40):
        logits = rng.normal(0, 1, (4, 16, 16)).astype(np.float32)
        if trial % 2:
            logits[0] = np.where(logits[0] > 0, 20.0, -20.0)  # make token 0 stable
        iou = rng.random(4).astype(np.float32)
        ref_logits, _ = decoder._dynamic_multimask_via_stability(
            torch.from_numpy(logits)[None], torch.from_numpy(iou)[None]
        )
        chosen = postprocess.choose_single(_output(logits, iou))
        np.testing.assert_array_equal(ref_logits[0, 0].numpy(), logits[chosen])


def test_upsample_matches_torch_bilinear_closely() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 8, (256, 256)).astype(np.float32)
    for hw in [(1200, 1800), (534, 800), (100, 50)]:
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(logits)[None, None], hw, mode="bilinear", align_corners=False
        )[0, 0].numpy()
        ours = postprocess.upsample_logits(logits, hw)
        assert ours.shape == hw
        # OpenCV's float bilinear differs from torch's by float rounding of its coefficients.
        assert np.abs(ours - ref).max() < 2e-3
        assert ((ours > 0) != (ref > 0)).mean() < 1e-4


def test_fill_small_regions_fills_holes_and_removes_sprinkles() -> None:
    logits = np.full((32, 32), -5.0, np.float32)
    logits[4:20, 4:20] = 5.0
    logits[10, 10] = -5.0  # a one-pixel hole
    logits[28, 28] = 5.0  # a one-pixel sprinkle
    out = postprocess.fill_small_regions(logits, max_hole_area=2, max_sprinkle_area=2)
    assert out[10, 10] > 0 and out[28, 28] < 0
    assert (out[4:20, 4:20] > 0).all()
    assert np.array_equal(postprocess.fill_small_regions(logits), logits)


def test_clamp() -> None:
    assert postprocess.clamp_logits(np.array([-100.0, 0.5, 100.0])).tolist() == [-32, 0.5, 32]
