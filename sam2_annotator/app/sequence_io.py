"""The sequence project file: ``NAME.sam2-track.json`` beside the clip (no Qt).

``clip.mp4`` is annotated in ``clip.sam2-track.json`` next to it; a folder of frames ``shots/`` in
``shots/shots.sam2-track.json`` inside it (as a folder of images keeps its ``annotations.json``).
The clip itself is only ever read.

The file holds the objects (track id, label), every click (frame pixels) and every mask (COCO
compressed RLE, per frame and object, with the object score and whether it came from clicks or
from propagation). It is written like the image projects: atomically (temp file, fsync,
``os.replace``) with one ``.bak``, by the coalescing :class:`~.annotations.saver.BackgroundSaver`
(a burst of propagated frames is one write of the latest state). It is created with the first
edit: opening a clip to look at it writes nothing.

The tracker's memory is not in the file. Reopening shows every saved mask at once; the clicks are
replayed to the tracker (one encoder run per clicked frame) so that new clicks and propagation
continue from them. A correction made on a tracked frame is then a conditioning frame of a fresh
tracker, so propagating again may differ slightly from the first session's masks after it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sam2_annotator.annotations.atomic import write_atomic
from sam2_annotator.annotations.masks import SegmentationError, rle_from_string
from sam2_annotator.annotations.saver import BackgroundSaver, SaveResult, Snapshot
from sam2_annotator.app.sequence import (
    FrameMask,
    FramePrompt,
    SequenceModel,
    SequenceSnapshot,
    TrackObject,
)
from sam2_annotator.engine.video_io import VIDEO_EXTENSIONS
from sam2_annotator.errors import ProjectError

log = logging.getLogger(__name__)

SEQUENCE_SUFFIX = ".sam2-track.json"
FORMAT = "sam2-annotator-sequence"
FORMAT_VERSION = 1
#: ``sam2_base.NO_OBJ_SCORE``
NO_OBJECT_SCORE = -1024.0


def is_video_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_sequence_project(path: str | Path) -> bool:
    return Path(path).name.endswith(SEQUENCE_SUFFIX)


def project_path_for(source: str | Path) -> Path:
    """Where the work on ``source`` (a video file or a frame folder) is saved."""
    source = Path(source).expanduser().resolve()
    if source.is_dir():
        return source / f"{source.name}{SEQUENCE_SUFFIX}"
    return source.with_name(source.stem + SEQUENCE_SUFFIX)


def source_for_project(project: str | Path) -> Path:
    """The clip a project file belongs to (its ``source`` entry, relative to the file)."""
    project = Path(project).expanduser().resolve()
    data = _read_json(project)
    name = data.get("source", {}).get("name") if isinstance(data.get("source"), dict) else None
    if not isinstance(name, str) or not name:
        raise ProjectError(f"{project.name} does not name its video or frame folder")
    if project.parent.name == name and project.name == f"{name}{SEQUENCE_SUFFIX}":
        return project.parent  # a frame folder's project lies inside it
    source = project.parent / name
    if not source.exists():
        raise ProjectError(f"{project.name} belongs to {name}, which is not in {project.parent}")
    return source


# --------------------------------------------------------------------------- JSON


def snapshot_to_json(snap: SequenceSnapshot) -> dict[str, Any]:
    height, width = snap.frame_hw
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "source": {
            "name": snap.source_name,
            "frames": snap.num_frames,
            "width": width,
            "height": height,
        },
        "next_track_id": snap.next_track_id,
        "objects": [{"track_id": o.track_id, "label": o.label} for o in snap.objects],
        "prompts": [
            {
                "frame": f,
                "track_id": t,
                "points": [list(p) for p in prompt.points],
                "box": None if prompt.box is None else list(prompt.box),
            }
            for f, t, prompt in snap.prompts
        ],
        "masks": [
            {
                "frame": f,
                "track_id": t,
                "source": m.source,
                "score": _finite(m.score),
                "counts": m.rle.counts.decode("ascii"),
            }
            for f, masks in snap.masks
            for t, m in masks
        ],
    }


def _finite(score: float) -> float:
    """JSON has no infinity: an object never scored (absent) is stored as SAM2's no-object
    logit."""
    return float(score) if math.isfinite(score) else NO_OBJECT_SCORE


def model_from_json(data: Any, where: str) -> SequenceModel:
    """Parse a project file's content; :class:`ProjectError` naming the problem otherwise."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProjectError(f"{where} is not a sam2-annotator sequence project")
    if data.get("version") != FORMAT_VERSION:
        raise ProjectError(f"{where} has version {data.get('version')}; this build reads 1")
    try:
        source = data["source"]
        height, width = int(source["height"]), int(source["width"])
        model = SequenceModel(str(source["name"]), int(source["frames"]), (height, width))
        for entry in data["objects"]:
            obj = TrackObject(int(entry["track_id"]), str(entry["label"]))
            model.objects[obj.track_id] = obj
        for entry in data["prompts"]:
            points = tuple((float(p[0]), float(p[1]), int(p[2])) for p in entry["points"])
            box = entry.get("box")
            prompt = FramePrompt(points, None if box is None else tuple(float(v) for v in box))
            key = (int(entry["frame"]), int(entry["track_id"]))
            _check_key(model, key)
            model.prompts[key] = prompt
        for entry in data["masks"]:
            key = (int(entry["frame"]), int(entry["track_id"]))
            _check_key(model, key)
            if entry["source"] not in ("prompt", "tracked"):
                raise ValueError(f"unknown mask source {entry['source']!r}")
            rle = rle_from_string(str(entry["counts"]), height, width)
            model.masks.setdefault(key[0], {})[key[1]] = FrameMask(
                rle, float(entry["score"]), entry["source"]
            )
        known = max(model.objects, default=0)
        model.next_track_id = max(int(data.get("next_track_id", 1)), known + 1)
    except (KeyError, TypeError, ValueError, IndexError, SegmentationError) as exc:
        raise ProjectError(f"{where} is damaged: {exc!r}") from exc
    return model


def _check_key(model: SequenceModel, key: tuple[int, int]) -> None:
    frame, track_id = key
    if track_id not in model.objects:
        raise ValueError(f"object {track_id} is not listed")
    if not 0 <= frame < model.num_frames:
        raise ValueError(f"frame {frame} is outside the clip")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProjectError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ProjectError(f"{path.name} is not a sequence project")
    return data


def read_project(path: Path) -> SequenceModel:
    return model_from_json(_read_json(path), path.name)


def open_model(
    project: Path, source_name: str, num_frames: int, frame_hw: tuple[int, int]
) -> SequenceModel:
    """The saved work for this clip, or a new model (nothing is written yet).

    A project made for a clip of another length or size is refused: masks would be misplaced.
    """
    if not project.is_file():
        return SequenceModel(source_name, num_frames, frame_hw)
    model = read_project(project)
    if (model.num_frames, model.frame_hw) != (num_frames, tuple(frame_hw)):
        raise ProjectError(
            f"{project.name} was made for {model.num_frames} frames of "
            f"{model.frame_hw[1]}x{model.frame_hw[0]}, but {source_name} has {num_frames} frames "
            f"of {frame_hw[1]}x{frame_hw[0]}; move the file away to start again"
        )
    model.source_name = source_name
    return model


def write_project(snapshot: Snapshot) -> None:
    """The :class:`BackgroundSaver` writer of sequence projects."""
    data = snapshot_to_json(snapshot.project)
    write_atomic(snapshot.path, (json.dumps(data) + "\n").encode("utf-8"))


class SequenceSaver:
    """Writes ``model`` to ``path`` after every change, off the calling thread (coalescing)."""

    def __init__(
        self,
        model: SequenceModel,
        path: Path,
        on_result: Callable[[SaveResult], None] | None = None,
    ) -> None:
        self.model = model
        self.path = path
        self._saver = BackgroundSaver(on_result, writer=write_project)
        model.listeners.append(lambda _change: self.save())

    def save(self) -> None:
        snap = Snapshot(self.model.generation, self.model.snapshot(), self.path)
        self._saver.submit(snap)

    @property
    def saved_generation(self) -> int:
        return self._saver.saved_generation

    def flush(self, timeout: float | None = 30.0) -> SaveResult | None:
        return self._saver.flush(timeout)

    def close(self) -> SaveResult | None:
        return self._saver.close()
