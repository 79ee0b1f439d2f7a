"""``sam2-annotator export yolo|masks PROJECT --out DIR``: datasets in other formats."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)

#: Mirrors ``annotations.exporters.EXPORTERS`` (kept here so ``--help`` imports nothing heavy;
#: a test checks that the two agree).
EXPORT_FORMATS = ("yolo", "masks")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a project as YOLO segmentation labels or PNG masks",
        description="yolo: Ultralytics segmentation dataset (images/, labels/, data.yaml); "
        "multi-part objects are joined into one polygon, holes are filled (with a warning). "
        "masks: per-image instance (16-bit) and semantic PNGs plus masks.json.",
    )
    parser.add_argument("format", choices=EXPORT_FORMATS, help="what to write")
    parser.add_argument("project", type=Path, metavar="PROJECT", help="project / COCO file")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sam2_annotator.annotations.coco_io import read_project
    from sam2_annotator.annotations.exporters import export

    project, _report = read_project(args.project, check_images=False)
    summary = export(args.format, project, args.out)
    print(
        f"wrote {args.format} export to {summary.out_dir}: {summary.images} images, "
        f"{summary.annotations} annotations, {summary.files} files"
    )
    if summary.warnings:
        print(f"{len(summary.warnings)} warning(s), listed above")
    return 0
