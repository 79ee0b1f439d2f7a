"""Pre-processing identical to the reference ``SAM2ImagePredictor``.

The reference converts the RGB image to float in [0, 1], resizes it to 1024x1024 *without*
keeping the aspect ratio using torchvision's bilinear resize with antialiasing, then normalises
with ImageNet mean/std. OpenCV has no antialiased bilinear filter (``INTER_AREA`` and
``INTER_LINEAR`` both differ from it by up to several grey levels), so the resize here rebuilds
PyTorch's separable antialiased kernel (``_upsample_bilinear2d_aa``: a triangle filter whose
support is stretched by the scale factor when shrinking, weights normalised per output pixel) as
sparse per-axis weights. That keeps the encoder input within float rounding of the reference,
which the parity tests check.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sam2_annotator.engine.types import INPUT_SIZE

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass(frozen=True)
class AxisWeights:
    """Sparse weights for one axis: ``out[i] = sum_k weights[i, k] * in[index[i, k]]``."""

    index: np.ndarray  # (out, taps) int64
    weights: np.ndarray  # (out, taps) float32


@lru_cache(maxsize=32)
def aa_bilinear_weights(in_size: int, out_size: int) -> AxisWeights:
    """PyTorch's antialiased bilinear weights (``align_corners=False``) for one axis."""
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0
    inv_scale = 1.0 / scale if scale >= 1.0 else 1.0
    centers = scale * (np.arange(out_size, dtype=np.float64) + 0.5)
    # int() truncates toward zero, as the C++ kernel's cast does.
    xmin = np.maximum(np.trunc(centers - support + 0.5), 0).astype(np.int64)
    xmax = np.minimum(np.trunc(centers + support + 0.5), in_size).astype(np.int64)
    taps = int((xmax - xmin).max())
    index = xmin[:, None] + np.arange(taps)[None, :]
    distance = (index - centers[:, None] + 0.5) * inv_scale
    weights = np.clip(1.0 - np.abs(distance), 0.0, None)
    weights[index >= xmax[:, None]] = 0.0
    totals = weights.sum(axis=1, keepdims=True)
    weights = np.divide(weights, totals, out=np.zeros_like(weights), where=totals != 0)
    return AxisWeights(np.minimum(index, in_size - 1), weights.astype(np.float32))


def _resample_axis0(image: np.ndarray, axis: AxisWeights) -> np.ndarray:
    """Resample along the first axis; loops over taps so memory stays one output-sized buffer."""
    out = np.zeros((axis.index.shape[0], *image.shape[1:]), np.float32)
    expand = (slice(None),) + (None,) * (image.ndim - 1)
    for k in range(axis.index.shape[1]):
        out += axis.weights[:, k][expand] * image[axis.index[:, k]]
    return out


def resize_aa_bilinear(image: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of a float32 (H, W, C) image, matching PyTorch/torchvision."""
    height, width = image.shape[:2]
    out_h, out_w = out_hw
    # Width first (as PyTorch does), on the transposed view so both passes gather along axis 0.
    cols = _resample_axis0(np.swapaxes(image, 0, 1), aa_bilinear_weights(width, out_w))
    return _resample_axis0(np.swapaxes(cols, 0, 1), aa_bilinear_weights(height, out_h))


def preprocess(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> normalised float32 tensor [1, 3, size, size]."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    scaled = image.astype(np.float32) / np.float32(255.0)
    resized = resize_aa_bilinear(scaled, (size, size))
    normalised = (resized - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])


def transform_coords(
    coords: np.ndarray, orig_hw: tuple[int, int], size: int = INPUT_SIZE
) -> np.ndarray:
    """Original-image pixel coordinates ``(..., 2)`` as ``x, y`` -> the model's input space.

    Same arithmetic as the reference (normalise by width/height, then scale), in float32.
    """
    height, width = orig_hw
    out = np.asarray(coords, np.float32).copy()
    out[..., 0] = out[..., 0] / np.float32(width)
    out[..., 1] = out[..., 1] / np.float32(height)
    return out * np.float32(size)
