"""``sam2-annotator encode DIR``: fill the disk embedding cache for a whole folder.

Resumable: images whose embedding is already on disk are skipped, and every entry is written
atomically, so an interrupted run loses at most the image it was encoding.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sam2_annotator.commands._common import add_model_arguments, engine_from_args
from sam2_annotator.errors import ImageLoadError, UserError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="pre-compute image embeddings for a folder (resumable)",
        description="Encode every image in DIR once and keep the embeddings (fp16) in the disk "
        "cache, so opening those images later is instant. Already cached images are skipped.",
    )
    parser.add_argument("folder", type=Path, metavar="DIR", help="folder of images")
    parser.add_argument(
        "--cache-dir", type=Path, help="embedding cache folder (default: user cache)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


@dataclass
class EncodeReport:
    encoded: int = 0
    cached: int = 0
    failed: list[str] = field(default_factory=list)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sam2_annotator.engine.cache import DiskCache, default_cache_dir
    from sam2_annotator.engine.image_io import list_images

    if not args.folder.is_dir():
        raise UserError(f"not a folder: {args.folder}")
    images = list_images(args.folder)
    if not images:
        raise UserError(f"no images in {args.folder}")
    engine = engine_from_args(args)
    disk = DiskCache(args.cache_dir or default_cache_dir(), engine.model_key)
    report = EncodeReport()
    bar = tqdm(images, unit="img", disable=args.no_progress, desc="encoding")
    for path in bar:
        bar.set_postfix_str(path.name, refresh=False)
        _encode_one(engine, disk, path, report)
    print(
        f"{report.encoded} encoded, {report.cached} already cached, {len(report.failed)} failed "
        f"-> {disk.folder}"
    )
    for line in report.failed:
        print(f"  failed: {line}")
    return 1 if report.failed else 0


def _encode_one(engine, disk, path: Path, report: EncodeReport) -> None:
    from sam2_annotator.engine.cache import cache_key
    from sam2_annotator.engine.image_io import image_hash, load_image

    try:
        image = load_image(path)
    except ImageLoadError as exc:
        report.failed.append(str(exc))
        return
    key = cache_key(image_hash(image))
    if key in disk:
        report.cached += 1
        return
    embedding = engine.encode(image)
    try:
        stored = disk.put(key, embedding)
    except OSError as exc:
        raise UserError(f"cannot write the embedding cache in {disk.folder}: {exc}") from exc
    if stored:
        report.encoded += 1
    else:
        report.failed.append(f"{path}: embedding not storable as fp16 (see log)")
