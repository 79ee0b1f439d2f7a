"""Writing masks as images. Through ``cv2.imencode`` + bytes so non-ASCII paths work everywhere."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sam2_annotator.errors import UserError


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    """A boolean mask as an 8-bit PNG with 0 and 255."""
    ok, data = cv2.imencode(".png", np.where(mask, 255, 0).astype(np.uint8))
    if not ok:  # pragma: no cover - PNG encoding of uint8 does not fail
        raise UserError(f"cannot encode mask for {path}")
    try:
        Path(path).write_bytes(data.tobytes())
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc
