"""Pre-processing against the reference's torch ops (bilinear antialiased resize, normalise)."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_annotator.engine.preprocess import (
    BLOCK,
    IMAGENET_MEAN,
    IMAGENET_STD,
    aa_bilinear_blocks,
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


def _torch_preprocess(image: np.ndarray) -> np.ndarray:
    expected = _torch_resize(image.astype(np.float32) / 255, (1024, 1024)) - IMAGENET_MEAN
    return (expected / IMAGENET_STD).transpose(2, 0, 1)[None]


@pytest.mark.parametrize(
    "shape",
    [
        (1200, 1800),
        (534, 800),
        (100, 50),  # upscale on both axes
        (1024, 1024),  # no resampling at all
        (1024, 3000),  # one axis unchanged
        (3000, 7),
        (513, 2049),
        (1, 1),
        (4000, 6000),  # a large photo: ~12 taps per output pixel on the width
        (9000, 301),  # strong shrink on one axis, upscale on the other
    ],
)
def test_resize_matches_torch_antialiased_bilinear(shape) -> None:
    rng = np.random.default_rng(sum(shape))
    image = rng.random((*shape, 3), dtype=np.float32)
    ours = resize_aa_bilinear(image, (1024, 1024))
    assert ours.shape == (1024, 1024, 3)
    np.testing.assert_allclose(ours, _torch_resize(image, (1024, 1024)), atol=2e-6, rtol=0)


@pytest.mark.parametrize(("shape", "out_hw"), [((300, 200), (1000, 1500)), ((700, 90), (64, 333))])
def test_resize_to_other_sizes_matches_torch(shape, out_hw) -> None:
    rng = np.random.default_rng(7)
    image = rng.random((*shape, 2), dtype=np.float32)  # any channel count
    ours = resize_aa_bilinear(image, out_hw)
    np.testing.assert_allclose(ours, _torch_resize(image, out_hw), atol=2e-6, rtol=0)


def test_weights_are_normalised_and_local() -> None:
    axis = aa_bilinear_weights(1800, 1024)
    np.testing.assert_allclose(axis.weights.sum(axis=1), 1.0, atol=1e-6)
    assert axis.index.min() >= 0 and axis.index.max() < 1800
    assert axis.index.shape[1] <= 5  # support grows with the scale factor (1.76 here)


@pytest.mark.parametrize(("in_size", "out_size"), [(1800, 1024), (10000, 1024), (7, 1024)])
def test_blocks_are_banded_and_hold_every_weight(in_size, out_size) -> None:
    blocks = aa_bilinear_blocks(in_size, out_size)
    axis = aa_bilinear_weights(in_size, out_size)
    assert [b.start for b in blocks] == list(range(0, out_size, BLOCK))
    dense = np.zeros((out_size, in_size), np.float64)
    for block in blocks:
        dense[block.start : block.stop, block.lo : block.hi] = block.dense
    np.testing.assert_allclose(dense.sum(axis=1), 1.0, atol=1e-6)
    expected = np.zeros_like(dense)
    np.add.at(expected, (np.arange(out_size)[:, None], axis.index), axis.weights)
    np.testing.assert_array_equal(dense, expected)
    # Banded: all blocks together read each input pixel a bounded number of times (no dense
    # in x out product), about 1 + taps / (BLOCK * scale) when shrinking.
    reads = sum(b.hi - b.lo for b in blocks)
    assert reads <= in_size + len(blocks) * (axis.index.shape[1] + 1) + out_size


def test_preprocess_layout_and_normalisation(shared_images) -> None:
    from sam2_annotator.engine.image_io import load_image

    image = load_image(shared_images["groceries"])
    tensor = preprocess(image)
    assert tensor.shape == (1, 3, 1024, 1024) and tensor.dtype == np.float32
    assert tensor.flags.c_contiguous
    np.testing.assert_allclose(tensor, _torch_preprocess(image), atol=1e-5)


@pytest.mark.parametrize("shape", [(1200, 1800), (333, 500), (1024, 1024)])
def test_preprocess_matches_torch_on_uint8(shape) -> None:
    # Resizing the 0..255 values and dividing once at the end only reorders float rounding.
    image = np.random.default_rng(3).integers(0, 256, (*shape, 3), dtype=np.uint8)
    tensor = preprocess(image)
    expected = _torch_preprocess(image)
    np.testing.assert_allclose(tensor, expected, atol=2e-6 / float(IMAGENET_STD.min()), rtol=0)


def test_preprocess_rejects_non_rgb8() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        preprocess(np.zeros((10, 10), np.uint8))


def test_transform_coords_scales_each_axis_to_input_space() -> None:
    coords = np.array([[0, 0], [1800, 1200], [900, 300]], np.float32)
    out = transform_coords(coords, (1200, 1800))
    np.testing.assert_allclose(out, [[0, 0], [1024, 1024], [512, 256]], atol=1e-4)
