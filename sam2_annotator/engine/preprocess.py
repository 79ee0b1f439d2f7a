"""Pre-processing identical to the reference ``SAM2ImagePredictor``.

The reference converts the RGB image to float in [0, 1], resizes it to 1024x1024 *without*
keeping the aspect ratio using torchvision's bilinear resize with antialiasing, then normalises
with ImageNet mean/std. OpenCV has no antialiased bilinear filter (``INTER_AREA`` and
``INTER_LINEAR`` both differ from it by up to several grey levels), so the resize here rebuilds
PyTorch's separable antialiased kernel (``_upsample_bilinear2d_aa``: a triangle filter whose
support is stretched by the scale factor when shrinking, weights normalised per output pixel).
That keeps the encoder input within float rounding of the reference, which the parity tests check.

Speed: each axis' weights are a band matrix (a few taps per output pixel, about ``2 * scale``
when shrinking). They are cut into blocks of :data:`BLOCK` output pixels; each block only reads
the contiguous input range its taps cover, so one pass is a handful of small dense matrix
products (BLAS) whose cost grows with the input size, never with ``in * out`` as one dense
matrix product per axis would. The blocks are cached per ``(in_size, out_size)``. The uint8
image is converted to float one block of rows at a time (no full-size float copy), and the
``1/255`` and ImageNet normalisation are applied once to the 1024x1024 result; both only
reorder float rounding (max abs difference to torch stays far below 2e-6, the tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from sam2_annotator.engine.types import INPUT_SIZE

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

# Output pixels per dense block. Small blocks waste few multiplications on the band's zeros
# (about (BLOCK + 2) / 2 times the taps' work when shrinking); BLAS still runs them at speed
# because the other dimension of each product is long (a chunk of an image row).
BLOCK = 8
#: Largest m*n*k that OpenBLAS runs on one thread (its ``SMP_THRESHOLD_MIN`` 65536 times the
#: default ``GEMM_MULTITHREAD_THRESHOLD`` 4); see :func:`_resize_rows`.
_SINGLE_THREAD_GEMM = 65536 * 4 - 1


@dataclass(frozen=True)
class AxisWeights:
    """Sparse weights for one axis: ``out[i] = sum_k weights[i, k] * in[index[i, k]]``."""

    index: np.ndarray  # (out, taps) int64
    weights: np.ndarray  # (out, taps) float32


@dataclass(frozen=True)
class WeightBlock:
    """Output pixels ``[start, stop)`` = ``dense @ in[lo:hi]`` along one axis."""

    start: int
    stop: int
    lo: int
    hi: int
    dense: np.ndarray  # (stop - start, hi - lo) float32


@lru_cache(maxsize=32)
def aa_bilinear_weights(in_size: int, out_size: int) -> AxisWeights:
    """PyTorch's antialiased bilinear weights (``align_corners=False``) for one axis.

    The arithmetic follows the C++ kernel (``_compute_indices_min_size_weights_aa`` for a float
    tensor) operation by operation, including where it rounds to float32: scale, centre, the
    filter argument and the running weight total. With weights computed in float64 instead,
    scales that are not dyadic (e.g. 300 -> 1000) differed from torch by up to 3e-5.
    """
    f32, f64 = np.float32, np.float64
    scale = f32(f32(in_size) / f32(out_size))
    support = scale if scale >= 1.0 else f32(1.0)  # interp_size / 2 = 1, stretched when shrinking
    inv_scale = f32(f32(1.0) / scale) if scale >= 1.0 else f32(1.0)
    centers = (f64(scale) * (np.arange(out_size, dtype=f64) + 0.5)).astype(f32)
    # int() truncates toward zero, as the C++ kernel's cast does.
    xmin = np.trunc((centers - support).astype(f64) + 0.5)
    xmax = np.trunc((centers + support).astype(f64) + 0.5)
    xmin = np.maximum(xmin, 0).astype(np.int64)
    xmax = np.minimum(xmax, in_size).astype(np.int64)
    taps = int((xmax - xmin).max())
    index = xmin[:, None] + np.arange(taps)[None, :]
    argument = (index.astype(f32) - centers[:, None]).astype(f64) + 0.5
    distance = np.abs((argument * f64(inv_scale)).astype(f32))
    weights = np.where(distance < 1.0, f32(1.0) - distance, f32(0.0)).astype(f32)
    weights[index >= xmax[:, None]] = 0.0
    totals = np.zeros(out_size, f32)
    for k in range(taps):  # float32 running sum, in tap order
        totals += weights[:, k]
    weights = np.divide(
        weights, totals[:, None], out=np.zeros_like(weights), where=totals[:, None] != 0
    )
    return AxisWeights(np.minimum(index, in_size - 1), weights)


@lru_cache(maxsize=32)
def aa_bilinear_blocks(in_size: int, out_size: int) -> tuple[WeightBlock, ...]:
    """:func:`aa_bilinear_weights` as dense blocks of :data:`BLOCK` output pixels."""
    axis = aa_bilinear_weights(in_size, out_size)
    blocks = []
    for start in range(0, out_size, BLOCK):
        stop = min(start + BLOCK, out_size)
        index = axis.index[start:stop]
        weights = axis.weights[start:stop]
        lo, hi = int(index.min()), int(index.max()) + 1
        dense = np.zeros((stop - start, hi - lo), np.float32)
        rows = np.broadcast_to(np.arange(stop - start)[:, None], index.shape)
        # Clamped indices past the support repeat the last pixel with weight 0: add, don't set.
        np.add.at(dense, (rows, index - lo), weights)
        dense.setflags(write=False)
        blocks.append(WeightBlock(start, stop, lo, hi, dense))
    return tuple(blocks)


def _resize_rows(rows: np.ndarray, out_size: int) -> np.ndarray:
    """Resample a 2-D array along axis 0 (any dtype in, float32 out)."""
    if rows.shape[0] == out_size:  # PyTorch skips an axis whose size does not change
        return rows.astype(np.float32)
    out = np.empty((out_size, rows.shape[1]), np.float32)
    for block in aa_bilinear_blocks(rows.shape[0], out_size):
        # Column chunks keep each product under OpenBLAS's threading threshold: threaded, these
        # thin products spent 10-40x the CPU time of one thread (workers spin-waiting), e.g.
        # 1 s instead of 25 ms for a 2250x1500 photo on 2 busy cores.
        step = max(_SINGLE_THREAD_GEMM // block.dense.size, 64)
        for col in range(0, rows.shape[1], step):
            np.matmul(
                block.dense,
                np.asarray(rows[block.lo : block.hi, col : col + step], np.float32),
                out=out[block.start : block.stop, col : col + step],
            )
    return out


def resize_aa_bilinear_chw(image: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of an (H, W, C) image to a float32 (C, out_h, out_w) array.

    Same values as ``F.interpolate(..., mode="bilinear", antialias=True)`` on the image as
    float32 (uint8 input is resized as its integer values, without scaling).
    """
    height, width, channels = image.shape
    out_h, out_w = out_hw
    # Height first on the contiguous (H, W*C) rows: the large input is read once, block by block,
    # in memory order. Then the (out_h, W, C) result is laid out as (W, C*out_h) rows so that the
    # width pass is the same row resampling.
    # Both layout changes are plain 2-D transposes; OpenCV's blocked transpose is ~5x faster
    # than numpy's copy of a transposed view for the final 1024 x 3072 one.
    tall = _resize_rows(np.ascontiguousarray(image).reshape(height, width * channels), out_h)
    turned = cv2.transpose(tall)  # (W*C, out_h) = (W, C*out_h) rows
    del tall
    wide = _resize_rows(turned.reshape(width, channels * out_h), out_w)
    del turned
    return cv2.transpose(wide).reshape(channels, out_h, out_w)  # (C*out_h, out_w)


def resize_aa_bilinear(image: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of a float32 (H, W, C) image, matching PyTorch/torchvision."""
    return resize_aa_bilinear_chw(image, out_hw).transpose(1, 2, 0)


def preprocess(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> normalised float32 tensor [1, 3, size, size]."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    resized = resize_aa_bilinear_chw(image, (size, size))  # in 0..255
    # (x / 255 - mean) / std, with x / 255 folded into the per-channel scale.
    scale = (np.float32(1.0) / (np.float32(255.0) * IMAGENET_STD))[:, None, None]
    offset = (IMAGENET_MEAN / IMAGENET_STD)[:, None, None]
    resized *= scale
    resized -= offset
    return resized[None]


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
