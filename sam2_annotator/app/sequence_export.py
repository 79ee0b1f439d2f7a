"""Export a sequence: COCO with track ids plus the frames as images, and per-frame PNG masks.

Written into one folder (nothing outside it)::

    OUT/annotations.json     COCO: one image per processed frame, one annotation per present
                             object per frame, ``track_id`` kept, one category per label
    OUT/images/00012.jpg     the frames the COCO file lists (JPEG quality 95, or PNG)
    OUT/masks/00012.png      one PNG per frame, pixel value = track id, 0 = background
                             (DAVIS / YouTube-VOS layout: 8-bit palette PNG whose colours are the
                             objects' colours in the window; 16-bit grey when a track id > 255)

Where objects overlap on a mask PNG, the higher track id is drawn over the lower. Only frames
with a mask record (clicked or propagated) are written. The COCO file is written by the track
CLI's writer (:mod:`sam2_annotator.annotations.track_coco`). Runs as a background job: the
frames are read once, in order, from a frame source of its own (no seeking in a video), and
``cancelled()`` is checked between frames. Never writes over the clip's own frames.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from sam2_annotator.annotations.model import default_color
from sam2_annotator.annotations.track_coco import TrackAnnotation, track_coco, write_track_coco
from sam2_annotator.app.sequence import SequenceModel, SequenceSnapshot
from sam2_annotator.engine.video_io import FrameSource
from sam2_annotator.errors import OperationCancelled, ProjectError, UserError

log = logging.getLogger(__name__)

COCO_NAME = "annotations.json"
IMAGES_DIR = "images"
MASKS_DIR = "masks"
JPEG_QUALITY = 95

ProgressFn = Callable[[int, int, str], None]
CancelledFn = Callable[[], bool]


@dataclass(frozen=True)
class SequenceExportOptions:
    folder: Path
    coco: bool = True  # annotations.json + images/
    masks: bool = True  # masks/NNNNN.png
    image_format: Literal["jpg", "png"] = "jpg"


@dataclass(frozen=True)
class SequenceExportSummary:
    folder: Path
    frames: int
    annotations: int
    masks_written: int

    def line(self) -> str:
        parts = [f"{self.frames} frames"]
        if self.annotations:
            parts.append(f"{self.annotations} annotations")
        if self.masks_written:
            parts.append(f"{self.masks_written} mask PNGs")
        return f"exported {', '.join(parts)} to {self.folder}"


def categories_of(snap: SequenceSnapshot) -> tuple[list[tuple[int, str]], dict[int, int]]:
    """COCO categories (one per distinct label, in track id order) and track id -> category."""
    ids: dict[str, int] = {}
    by_track: dict[int, int] = {}
    for obj in snap.objects:
        by_track[obj.track_id] = ids.setdefault(obj.label, len(ids) + 1)
    return [(i, name) for name, i in ids.items()], by_track


def check_target(options: SequenceExportOptions, source_path: Path) -> None:
    """Refuse a target whose images would land in the clip's own frame folder."""
    if not (options.coco or options.masks):
        raise UserError("choose at least one of COCO and mask PNGs")
    source = source_path.resolve()
    for sub in (IMAGES_DIR, MASKS_DIR):
        if (options.folder / sub).resolve() == source:
            raise UserError(
                f"{options.folder / sub} is the clip's own frame folder; export somewhere else"
            )
    if options.folder.resolve() == source and source.is_file():
        raise UserError(f"{options.folder} is the video file itself")


def index_mask(snap_masks: dict[int, np.ndarray], frame_hw: tuple[int, int]) -> np.ndarray:
    """One frame's masks as an id map (higher track ids drawn over lower ones)."""
    dtype = np.uint8 if max(snap_masks, default=0) <= 255 else np.uint16
    out = np.zeros(frame_hw, dtype)
    for track_id in sorted(snap_masks):
        out[snap_masks[track_id]] = track_id
    return out


def _palette() -> list[int]:
    colours = [(0, 0, 0)] + [default_color(i) for i in range(1, 256)]
    return [c for rgb in colours for c in rgb]


def write_index_png(path: Path, ids: np.ndarray) -> None:
    try:
        if ids.dtype == np.uint8:
            image = Image.fromarray(ids, "P")
            image.putpalette(_palette())
            image.save(path, optimize=False)
        else:
            ok, data = cv2.imencode(".png", ids)
            if not ok:  # pragma: no cover - encoding uint16 PNG does not fail
                raise UserError(f"cannot encode {path.name}")
            path.write_bytes(data.tobytes())
    except OSError as exc:
        raise ProjectError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_frame_image(path: Path, rgb: np.ndarray) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if path.suffix == ".jpg" else []
    ok, data = cv2.imencode(path.suffix, np.ascontiguousarray(rgb[:, :, ::-1]), params)
    if not ok:  # pragma: no cover
        raise UserError(f"cannot encode {path.name}")
    try:
        path.write_bytes(data.tobytes())
    except OSError as exc:
        raise ProjectError(f"cannot write {path}: {exc.strerror or exc}") from exc


def export_sequence(
    snap: SequenceSnapshot,
    source: FrameSource,
    source_path: Path,
    options: SequenceExportOptions,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> SequenceExportSummary:
    """See the module docstring; raises :class:`OperationCancelled` when cancelled."""
    check_target(options, source_path)
    model = SequenceModel.from_snapshot(snap)
    frames = model.processed_frames()
    if not frames:
        raise UserError("nothing to export yet: click on an object and propagate first")
    if (len(source), source.frame_hw) != (snap.num_frames, snap.frame_hw):
        raise UserError(f"{source.name} no longer matches the project (frames or size changed)")
    folder = options.folder
    images_dir, masks_dir = folder / IMAGES_DIR, folder / MASKS_DIR
    try:
        for sub, wanted in ((images_dir, options.coco), (masks_dir, options.masks)):
            if wanted:
                sub.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProjectError(f"cannot create {folder}: {exc.strerror or exc}") from exc
    categories, category_of = categories_of(snap)
    suffix = f".{options.image_format}"
    annotations: list[TrackAnnotation] = []
    total = len(frames) + (1 if options.coco else 0)
    masks_written = 0
    for done, frame in enumerate(frames):
        if cancelled is not None and cancelled():
            raise OperationCancelled(f"export cancelled after {done} of {len(frames)} frames")
        if progress is not None:
            progress(done, total, f"frame {frame}")
        records = model.masks_on(frame)
        if options.coco:
            write_frame_image(images_dir / f"{frame:05d}{suffix}", source.read(frame))
            annotations.extend(
                TrackAnnotation(frame, t, m.rle, category_of[t], m.score)
                for t, m in sorted(records.items())
            )
        if options.masks:
            present = {t: m.rle.decode() for t, m in records.items() if m.present}
            write_index_png(masks_dir / f"{frame:05d}.png", index_mask(present, snap.frame_hw))
            masks_written += 1
    count = 0
    if options.coco:
        if progress is not None:
            progress(len(frames), total, COCO_NAME)
        data = track_coco(
            frames,
            annotations,
            snap.frame_hw,
            f"tracked with sam2-annotator from {snap.source_name}",
            categories=categories,
            file_name=lambda f: f"{IMAGES_DIR}/{f:05d}{suffix}",
        )
        count = len(data["annotations"])
        write_track_coco(folder / COCO_NAME, data)
    if progress is not None:
        progress(total, total, "done")
    log.info("exported %d frames of %s to %s", len(frames), snap.source_name, folder)
    return SequenceExportSummary(folder, len(frames), count, masks_written)
