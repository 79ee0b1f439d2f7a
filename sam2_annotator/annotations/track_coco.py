"""Tracked objects as COCO: one image per frame, one annotation per present object per frame.

The one writer for tracking results, used by ``sam2-annotator track --coco`` and by the
window's sequence export. Each annotation keeps the object's ``track_id`` (a top-level field, as
the track CLI has always written it); images carry their ``frame`` index. Objects absent on a
frame (empty mask) get no annotation there, but the frame stays listed as an image, so a
tracker's "not here" is kept as a negative example.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sam2_annotator.annotations.atomic import write_atomic
from sam2_annotator.annotations.masks import Rle


@dataclass(frozen=True)
class TrackAnnotation:
    """One object's mask on one frame."""

    frame: int
    track_id: int
    rle: Rle
    category_id: int = 1
    score: float | None = None


def default_file_name(frame: int) -> str:
    return f"{frame:05d}.jpg"


def track_coco(
    frames: Iterable[int],
    annotations: Iterable[TrackAnnotation],
    frame_hw: tuple[int, int],
    description: str,
    categories: Sequence[tuple[int, str]] = ((1, "object"),),
    file_name: Callable[[int], str] = default_file_name,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """The COCO dict (image id = frame + 1; annotations in frame, then track id order).

    ``progress(n)`` is called after each annotation (for a job's progress bar).
    """
    height, width = frame_hw
    images = [
        {"id": f + 1, "file_name": file_name(f), "width": width, "height": height, "frame": f}
        for f in sorted(set(frames))
    ]
    out: list[dict[str, Any]] = []
    for item in sorted(annotations, key=lambda a: (a.frame, a.track_id)):
        if item.rle.area == 0:
            continue
        record: dict[str, Any] = {
            "id": len(out) + 1,
            "image_id": item.frame + 1,
            "category_id": item.category_id,
            "segmentation": item.rle.to_coco(),
            "area": item.rle.area,
            "bbox": list(item.rle.bbox),
            "iscrowd": 0,
            "track_id": item.track_id,
        }
        if item.score is not None:
            record["score"] = round(float(item.score), 4)
        out.append(record)
        if progress is not None:
            progress(len(out))
    return {
        "info": {"description": description},
        "images": images,
        "annotations": out,
        "categories": [{"id": i, "name": n, "supercategory": ""} for i, n in categories],
    }


def write_track_coco(path: str | Path, data: dict[str, Any]) -> None:
    """Write atomically (a reader never sees half a file; raises ProjectSaveError)."""
    write_atomic(Path(path), (json.dumps(data) + "\n").encode("utf-8"), backup=False)
