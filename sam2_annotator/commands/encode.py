"""``sam2-annotator encode DIR``: fill the disk embedding cache for a whole folder.

Resumable: images whose embedding is already on disk are skipped, and every entry is written
atomically, so an interrupted run loses at most the image it was encoding.

Past one machine: ``--shard K/N`` encodes one deterministic slice, so that a scheduler (a Slurm
job array, Ray tasks) can run N copies against one cache folder on a shared file system. An image
belongs to shard ``int(sha256(relative path)[:8 bytes]) mod N`` (the path relative to DIR, in
POSIX form and Unicode NFC). The slice depends on each image's own name only, not on the listing,
so every machine computes the same slices even when they list the folder at different times
while images are being added (an index into the sorted listing would shift); for large folders the
slices are equal in size within a few per cent. ``K`` is 0-based, ``0..N-1`` like Python's
``range(N)`` and ``sbatch --array=0-(N-1)``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from sam2_annotator.commands._common import add_model_arguments, engine_from_args
from sam2_annotator.errors import ImageLoadError, UserError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="pre-compute image embeddings for a folder (resumable, shardable; fp16 disk cache)",
        description="Encode every image in DIR once and keep the embeddings in the disk cache, so "
        "opening those images later is instant. Already cached images are skipped. The disk cache "
        "stores float16 (8 MiB per image, each value rounded to 11 significant bits): masks from "
        "it may differ from a fresh float32 encode by a pixel along uncertain edges. The app's "
        "in-memory cache keeps exact float32.",
    )
    parser.add_argument("folder", type=Path, metavar="DIR", help="folder of images")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="embedding cache folder (default: $SAM2_ANNOTATOR_CACHE_DIR, else the user cache); "
        "may be on a shared file system used by many machines at once",
    )
    parser.add_argument(
        "--cache-max-gb",
        type=_cap_arg,
        metavar="GIB",
        help="size cap of the fp16 disk cache in GiB, all models together; least recently used "
        "entries are evicted beyond it. Remembered in the cache folder, so the app and later runs "
        "keep it (default: the folder's recorded cap, else $SAM2_ANNOTATOR_CACHE_MAX_GB, else 4; "
        "0 = no cap, e.g. on a cluster's shared storage)",
    )
    parser.add_argument(
        "--shard",
        type=parse_shard,
        metavar="K/N",
        help="encode only shard K of N (K = 0..N-1); an image's shard is the sha256 of its path "
        "relative to DIR modulo N, the same on every machine",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as ``(K, N)`` with ``N >= 1`` and ``0 <= K < N``."""
    k_text, sep, n_text = text.strip().partition("/")
    try:
        if not sep:
            raise ValueError
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected K/N with whole numbers, e.g. 0/4 (got {text!r})"
        ) from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"the number of shards N must be at least 1 (got {text})")
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(
            f"shard K must be in 0..{n - 1} (0-based; the last of {n} shards is {n - 1}/{n}), "
            f"got {text}"
        )
    return k, n


def shard_of(relative_path: str, n: int) -> int:
    """The shard (``0..n-1``) of an image, from its path relative to the encoded folder."""
    name = unicodedata.normalize("NFC", relative_path.replace("\\", "/"))
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n


def _cap_arg(text: str) -> int:
    from sam2_annotator.engine.cache import parse_max_gb

    try:
        return parse_max_gb(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass
class EncodeReport:
    encoded: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    entry_bytes: int = 0  # size of one entry file (the first one this run wrote)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sam2_annotator.engine.cache import DiskCache, default_cache_dir, record_max_bytes
    from sam2_annotator.engine.cache_sources import SourceIndex
    from sam2_annotator.engine.image_io import list_images

    if not args.folder.is_dir():
        raise UserError(f"not a folder: {args.folder}")
    all_images = list_images(args.folder)
    if not all_images:
        raise UserError(f"no images in {args.folder}")
    images = all_images
    if args.shard is not None:
        k, n = args.shard
        images = [p for p in all_images if shard_of(p.relative_to(args.folder).as_posix(), n) == k]
    start = time.perf_counter()
    report = EncodeReport()
    disk = None
    if images:  # an empty shard is fine (few images, many shards): nothing to load
        engine = engine_from_args(args)
        root = args.cache_dir or default_cache_dir()
        if args.cache_max_gb is not None:
            try:  # remembered in the folder: the app and later runs keep this cap
                record_max_bytes(root, args.cache_max_gb)
            except OSError as exc:
                raise UserError(f"cannot write the embedding cache in {root}: {exc}") from exc
        disk = DiskCache(root, engine.model_key, max_bytes=args.cache_max_gb)
        sources = SourceIndex(root)  # lets the window find each entry before decoding pixels
        bar = tqdm(images, unit="img", disable=args.no_progress, desc="encoding")
        for path in bar:
            bar.set_postfix_str(path.name, refresh=False)
            _encode_one(engine, disk, sources, args.folder, path, report)
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps(_json_report(args, all_images, images, disk, report, seconds), indent=2))
    else:
        _print_report(args, all_images, images, disk, report, seconds)
    _warn_if_cap_too_small(disk, report, len(all_images))
    return 1 if report.failed else 0


def _encode_one(engine, disk, sources, folder: Path, path: Path, report: EncodeReport) -> None:
    from sam2_annotator.engine.cache import cache_key
    from sam2_annotator.engine.cache_sources import FileSignature
    from sam2_annotator.engine.image_io import image_hash, load_image

    name = path.relative_to(folder).as_posix()
    signature = FileSignature.of(path)
    try:
        image = load_image(path)
    except ImageLoadError as exc:
        report.failed.append(str(exc))
        return
    key = cache_key(image_hash(image))
    sources.remember(signature, key)
    if disk.touch(key):  # present: mark it as recently used so the cap keeps it
        report.cached.append(name)
        return
    embedding = engine.encode(image)
    try:
        stored = disk.put(key, embedding)
    except OSError as exc:
        raise UserError(f"cannot write the embedding cache in {disk.folder}: {exc}") from exc
    if stored:
        report.encoded.append(name)
        if not report.entry_bytes:
            # (already evicted with a tiny cap: the warning then has no size)
            with contextlib.suppress(FileNotFoundError):
                report.entry_bytes = disk.path_for(key).stat().st_size
    else:
        report.failed.append(f"{path}: embedding not stored on disk (see the log)")


def _json_report(args, all_images, images, disk, report: EncodeReport, seconds: float) -> dict:
    return {
        "folder": str(args.folder),
        "cache": str(disk.folder) if disk else None,
        "cache_max_bytes": disk.max_bytes if disk else None,
        "shard": list(args.shard) if args.shard else None,
        "images_in_folder": len(all_images),
        "images": len(images),
        "encoded": report.encoded,
        "cached": report.cached,
        "failed": report.failed,
        "evicted": disk.evicted if disk else 0,
        "seconds": round(seconds, 3),
    }


def _print_report(args, all_images, images, disk, report: EncodeReport, seconds: float) -> None:
    where = f" -> {disk.folder}" if disk else ""
    shard = ""
    if args.shard:
        k, n = args.shard
        shard = f"shard {k}/{n}: {len(images)} of {len(all_images)} images; "
    print(
        f"{shard}{len(report.encoded)} encoded, {len(report.cached)} already cached, "
        f"{len(report.failed)} failed in {seconds:.1f} s{where}"
    )
    for line in report.failed:
        print(f"  failed: {line}")


def _warn_if_cap_too_small(disk, report: EncodeReport, n_images: int) -> None:
    if disk is None or not disk.max_bytes:
        return
    needed = report.entry_bytes * n_images
    if disk.evicted or needed > disk.max_bytes:
        gib = 2**30
        print(
            f"warning: the disk cache is capped at {disk.max_bytes / gib:.1f} GiB "
            + (f"and {disk.evicted} entries were evicted; " if disk.evicted else "; ")
            + (
                f"{n_images} images need about {needed / gib:.1f} GiB; "
                if report.entry_bytes
                else ""
            )
            + "raise --cache-max-gb (or $SAM2_ANNOTATOR_CACHE_MAX_GB; 0 = no cap)",
            file=sys.stderr,
        )
