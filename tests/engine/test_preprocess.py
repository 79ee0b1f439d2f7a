"""Pre-processing against the reference's torch ops (bilinear antialiased resize, normalise)."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_annotator.engine.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    aa_bilinear_weights,
    preprocess,
    resize_aa_bilinear,
    transform_coords,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _torch_resize(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    out = F.interpolate(tensor, size=hw, mode="bilinear", align_corners=False, antialias=True)
    return out[0].numpy().transpose(1, 2, 0)


@pytest.mark.parametrize(
    "shape", [(1200, 1800), (534, 800), (100, 50), (1024, 1024), (3000, 7), (513, 2049), (1, 1)]
)
def test_resize_matches_torch_antialiased_bilinear(shape) -> None:
    rng = np.random.default_rng(sum(shape))
    image = rng.random((*shape, 3), dtype=np.float32)
    ours = resize_aa_bilinear(image, (1024, 1024))
    assert ours.shape == (1024, 1024, 3)
    np.testing.assert_allclose(ours, _torch_resize(image, (1024, 1024)), atol=2e-6, rtol=0)


def test_weights_are_normalised_and_local() -> None:
    axis = aa_bilinear_weights(1800, 1024)
    np.testing.assert_allclose(axis.weights.sum(axis=1), 1.0, atol=1e-6)
    assert axis.index.min() >= 0 and axis.index.max() < 1800
    assert axis.index.shape[1] <= 5  # support grows with the scale factor (1.76 here)


def test_preprocess_layout_and_normalisation(shared_images) -> None:
    from sam2_annotator.engine.image_io import load_image

    image = load_image(shared_images["groceries"])
    tensor = preprocess(image)
    assert tensor.shape == (1, 3, 1024, 1024) and tensor.dtype == np.float32
    assert tensor.flags.c_contiguous
    expected = _torch_resize(image.astype(np.float32) / 255, (1024, 1024)) - IMAGENET_MEAN
    expected = (expected / IMAGENET_STD).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(tensor, expected, atol=1e-5)


def test_preprocess_rejects_non_rgb8() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        preprocess(np.zeros((10, 10), np.uint8))


def test_transform_coords_scales_each_axis_to_input_space() -> None:
    coords = np.array([[0, 0], [1800, 1200], [900, 300]], np.float32)
    out = transform_coords(coords, (1200, 1800))
    np.testing.assert_allclose(out, [[0, 0], [1024, 1024], [512, 256]], atol=1e-4)
