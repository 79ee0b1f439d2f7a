"""Post-processing of decoder logits, identical to the reference ``SAM2ImagePredictor``.

* choosing a mask: multimask -> the candidate with the highest predicted IoU; single-mask ->
  SAM2's dynamic rule (keep token 0 if its stability score is >= 0.98, else the best of the
  multimask tokens), as ``MaskDecoder._dynamic_multimask_via_stability`` does;
* the chosen low-resolution logits are upsampled bilinearly (``align_corners=False``) to the
  original size and thresholded at 0. Only the chosen mask is upsampled.
"""

from __future__ import annotations

import cv2
import numpy as np

from sam2_annotator.engine.types import DecoderOutput

MASK_THRESHOLD = 0.0
STABILITY_DELTA = 0.05
STABILITY_THRESHOLD = 0.98
#: The reference clamps the low-res logits it returns (and that callers feed back as mask_input).
LOGIT_CLAMP = 32.0


def stability_score(logits: np.ndarray, delta: float = STABILITY_DELTA) -> float:
    """IoU between the masks thresholded at +delta and -delta (1.0 for an empty union)."""
    area_i = np.count_nonzero(logits > delta)
    area_u = np.count_nonzero(logits > -delta)
    return float(area_i / area_u) if area_u > 0 else 1.0


def multimask_indices(output: DecoderOutput) -> range:
    """Indices of the multimask candidates within ``output.low_res_logits``."""
    count = len(output.iou_predictions)
    return range(1, count) if output.single_token else range(count)


def best_multimask(output: DecoderOutput) -> int:
    indices = multimask_indices(output)
    scores = output.iou_predictions[list(indices)]
    return indices[int(np.argmax(scores))]


def choose_single(output: DecoderOutput) -> int:
    """SAM2's single-mask choice: token 0 when stable, else the best multimask candidate."""
    if not output.single_token:
        return best_multimask(output)
    if stability_score(output.low_res_logits[0]) >= STABILITY_THRESHOLD:
        return 0
    return best_multimask(output)


def upsample_logits(logits: np.ndarray, orig_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (h, w) float32 logits to ``orig_hw`` (half-pixel centres, edge clamp)."""
    height, width = orig_hw
    return cv2.resize(
        logits.astype(np.float32, copy=False), (width, height), interpolation=cv2.INTER_LINEAR
    )


def logits_to_mask(logits: np.ndarray, orig_hw: tuple[int, int]) -> np.ndarray:
    """The boolean mask at original size for one candidate's low-resolution logits."""
    return upsample_logits(logits, orig_hw) > MASK_THRESHOLD


def fill_small_regions(
    logits: np.ndarray, max_hole_area: int = 0, max_sprinkle_area: int = 0
) -> np.ndarray:
    """Optional clean-up on low-resolution logits, like the reference's ``postprocess_masks``.

    Background components of at most ``max_hole_area`` pixels become foreground (+10 logit), then
    foreground components of at most ``max_sprinkle_area`` pixels become background (-10).
    Areas are in low-resolution (256x256) pixels, as in the reference.
    """
    out = logits.astype(np.float32, copy=True)
    if max_hole_area > 0:
        small = _small_components(out <= MASK_THRESHOLD, max_hole_area)
        out[small] = MASK_THRESHOLD + 10.0
    if max_sprinkle_area > 0:
        small = _small_components(out > MASK_THRESHOLD, max_sprinkle_area)
        out[small] = MASK_THRESHOLD - 10.0
    return out


def _small_components(binary: np.ndarray, max_area: int) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        binary.astype(np.uint8), connectivity=8
    )
    small_ids = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] <= max_area)
    small_ids = small_ids[small_ids > 0]  # label 0 is "not in binary"
    if count <= 1 or small_ids.size == 0:
        return np.zeros(binary.shape, bool)
    return np.isin(labels, small_ids)


def clamp_logits(logits: np.ndarray) -> np.ndarray:
    return np.clip(logits, -LOGIT_CLAMP, LOGIT_CLAMP)
