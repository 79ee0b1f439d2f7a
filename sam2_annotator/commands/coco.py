"""``sam2-annotator coco validate|export``: check a COCO file, or write a project as clean COCO.

``validate`` exits 0 when the file can be imported (repairs such as renumbering id 0, missing
images and the like are printed as warnings), 2 when it cannot be used (errors); with
``--strict`` warnings fail too (exit 1).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sam2_annotator.errors import ProjectError

log = logging.getLogger(__name__)

#: Mirrors ``coco_io.SEGMENTATION_FORMATS`` (kept here so ``--help`` imports nothing heavy;
#: a test checks that the two agree).
SEGMENTATION_CHOICES = ("rle", "polygon")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "coco",
        help="validate a COCO file or export a project as COCO",
        description="Check COCO instances files and write projects as COCO.",
    )
    actions = parser.add_subparsers(dest="coco_action", metavar="ACTION", required=True)

    validate = actions.add_parser(
        "validate",
        help="print counts and every problem of a COCO file",
        description="Read FILE as the annotator would and list every problem. Errors (malformed "
        "entries: the file cannot be imported) exit 2. Warnings (what the import repairs, such as "
        "renumbering id 0, or missing and mis-sized images) are listed but exit 0, unless "
        "--strict (then exit 1).",
    )
    validate.add_argument(
        "--strict", action="store_true", help="fail (exit 1) on warnings too, not only on errors"
    )
    validate.add_argument("file", type=Path, metavar="FILE", help="COCO instances JSON")
    validate.add_argument(
        "--images",
        type=Path,
        metavar="DIR",
        help="folder the image file names are relative to (default: the file's folder)",
    )
    validate.set_defaults(func=run_validate)

    export = actions.add_parser(
        "export",
        help="write a project (or any COCO file) as COCO with RLE or polygon masks",
        description="Write PROJECT as a COCO instances file for training. Masks with holes stay "
        "RLE in polygon mode unless --force-polygons (then their holes are filled, with a "
        "warning naming each). Image paths are written relative to the output file.",
    )
    export.add_argument("project", type=Path, metavar="PROJECT", help="project / COCO file")
    export.add_argument("--out", type=Path, required=True, metavar="FILE", help="output JSON")
    export.add_argument(
        "--segmentation",
        choices=SEGMENTATION_CHOICES,
        default="rle",
        help="mask encoding: rle (exact, default) or polygon",
    )
    export.add_argument(
        "--force-polygons",
        action="store_true",
        help="with --segmentation polygon: write masks with holes as polygons too (holes lost)",
    )
    export.add_argument(
        "--keep-tool-data",
        action="store_true",
        help='keep the "sam2_annotator" fields (prompts, scores, times, colours)',
    )
    export.set_defaults(func=run_export)


def run_validate(args: argparse.Namespace) -> int:
    from sam2_annotator.annotations.coco_io import ProjectFormatError, read_project

    try:
        _project, report = read_project(args.file, images_dir=args.images, check_images=True)
    except ProjectFormatError as exc:
        print(f"{args.file}: {exc.total} problem(s), the file cannot be used:")
        for problem in exc.problems:
            print(f"  {problem}")
        if exc.total > len(exc.problems):
            print(f"  ... and {exc.total - len(exc.problems)} more")
        raise
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(report.segmentations.items()))
    print(f"{args.file}:")
    print(f"  images:      {report.images}")
    print(f"  categories:  {report.categories}")
    print(f"  annotations: {report.annotations}" + (f" ({kinds})" if kinds else ""))
    if report.foreign:
        print("  written by another tool: the annotator keeps its work in a project file beside it")
    if report.ok:
        print("no problems")
        return 0
    print(f"{len(report.issues)} warning(s) (the file imports; these are repaired or noted):")
    for issue in report.issues:
        print(f"  warning [{issue.code}] {issue.message}")
    if args.strict:
        print("--strict: failing because of the warnings above")
        return 1
    return 0


def run_export(args: argparse.Namespace) -> int:
    from sam2_annotator.annotations.coco_io import read_project, write_coco

    if args.force_polygons and args.segmentation != "polygon":
        raise ProjectError("--force-polygons only applies to --segmentation polygon")
    if args.out.exists() and args.project.exists() and args.out.samefile(args.project):
        raise ProjectError("--out must not be the project file itself")
    project, imported = read_project(args.project, check_images=False)
    report = write_coco(
        project,
        args.out,
        segmentation=args.segmentation,
        force_polygons=args.force_polygons,
        tool_data=args.keep_tool_data,
        backup=False,
    )
    print(
        f"wrote {args.out}: {len(project.images)} images, {len(project.annotations)} annotations "
        f"({report.polygon} as polygons, {report.rle} as RLE)"
    )
    if report.kept_rle_for_holes:
        ids = ", ".join(str(i) for i in report.kept_rle_for_holes)
        print(f"kept as RLE because of holes: annotation(s) {ids} (use --force-polygons)")
    if report.holes_filled:
        ids = ", ".join(str(i) for i in report.holes_filled)
        print(f"holes filled: annotation(s) {ids}")
    if imported.issues:
        print(f"note: {len(imported.issues)} issue(s) repaired while reading; see `coco validate`")
    return 0
