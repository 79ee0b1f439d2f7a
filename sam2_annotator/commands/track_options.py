"""``track``'s memory and cache arguments: reduced (approximate) memory, the frame-feature budget.

The tracker keeps each frame's image features (16 MiB) so that re-propagating after a correction
runs no encoder. ``--cache-mb`` bounds what they take in RAM (least recently used are dropped and
re-encoded when needed); ``--disk-cache`` adds the fp16 disk embedding cache ``encode`` and the
app use (``--cache-dir``, ``--cache-max-gb`` as for ``encode``), so that a later run on the same
clip skips the encoder. Features read back from the disk are rounded to float16: masks then may
differ slightly from SAM2's along uncertain edges.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sam2_annotator.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from sam2_annotator.engine.cache import EmbeddingCache, MemoryCache
    from sam2_annotator.engine.model_files import ModelFiles
    from sam2_annotator.engine.tracker import TrackerOptions, VideoTracker
    from sam2_annotator.engine.video_graphs import VideoConfig

log = logging.getLogger(__name__)

MIB = 1 << 20
DEFAULT_CACHE_MB = 1024


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _cap_arg(text: str) -> int:
    from sam2_annotator.engine.cache import parse_max_gb

    try:
        return parse_max_gb(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_tracker_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("memory and cache")
    group.add_argument(
        "--memory-frames",
        type=_non_negative_int,
        metavar="N",
        help="APPROXIMATE, faster: attend to only the N most recent tracked frames (SAM2 uses "
        "6, the default here: exact); masks then differ from SAM2's",
    )
    group.add_argument(
        "--cache-mb",
        type=_non_negative_int,
        default=DEFAULT_CACHE_MB,
        metavar="MB",
        help="RAM budget for frame features, 16 MiB a frame; the least recently used beyond it "
        f"are re-encoded when needed (default: {DEFAULT_CACHE_MB}; 0 = only the current frame)",
    )
    group.add_argument(
        "--disk-cache",
        action="store_true",
        help="also keep frame features in the fp16 disk embedding cache, so that later runs on "
        "the same clip skip the encoder (features read from disk are rounded to float16: masks "
        "may then differ slightly from SAM2's)",
    )
    group.add_argument(
        "--cache-dir",
        type=Path,
        help="disk cache folder (implies --disk-cache; default: $SAM2_ANNOTATOR_CACHE_DIR, else "
        "the user cache, shared with encode and the app)",
    )
    group.add_argument(
        "--cache-max-gb",
        type=_cap_arg,
        metavar="GIB",
        help="size cap of the disk cache in GiB, as for encode (implies --disk-cache)",
    )


def tracker_options_from_args(args: argparse.Namespace, config: VideoConfig) -> TrackerOptions:
    """The tracker's options; a reduced memory prints that it is approximate."""
    from sam2_annotator.engine.tracker import TrackerOptions

    options = TrackerOptions(memory_frames=args.memory_frames)
    if options.is_approximate(config):
        print(approximate_warning(args.memory_frames, config), file=sys.stderr)
    return options


def approximate_warning(memory_frames: int, config: VideoConfig) -> str:
    exact = config.num_maskmem - 1
    return (
        f"warning: --memory-frames {memory_frames} is APPROXIMATE: the memory holds the prompted "
        f"frames and {memory_frames} recent frame(s) instead of SAM2's {exact}; masks differ "
        "from SAM2's"
    )


def tracker_cache_from_args(
    args: argparse.Namespace, files: ModelFiles
) -> MemoryCache | EmbeddingCache:
    """The frame-feature cache: the RAM budget, plus the disk level when asked."""
    from sam2_annotator.engine.cache import (
        DiskCache,
        EmbeddingCache,
        MemoryCache,
        default_cache_dir,
        record_max_bytes,
    )

    memory = MemoryCache(args.cache_mb * MIB)
    if not (args.disk_cache or args.cache_dir is not None or args.cache_max_gb is not None):
        return memory
    root = args.cache_dir or default_cache_dir()
    try:
        if args.cache_max_gb is not None:
            record_max_bytes(root, args.cache_max_gb)
        disk = DiskCache(root, encoder_key(files), max_bytes=args.cache_max_gb)
    except OSError as exc:
        raise UserError(f"cannot use the embedding cache in {root}: {exc}") from exc
    return EmbeddingCache(memory, disk)


def encoder_key(files: ModelFiles) -> str:
    """sha256 of the encoder (from the manifest when it has it): the disk cache's model key."""
    from sam2_annotator.engine.manifest import sha256_file

    manifest = files.manifest
    entry = manifest.files.get(files.encoder.name) if manifest else None
    return entry.sha256 if entry else sha256_file(files.encoder)


def memory_summary(tracker: VideoTracker, args: argparse.Namespace) -> dict[str, Any]:
    """What the run held in memory: peak RSS, frame features (vs the budget), the bank."""
    from sam2_annotator.bench.memory import peak_rss_mb

    peak = peak_rss_mb()
    return {
        "peak_rss_mb": None if peak is None else round(peak, 1),
        "frame_cache_mb": round(tracker.cache_nbytes / MIB, 1),
        "cache_budget_mb": args.cache_mb,
        "memory_bank_mb": round(tracker.bank_nbytes / MIB, 1),
        "memory_frames": tracker.options.memory_frames,
        "approximate": tracker.options.is_approximate(tracker.config),
    }


def memory_line(summary: dict[str, Any]) -> str:
    peak = summary["peak_rss_mb"]
    text = (
        f"memory     peak RSS {'n/a' if peak is None else f'{peak:.0f}'} MiB; frame features "
        f"{summary['frame_cache_mb']:.0f} MiB in RAM (budget {summary['cache_budget_mb']} MiB); "
        f"memory bank {summary['memory_bank_mb']:.1f} MiB"
    )
    if summary["approximate"]:
        text += f"; APPROXIMATE memory ({summary['memory_frames']} recent frames)"
    return text
