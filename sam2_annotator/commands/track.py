"""``sam2-annotator track``: click objects on a frame, follow them through a video.

Masks are written as ``OUT/NNNNN.png`` (frame index, 0/255 at the video's size) for one object,
``OUT/obj<ID>/NNNNN.png`` for several; ``--coco`` writes them as COCO (one image per frame, one
annotation per present object per frame, ``track_id`` = the object id).

``--prompts FILE.json`` gives several objects and frames::

    [{"frame": 0, "object": 1, "points": [[x, y, 1], [x, y, 0]]},
     {"frame": 0, "object": 2, "box": [x0, y0, x1, y1]},
     {"frame": 40, "object": 1, "points": [[x, y, 1]]}]

Prompts are applied in file order (a later entry for the same object and frame replaces the
earlier one, as a new click does); propagation starts at the earliest prompted frame.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sam2_annotator.commands._common import add_model_arguments
from sam2_annotator.commands.segment import box_arg, point_arg
from sam2_annotator.commands.track_options import add_tracker_arguments
from sam2_annotator.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObjectPrompt:
    frame: int
    obj_id: int
    points: list[tuple[float, float, int]]
    box: tuple[float, float, float, float] | None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "track",
        help="track clicked objects through a video or a folder of frames",
        description="Prompt objects on a frame and propagate them through SOURCE (a video "
        "file or a folder of frames sorted by name) with SAM2's video memory, on ONNX Runtime. "
        "Needs a model folder with video graphs (written by the exporter).",
    )
    parser.add_argument("source", type=Path, help="video file or folder of frames")
    parser.add_argument("--frame", type=int, default=0, help="frame of --point/--box (default 0)")
    parser.add_argument(
        "--point",
        type=point_arg,
        action="append",
        default=[],
        metavar="X,Y[,1|0]",
        help="a point on --frame; label 1 = positive (default), 0 = negative",
    )
    parser.add_argument("--box", type=box_arg, metavar="X0,Y0,X1,Y1", help="a box on --frame")
    parser.add_argument(
        "--prompts", type=Path, metavar="JSON", help="prompts for several objects/frames"
    )
    parser.add_argument(
        "--frames", type=int, metavar="K", help="process at most K frames (default: to the end)"
    )
    parser.add_argument(
        "--reverse", action="store_true", help="propagate backward from the prompted frame"
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="mask folder")
    parser.add_argument("--coco", type=Path, metavar="FILE", help="also write COCO JSON")
    parser.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    add_tracker_arguments(parser)
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def _prompts_from_args(args: argparse.Namespace) -> list[ObjectPrompt]:
    prompts = []
    if args.point or args.box is not None:
        prompts.append(ObjectPrompt(args.frame, 1, list(args.point), args.box))
    if args.prompts is not None:
        prompts.extend(read_prompts(args.prompts))
    if not prompts:
        raise UserError("give --point X,Y / --box X0,Y0,X1,Y1 (on --frame N) or --prompts FILE")
    return prompts


def read_prompts(path: Path) -> list[ObjectPrompt]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read prompts {path}: {exc}") from exc
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of prompts")
    prompts = []
    for i, entry in enumerate(data):
        where = f"{path} entry {i}"
        try:
            frame, obj_id = int(entry.get("frame", 0)), int(entry.get("object", 1))
            points = []
            for p in entry.get("points", []):
                x, y, label = (float(p[0]), float(p[1]), int(p[2]) if len(p) > 2 else 1)
                if label not in (0, 1):
                    raise ValueError(f"label {label} must be 1 or 0")
                points.append((x, y, label))
            box = entry.get("box")
            box = None if box is None else tuple(float(v) for v in box)
            if box is not None and len(box) != 4:
                raise ValueError("a box is four numbers x0, y0, x1, y1")
        except (AttributeError, TypeError, ValueError, IndexError) as exc:
            raise UserError(f"{where}: {exc}") from exc
        if not points and box is None:
            raise UserError(f"{where}: needs points or a box")
        prompts.append(ObjectPrompt(frame, obj_id, points, box))  # type: ignore[arg-type]
    return prompts


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from sam2_annotator.annotations.masks import mask_to_rle
    from sam2_annotator.annotations.track_coco import TrackAnnotation
    from sam2_annotator.bench.memory import current_rss_mb
    from sam2_annotator.commands._common import model_files_from_args
    from sam2_annotator.commands.track_options import (
        memory_line,
        memory_summary,
        tracker_cache_from_args,
        tracker_options_from_args,
    )
    from sam2_annotator.engine.providers import SessionConfig, parse_provider_list
    from sam2_annotator.engine.tracker import VideoTracker
    from sam2_annotator.engine.video_graphs import VideoModel
    from sam2_annotator.engine.video_io import open_source
    from sam2_annotator.masks_io import write_mask_png

    prompts = _prompts_from_args(args)
    if args.frames is not None and args.frames < 1:
        raise UserError("--frames must be at least 1")
    files = model_files_from_args(args)
    video_model = VideoModel.from_folder(files.encoder.parent)
    source = open_source(args.source)
    for prompt in prompts:
        if not 0 <= prompt.frame < len(source):
            raise UserError(f"frame {prompt.frame} does not exist: {source.name} has {len(source)}")
    config = SessionConfig(
        providers=tuple(parse_provider_list(args.providers)), threads=args.threads
    )
    options = tracker_options_from_args(args, video_model.config)
    cache = tracker_cache_from_args(args, files)
    tracker = VideoTracker(str(files.encoder), video_model, source, config, cache, options)
    print(f"model      {files.display_name}; {len(source)} frames {source.name}")
    for prompt in prompts:
        result = tracker.add_points(
            prompt.frame,
            prompt.obj_id,
            np.array([p[:2] for p in prompt.points], np.float32).reshape(-1, 2),
            np.array([p[2] for p in prompt.points], np.int32),
            box=None if prompt.box is None else np.array(prompt.box, np.float32),
        )
        t = result.timings
        print(
            f"prompt     frame {prompt.frame} object {prompt.obj_id}: {result.wall_ms:.0f} ms "
            f"(encoder {t.encoder:.0f}, memory attention {t.memory_attention:.0f}, "
            f"decoder {t.decoder:.0f})"
        )
    obj_ids = sorted(tracker.objects)
    out: Path = args.out
    folders = {i: out if len(obj_ids) == 1 else out / f"obj{i}" for i in obj_ids}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    start = min(p.frame for p in prompts)
    max_track = None if args.frames is None else args.frames - 1
    records: list[dict[str, Any]] = []
    coco_masks: list[TrackAnnotation] = []
    started = time.perf_counter()
    for result in tracker.propagate(start, max_track, reverse=args.reverse):
        masks = result.masks()
        for obj_id, mask in masks.items():
            write_mask_png(folders[obj_id] / f"{result.frame_idx:05d}.png", mask)
            if args.coco is not None and mask.any():
                coco_masks.append(TrackAnnotation(result.frame_idx, obj_id, mask_to_rle(mask)))
        t = result.timings
        present = sum(1 for m in masks.values() if m.any())
        print(
            f"frame {result.frame_idx:5d}  {result.wall_ms:7.0f} ms  encoder {t.encoder:6.0f}  "
            f"memory attention {t.memory_attention:6.0f}  decoder {t.decoder:5.0f}  "
            f"memory encoder {t.memory_encoder:5.0f}  objects present {present}/{len(masks)}"
        )
        records.append(
            {
                "frame": result.frame_idx,
                "ms": round(result.wall_ms, 1),
                "encoder_ms": round(t.encoder, 1),
                "memory_attention_ms": round(t.memory_attention, 1),
                "decoder_ms": round(t.decoder, 1),
                "memory_encoder_ms": round(t.memory_encoder, 1),
                "pixels": {str(k): int(v.sum()) for k, v in masks.items()},
                "rss_mb": round(current_rss_mb() or 0.0, 1),
            }
        )
    total = time.perf_counter() - started
    if args.coco is not None:
        write_coco(args.coco, source, [r["frame"] for r in records], coco_masks)
    print(f"done       {len(records)} frames in {total:.1f} s -> {out}")
    memory = memory_summary(tracker, args)
    print(memory_line(memory))
    if args.json:
        summary = {"model": files.display_name, "frames": records, "memory": memory}
        summary["encoder_runs"] = tracker.encoder_runs
        print(json.dumps(summary, indent=2))
    source.close()
    return 0


def write_coco(path: Path, source: Any, frames: list[int], masks: list[Any]) -> None:
    """COCO: one image per processed frame, one RLE annotation per present object and frame
    (``masks``: :class:`~sam2_annotator.annotations.track_coco.TrackAnnotation`)."""
    from sam2_annotator.annotations.track_coco import track_coco, write_track_coco

    description = f"tracked with sam2-annotator from {source.name}"
    write_track_coco(path, track_coco(frames, masks, source.frame_hw, description))
