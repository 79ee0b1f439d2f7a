"""``sam2-annotator bench --video SOURCE``: per-frame tracking cost by graph, vs PyTorch.

The arguments live here, :mod:`sam2_annotator.bench.video` describes the protocol.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from sam2_annotator.commands.segment import point_arg
from sam2_annotator.errors import UserError

log = logging.getLogger(__name__)


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "video tracking (bench --video)",
        "Per propagated frame: encoder, memory attention, memory encoder and decoder, "
        "alternated frame by frame with PyTorch's SAM2VideoPredictor when torch and sam2 are "
        "installed (--no-torch skips it; --checkpoint for models exported from a checkpoint). "
        "Writes results.json and results.md to --out.",
    )
    group.add_argument(
        "--video",
        type=Path,
        metavar="SOURCE",
        help="benchmark tracking on a video file or a folder of frames instead of images",
    )
    group.add_argument(
        "--frames",
        type=int,
        default=8,
        metavar="K",
        help="frames to use from the start of SOURCE: 1 prompted + K-1 propagated (default: 8)",
    )
    group.add_argument(
        "--point",
        type=point_arg,
        metavar="X,Y",
        help="the click on frame 0 in frame pixels (default: the frame's centre)",
    )
    group.add_argument(
        "--memory-frames",
        type=int,
        metavar="N",
        help="also measure a reduced memory of N recent frames (SAM2: 6): APPROXIMATE, its "
        "masks differ from SAM2's; reports its speed-up and mask IoU against the exact memory",
    )


def run_video(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sam2_annotator.bench import report, video_report
    from sam2_annotator.bench.video import (
        VideoBenchInputs,
        VideoBenchPlan,
        run_video_benchmark,
        steps_per_run,
    )
    from sam2_annotator.commands._common import model_files_from_args
    from sam2_annotator.commands.bench import output_folder
    from sam2_annotator.engine.providers import SessionConfig, parse_provider_list
    from sam2_annotator.engine.video_graphs import VideoModel
    from sam2_annotator.engine.video_io import open_source

    point = None if args.point is None else (float(args.point[0]), float(args.point[1]))
    plan = VideoBenchPlan(frames=args.frames, point=point, memory_frames=args.memory_frames)
    files = model_files_from_args(args)
    video_model = VideoModel.from_folder(files.encoder.parent)
    config = SessionConfig(
        providers=tuple(parse_provider_list(args.providers)), threads=args.threads
    )
    out_dir = output_folder(args.out)
    loader, skipped = _torch_loader(files, video_model, args)
    if files.is_random_init:
        print("note: random-init weights: timings are valid, masks are meaningless")
    if plan.memory_frames is not None:
        exact = video_model.config.num_maskmem - 1
        if plan.memory_frames < exact:
            print(
                f"warning: --memory-frames {plan.memory_frames} is APPROXIMATE (SAM2 keeps "
                f"{exact} recent frames): its masks differ from SAM2's; measured next to exact"
            )
    source = open_source(args.video)
    try:
        inputs = VideoBenchInputs(files, video_model, config, source, loader, skipped)
        total = steps_per_run(plan, len(source), loader is not None)
        with tqdm(total=total, unit="step", disable=args.no_progress, desc="bench") as bar:

            def progress(phase: str) -> None:
                bar.set_description(phase, refresh=False)
                bar.update()

            results = run_video_benchmark(inputs, plan, progress)
    finally:
        source.close()
    report.write_json(out_dir / report.BENCH_JSON, results)
    (out_dir / report.BENCH_MARKDOWN).write_text(
        video_report.video_markdown(results), encoding="utf-8"
    )
    print(video_report.video_summary(results))
    print(f"results  {out_dir}")
    return 0


def _torch_loader(files: Any, video_model: Any, args: argparse.Namespace) -> tuple[Any, str]:
    """A function building the PyTorch side on the frame folder, or None and why not."""
    from sam2_annotator.models import export_reference as torch_ref

    if args.no_torch:
        return None, "disabled with --no-torch"
    reason = torch_ref.unavailable_reason()
    if reason is not None:
        log.info("no PyTorch side: %s", reason)
        return None, reason
    try:
        source = torch_ref.source_for(files, args.checkpoint)
    except UserError as exc:
        log.warning("no PyTorch side: %s", exc)
        return None, str(exc)
    bias = video_model.manifest.exporter.get("object_score_bias")

    def load(frames_dir: Path) -> Any:
        from sam2_annotator.models.export_reference_video import TorchVideoSide

        return TorchVideoSide.load(source, frames_dir, bias, threads=args.threads)

    return load, ""
