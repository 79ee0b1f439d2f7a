"""Read, validate and write COCO instances files (the project file format).

Reading accepts what real COCO files contain: polygons, compressed and uncompressed RLE, ids
starting at 0, category id 0, missing image files, wrong image sizes, duplicate annotation ids and
keys this tool does not know. Everything that can be repaired is repaired and listed in an
:class:`ImportReport`; everything that cannot (wrong types, unknown references, RLE that does not
cover its image...) is collected and raised together as one :class:`ProjectFormatError`, so the
user sees the first problems at once instead of one per attempt.

Writing produces plain COCO plus one :data:`~.model.TOOL_KEY` object per record. ``bbox`` and
``area`` always come from pycocotools on the segmentation as written.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from sam2_annotator.annotations.masks import (
    MAX_PIXELS,
    Rle,
    SegmentationError,
    empty_rle,
    mask_to_polygons,
    rle_from_bbox,
    rle_from_counts,
    rle_from_polygons,
    rle_from_string,
)
from sam2_annotator.annotations.model import (
    FORMAT_VERSION,
    TOOL_KEY,
    Annotation,
    Category,
    ImageRecord,
    JsonDict,
    Project,
    PromptRecord,
    SourceGeometry,
    check_score,
    rebase,
)
from sam2_annotator.errors import ImageLoadError, ProjectError

log = logging.getLogger(__name__)

SegmentationFormat = Literal["rle", "polygon"]
SEGMENTATION_FORMATS: tuple[SegmentationFormat, ...] = ("rle", "polygon")

#: How many problems a :class:`ProjectFormatError` message lists before "and N more".
SHOWN_PROBLEMS = 10
#: Problems collected at most; a file that is wrong everywhere does not need a million lines.
MAX_PROBLEMS = 1000

IMAGE_KEYS = ("id", "file_name", "width", "height")
CATEGORY_KEYS = ("id", "name", "supercategory")
ANNOTATION_KEYS = ("id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd")
TOP_LEVEL_KEYS = ("info", "licenses", "images", "annotations", "categories")

#: Import issue codes -> what they mean (``coco validate`` groups its output by these).
ISSUE_CODES: dict[str, str] = {
    "renumbered_id": "annotation id below 1 (COCOeval ignores id 0); given a new id",
    "missing_id": "annotation without an id; given one",
    "duplicate_id": "annotation id used twice; the later one gets a new id on save",
    "missing_image_file": "image file not found (the image and its annotations are kept)",
    "unreadable_image": "image file cannot be read (kept)",
    "size_mismatch": "width/height differ from the image file",
    "degenerate_polygon": "polygon part with fewer than 3 points dropped",
    "flat_polygon": "segmentation is one flat coordinate list, not a list of polygons",
    "bbox_only": "no segmentation; the box is used as the mask",
    "empty_mask": "the mask is empty",
}


class ProjectFormatError(ProjectError):
    """The file is not a usable COCO instances file; ``problems`` lists what is wrong."""

    def __init__(self, source: str, problems: list[str], total: int | None = None) -> None:
        self.source = source
        self.problems = problems
        self.total = total if total is not None else len(problems)
        shown = "; ".join(problems[:SHOWN_PROBLEMS])
        more = self.total - min(len(problems), SHOWN_PROBLEMS)
        suffix = f"; and {more} more" if more > 0 else ""
        noun = "problem" if self.total == 1 else "problems"
        super().__init__(f"{source}: not a usable COCO file ({self.total} {noun}): {shown}{suffix}")


@dataclass(frozen=True)
class ImportIssue:
    """Something repaired or worth knowing about; ``code`` is a key of :data:`ISSUE_CODES`."""

    code: str
    message: str


@dataclass
class ImportReport:
    """Counts and issues from reading one file."""

    source: str
    images: int = 0
    annotations: int = 0
    categories: int = 0
    segmentations: Counter[str] = field(default_factory=Counter)
    issues: list[ImportIssue] = field(default_factory=list)
    #: The file was not written by this tool (no top-level ``sam2_annotator`` object): the app
    #: never writes to it and keeps its work in a project file of its own beside it.
    foreign: bool = False

    def add(self, code: str, message: str) -> None:
        if code not in ISSUE_CODES:
            raise ValueError(f"unknown import issue code {code!r}")
        self.issues.append(ImportIssue(code, message))

    def codes(self) -> Counter[str]:
        return Counter(issue.code for issue in self.issues)

    def of(self, code: str) -> list[ImportIssue]:
        return [issue for issue in self.issues if issue.code == code]

    @property
    def ok(self) -> bool:
        return not self.issues


@dataclass
class ExportReport:
    """What writing chose per annotation; ``warnings`` name every annotation that lost detail."""

    rle: int = 0
    polygon: int = 0
    kept_rle_for_holes: list[int] = field(default_factory=list)
    holes_filled: list[int] = field(default_factory=list)
    #: Annotations written with their imported segmentation, unchanged (untouched by the user).
    kept_original: int = 0
    empty_as_rle: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# =========================================================================== reading


def read_project(
    path: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    check_images: bool = True,
    root: str | os.PathLike[str] | None = None,
) -> tuple[Project, ImportReport]:
    """Read a COCO file into a :class:`Project`.

    ``root`` is where the project will live (default: the file's folder). Image ``file_name``
    values are resolved against ``images_dir`` (default: the file's folder) and, where that
    differs from ``root``, stored relative to ``root``. With ``check_images`` every image header
    is read to report missing files and wrong sizes. Raises :class:`ProjectFormatError`
    (malformed) or :class:`ProjectError` (unreadable); nothing is ever written.
    """
    source = Path(path)
    data = load_json(source)
    return parse_coco(
        data,
        root=Path(root) if root is not None else source.parent,
        images_dir=Path(images_dir) if images_dir is not None else source.parent,
        check_images=check_images,
        source=str(source),
    )


def load_json(path: Path) -> Any:
    """The parsed JSON in ``path``; every failure becomes a :class:`ProjectError`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ProjectError(f"project file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise ProjectError(f"not a file but a folder: {path}") from exc
    except OSError as exc:
        raise ProjectError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_json_bytes(raw, str(path))


def parse_json_bytes(raw: bytes, source: str) -> Any:
    if not raw.strip():
        raise ProjectFormatError(source, ["the file is empty"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProjectFormatError(source, [f"not UTF-8 text (byte {exc.start})"]) from exc
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        problem = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise ProjectFormatError(source, [problem]) from exc
    except _NonStandardNumber as exc:
        raise ProjectFormatError(source, [f"{exc} is not valid JSON"]) from exc
    except RecursionError as exc:
        raise ProjectFormatError(source, ["JSON nested too deeply"]) from exc


class _NonStandardNumber(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    """Python's json accepts NaN and Infinity; other COCO readers do not."""
    raise _NonStandardNumber(name)


class _Problems:
    """Collects fatal problems (up to :data:`MAX_PROBLEMS`) while parsing goes on."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.total = 0

    def add(self, where: str, message: str) -> None:
        self.total += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(f"{where}: {message}")

    def __bool__(self) -> bool:
        return self.total > 0


def parse_coco(
    data: Any,
    *,
    root: Path,
    images_dir: Path | None = None,
    check_images: bool = True,
    source: str = "<data>",
) -> tuple[Project, ImportReport]:
    """Validate parsed COCO JSON and build a :class:`Project` (see :func:`read_project`).

    ``file_name`` values are read relative to ``images_dir`` (default ``root``) and rewritten
    relative to ``root`` when the two differ.
    """
    if not isinstance(data, dict):
        raise ProjectFormatError(source, [f"the top level is {_json_type(data)}, not an object"])
    problems = _Problems()
    report = ImportReport(source=source, foreign=TOOL_KEY not in data)
    images_raw = _section(data, "images", problems, required=True)
    categories_raw = _section(data, "categories", problems, required=False)
    annotations_raw = _section(data, "annotations", problems, required=False)
    tool = _tool_dict(data, "top level", problems)
    _check_format_version(tool, problems)
    info = data.get("info")
    if info is not None and not isinstance(info, dict):
        problems.add("info", f"must be an object, got {_json_type(info)}")
    licenses = data.get("licenses")
    if licenses is not None and not isinstance(licenses, list):
        problems.add("licenses", f"must be a list, got {_json_type(licenses)}")

    images = _parse_images(images_raw, problems)
    categories = _parse_categories(categories_raw, problems)
    parsed = _parse_annotations(annotations_raw, images, categories, problems, report)
    if problems:
        raise ProjectFormatError(source, problems.items, problems.total)

    annotations = _assign_annotation_ids(parsed, report)
    next_id = _tool_int(tool, "next_annotation_id", 1)
    tool_rest = {k: v for k, v in tool.items() if k not in ("format", "next_annotation_id")}
    extra = {k: v for k, v in data.items() if k not in TOP_LEVEL_KEYS and k != TOOL_KEY}
    if tool_rest:
        extra[TOOL_KEY] = tool_rest
    if images_dir is not None:
        images = {
            i: replace(image, file_name=rebase(image.file_name, images_dir, root))
            for i, image in images.items()
        }
    project = Project(
        root=root,
        images=images,
        categories=categories,
        annotations=annotations,
        info=dict(info or {}),
        licenses=list(licenses or []),
        extra=extra,
        next_annotation_id=next_id,
    )
    report.images = len(images)
    report.categories = len(categories)
    report.annotations = len(annotations)
    if check_images:
        _check_image_files(project, report)
    for issue in report.issues:
        log.info("%s: %s", source, issue.message)
    return project, report


def _section(data: JsonDict, key: str, problems: _Problems, *, required: bool) -> list[Any]:
    value = data.get(key)
    if value is None:
        if required:
            problems.add("top level", f'no "{key}" list')
        return []
    if not isinstance(value, list):
        problems.add(key, f"must be a list, got {_json_type(value)}")
        return []
    return value


def _tool_dict(entry: JsonDict, where: str, problems: _Problems) -> JsonDict:
    value = entry.get(TOOL_KEY, {})
    if not isinstance(value, dict):
        problems.add(where, f'"{TOOL_KEY}" must be an object, got {_json_type(value)}')
        return {}
    return value


def _check_format_version(tool: JsonDict, problems: _Problems) -> None:
    version = tool.get("format", FORMAT_VERSION)
    if not _is_int(version):
        problems.add(TOOL_KEY, f"format must be an integer, got {_short(version)}")
    elif version > FORMAT_VERSION:
        problems.add(
            TOOL_KEY,
            f"written by a newer sam2-annotator (format {version}; this version reads "
            f"{FORMAT_VERSION}); update the app",
        )
    next_id = tool.get("next_annotation_id", 1)
    if not _is_int(next_id) or next_id < 1:
        problems.add(TOOL_KEY, f"next_annotation_id must be an integer >= 1, got {_short(next_id)}")


def _tool_int(tool: JsonDict, key: str, default: int) -> int:
    value = tool.get(key, default)
    return int(value) if _is_int(value) else default


# --------------------------------------------------------------------------- images


def _parse_images(entries: list[Any], problems: _Problems) -> dict[int, ImageRecord]:
    images: dict[int, ImageRecord] = {}
    for index, entry in enumerate(entries):
        where = f"images[{index}]"
        if not isinstance(entry, dict):
            problems.add(where, f"must be an object, got {_json_type(entry)}")
            continue
        image_id = _require_int(entry, "id", where, problems)
        if image_id is not None:
            where = f"images[{index}] (id {image_id})"
        file_name = entry.get("file_name")
        if not isinstance(file_name, str) or not file_name.strip():
            problems.add(where, f'"file_name" must be a non-empty string, got {_short(file_name)}')
            file_name = None
        width = _require_int(entry, "width", where, problems, minimum=1)
        height = _require_int(entry, "height", where, problems, minimum=1)
        if width is not None and height is not None and width * height > MAX_PIXELS:
            problems.add(where, f"{width}x{height} is too large for COCO RLE (32-bit counts)")
            continue
        _tool_dict(entry, where, problems)
        if image_id is None or file_name is None or width is None or height is None:
            continue
        if image_id in images:
            problems.add(where, f"image id {image_id} is used twice")
            continue
        extra = {k: v for k, v in entry.items() if k not in IMAGE_KEYS}
        images[image_id] = ImageRecord(image_id, file_name, width, height, extra)
    return images


def _check_image_files(project: Project, report: ImportReport) -> None:
    """Report missing or unreadable image files and sizes that disagree with the file header.

    Only headers are read (no pixels are decoded); the size is the upright one, after EXIF
    orientation, which is what the image loader hands to the engine and the canvas.
    """
    from sam2_annotator.engine.image_io import read_image_size

    for image in project.images.values():
        path = project.image_path(image)
        if not path.is_file():
            report.add("missing_image_file", f"image {image.id}: {path} not found")
            continue
        try:
            width, height = read_image_size(path)
        except ImageLoadError as exc:
            report.add("unreadable_image", f"image {image.id}: {exc}")
            continue
        if (width, height) == (image.width, image.height):
            continue
        note = ""
        if (height, width) == (image.width, image.height):
            note = " (the file's EXIF orientation rotates it; the file's size ignores that)"
        report.add(
            "size_mismatch",
            f"image {image.id} ({image.file_name}): the file says {width}x{height}, the "
            f"annotations say {image.width}x{image.height}{note}; masks keep the annotated size",
        )


# --------------------------------------------------------------------------- categories


def _parse_categories(entries: list[Any], problems: _Problems) -> dict[int, Category]:
    categories: dict[int, Category] = {}
    for index, entry in enumerate(entries):
        where = f"categories[{index}]"
        if not isinstance(entry, dict):
            problems.add(where, f"must be an object, got {_json_type(entry)}")
            continue
        category_id = _require_int(entry, "id", where, problems)
        if category_id is not None:
            where = f"categories[{index}] (id {category_id})"
        name = entry.get("name")
        if not isinstance(name, str):
            problems.add(where, f'"name" must be a string, got {_short(name)}')
            name = None
        supercategory = entry.get("supercategory", "")
        if supercategory is None:
            supercategory = ""
        if not isinstance(supercategory, str):
            problems.add(where, f'"supercategory" must be a string, got {_short(supercategory)}')
            supercategory = ""
        tool = dict(_tool_dict(entry, where, problems))
        color = _parse_color(tool.pop("color", None), where, problems)
        if category_id is None or name is None:
            continue
        if category_id in categories:
            problems.add(where, f"category id {category_id} is used twice")
            continue
        extra = {k: v for k, v in entry.items() if k not in CATEGORY_KEYS and k != TOOL_KEY}
        if tool:
            extra[TOOL_KEY] = tool
        categories[category_id] = Category(category_id, name, supercategory, color, extra)
    return categories


def _parse_color(value: Any, where: str, problems: _Problems) -> tuple[int, int, int] | None:
    if value is None:
        return None
    if (
        isinstance(value, list)
        and len(value) == 3
        and all(_is_int(v) and 0 <= v <= 255 for v in value)
    ):
        return int(value[0]), int(value[1]), int(value[2])
    problems.add(where, f"colour must be [r, g, b] with 0..255, got {_short(value)}")
    return None


# --------------------------------------------------------------------------- annotations


@dataclass
class _ParsedAnnotation:
    raw_id: int | None
    annotation: Annotation  # with id 0 until ids are assigned
    where: str


def _parse_annotations(
    entries: list[Any],
    images: dict[int, ImageRecord],
    categories: dict[int, Category],
    problems: _Problems,
    report: ImportReport,
) -> list[_ParsedAnnotation]:
    parsed: list[_ParsedAnnotation] = []
    for index, entry in enumerate(entries):
        where = f"annotations[{index}]"
        if not isinstance(entry, dict):
            problems.add(where, f"must be an object, got {_json_type(entry)}")
            continue
        raw_id: int | None = None
        if "id" in entry:
            raw_id = _require_int(entry, "id", where, problems)
            if raw_id is None:
                continue
            where = f"annotations[{index}] (id {raw_id})"
        item = _parse_annotation(entry, where, images, categories, problems, report)
        if item is not None:
            parsed.append(_ParsedAnnotation(raw_id, item, where))
    return parsed


def _parse_annotation(
    entry: JsonDict,
    where: str,
    images: dict[int, ImageRecord],
    categories: dict[int, Category],
    problems: _Problems,
    report: ImportReport,
) -> Annotation | None:
    image_id = _require_int(entry, "image_id", where, problems)
    category_id = _require_int(entry, "category_id", where, problems)
    image = images.get(image_id) if image_id is not None else None
    if image_id is not None and image is None:
        problems.add(where, f"image_id {image_id} is not in images")
    if category_id is not None and category_id not in categories:
        problems.add(where, f"category_id {category_id} is not in categories")
    iscrowd = entry.get("iscrowd", 0)
    crowd_ok = _is_number(iscrowd) and iscrowd in (0, 1)
    if not crowd_ok:
        problems.add(where, f'"iscrowd" must be 0 or 1, got {_short(iscrowd)}')
    tool = dict(_tool_dict(entry, where, problems))
    fields = _parse_annotation_tool_fields(tool, where, problems)
    if image is None or category_id is None or category_id not in categories or not crowd_ok:
        return None
    issues_before = len(report.issues)
    try:
        rle = _read_segmentation(entry, image, where, report)
    except SegmentationError as exc:
        problems.add(where, str(exc))
        return None
    repaired = any(i.code in _GEOMETRY_REPAIRS for i in report.issues[issues_before:])
    original = None if repaired else _source_geometry(entry)
    drawn = _drawn_polygon(tool, where, problems)
    if drawn is not None:
        original = drawn
    if fields is None:
        return None
    extra = {k: v for k, v in entry.items() if k not in ANNOTATION_KEYS and k != TOOL_KEY}
    if tool:
        extra[TOOL_KEY] = tool
    prompts, score, created, edited = fields
    return Annotation(
        id=0,
        image_id=image.id,
        category_id=category_id,
        rle=rle,
        prompts=prompts,
        score=score,
        created=created,
        edited=edited,
        iscrowd=int(iscrowd),
        extra=extra,
        original=original,
    )


#: Repairs after which the file's segmentation is not what we read, so it is not kept verbatim.
_GEOMETRY_REPAIRS = frozenset({"degenerate_polygon", "flat_polygon", "bbox_only"})


def _drawn_polygon(tool: JsonDict, where: str, problems: _Problems) -> SourceGeometry | None:
    """A polygon drawn in this app: its vertices under our key (the segmentation is the RLE of
    the mask the app rasterised, so that reopening gives the same pixels)."""
    polygon = tool.pop("polygon", None)
    if polygon is None:
        return None
    if not (
        isinstance(polygon, list)
        and polygon
        and all(
            isinstance(part, list) and len(part) >= 6 and all(_is_finite_number(v) for v in part)
            for part in polygon
        )
    ):
        problems.add(where, f"{TOOL_KEY}.polygon must be a list of polygons, got {_short(polygon)}")
        return None
    return SourceGeometry(polygon, "polygon", drawn=True)


def _source_geometry(entry: JsonDict) -> SourceGeometry | None:
    segmentation = entry.get("segmentation")
    kind = _segmentation_kind(segmentation) if segmentation not in (None, []) else None
    if kind not in ("polygon", "rle", "uncompressed_rle"):
        return None
    area = entry.get("area")
    bbox = entry.get("bbox")
    bbox_ok = isinstance(bbox, list) and len(bbox) == 4 and all(_is_finite_number(v) for v in bbox)
    return SourceGeometry(
        segmentation=segmentation,
        kind=kind,
        area=area if _is_finite_number(area) else None,  # as written (an int stays an int)
        bbox=tuple(bbox) if bbox_ok else None,  # type: ignore[arg-type]
    )


_ToolFields = tuple[PromptRecord | None, float | None, str | None, str | None]


def _parse_annotation_tool_fields(
    tool: JsonDict, where: str, problems: _Problems
) -> _ToolFields | None:
    """Pop our known keys out of ``tool`` (the rest is kept as extra)."""
    ok = True
    prompts = None
    prompts_data = tool.pop("prompts", None)
    if prompts_data is not None:
        try:
            prompts = PromptRecord.from_json(prompts_data)
        except (TypeError, ValueError, OverflowError) as exc:
            problems.add(where, f"{TOOL_KEY}.prompts is malformed: {exc}")
            ok = False
    score = tool.pop("score", None)
    if score is not None:
        try:
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                raise TypeError
            score = check_score(score)
        except (TypeError, ValueError, OverflowError):
            problems.add(where, f"{TOOL_KEY}.score must be a number, got {_short(score)}")
            ok = False
    stamps: list[str | None] = []
    for key in ("created", "edited"):
        stamp = tool.pop(key, None)
        if stamp is not None and not isinstance(stamp, str):
            problems.add(where, f"{TOOL_KEY}.{key} must be a string, got {_short(stamp)}")
            ok = False
            stamp = None
        stamps.append(stamp)
    if not ok:
        return None
    return prompts, score, stamps[0], stamps[1]


def _read_segmentation(
    entry: JsonDict, image: ImageRecord, where: str, report: ImportReport
) -> Rle:
    """Turn whichever COCO segmentation form ``entry`` has into an exact RLE."""
    height, width = image.shape
    segmentation = entry.get("segmentation")
    if segmentation is None or segmentation == []:
        return _from_bbox(entry, image, where, report, had_empty_list=segmentation == [])
    kind = _segmentation_kind(segmentation)
    if kind is None:
        raise SegmentationError(f"segmentation must be polygons or RLE, got {_short(segmentation)}")
    report.segmentations[kind] += 1
    reader = _SEGMENTATION_READERS[kind]
    rle = reader(segmentation, height, width, where, report)
    if rle.area == 0:
        report.add("empty_mask", f"{where}: the segmentation covers no pixel")
    return rle


def _segmentation_kind(segmentation: Any) -> str | None:
    if isinstance(segmentation, dict):
        counts = segmentation.get("counts")
        if isinstance(counts, str):
            return "rle"
        if isinstance(counts, list):
            return "uncompressed_rle"
        return "rle"  # reported precisely by the reader
    if isinstance(segmentation, list):
        if all(isinstance(part, list) for part in segmentation):
            return "polygon"
        if all(_is_number(v) for v in segmentation):
            return "flat_polygon"
    return None


def _read_polygons(
    parts: list[Any], height: int, width: int, where: str, report: ImportReport
) -> Rle:
    usable: list[list[float]] = []
    for index, part in enumerate(parts):
        if not all(_is_finite_number(v) for v in part):
            raise SegmentationError(f"polygon {index} holds something other than finite numbers")
        if len(part) % 2:
            raise SegmentationError(f"polygon {index} has an odd number ({len(part)}) of values")
        if len(part) < 6:
            report.add(
                "degenerate_polygon",
                f"{where}: polygon {index} has {len(part) // 2} point(s); dropped",
            )
            continue
        usable.append([float(v) for v in part])
    return rle_from_polygons(usable, height, width)


def _read_flat_polygon(
    values: list[Any], height: int, width: int, where: str, report: ImportReport
) -> Rle:
    report.add("flat_polygon", f"{where}: read as one polygon")
    return _read_polygons([values], height, width, where, report)


def _rle_size(segmentation: JsonDict, height: int, width: int) -> None:
    size = segmentation.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
        raise SegmentationError(f'RLE "size" must be [height, width], got {_short(size)}')
    if (size[0], size[1]) != (height, width):
        raise SegmentationError(
            f"RLE size {size[0]}x{size[1]} does not match its image ({height}x{width})"
        )


def _read_compressed_rle(
    segmentation: JsonDict, height: int, width: int, where: str, report: ImportReport
) -> Rle:
    _rle_size(segmentation, height, width)
    counts = segmentation.get("counts")
    if not isinstance(counts, str):
        raise SegmentationError(f'RLE "counts" must be a string or a list, got {_short(counts)}')
    return rle_from_string(counts, height, width)


def _read_uncompressed_rle(
    segmentation: JsonDict, height: int, width: int, where: str, report: ImportReport
) -> Rle:
    _rle_size(segmentation, height, width)
    counts = segmentation["counts"]
    if not all(_is_int(v) for v in counts):
        raise SegmentationError('RLE "counts" list must hold integers only')
    return rle_from_counts(counts, height, width)


_SegmentationReader = Callable[[Any, int, int, str, ImportReport], Rle]

#: Segmentation kind (see :func:`_segmentation_kind`) -> reader.
_SEGMENTATION_READERS: dict[str, _SegmentationReader] = {
    "polygon": _read_polygons,
    "flat_polygon": _read_flat_polygon,
    "rle": _read_compressed_rle,
    "uncompressed_rle": _read_uncompressed_rle,
}


def _from_bbox(
    entry: JsonDict, image: ImageRecord, where: str, report: ImportReport, *, had_empty_list: bool
) -> Rle:
    bbox = entry.get("bbox")
    if bbox is None:
        if had_empty_list:
            report.segmentations["empty"] += 1
            report.add("empty_mask", f"{where}: empty segmentation and no bbox")
            return empty_rle(image.height, image.width)
        raise SegmentationError("no segmentation and no bbox")
    if (
        not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_finite_number(v) for v in bbox))
        or min(bbox[2], bbox[3]) < 0
    ):
        raise SegmentationError(f'"bbox" must be [x, y, width, height], got {_short(bbox)}')
    report.segmentations["bbox"] += 1
    report.add("bbox_only", f"{where}: no segmentation; its bbox becomes a rectangular mask")
    return rle_from_bbox(bbox, image.height, image.width)


def _assign_annotation_ids(
    parsed: list[_ParsedAnnotation], report: ImportReport
) -> dict[int, Annotation]:
    """Keep every valid, first-seen id; give the rest new ids above the highest one."""
    seen: set[int] = set()
    needs_id: list[tuple[int, str]] = []
    for index, item in enumerate(parsed):
        raw = item.raw_id
        if raw is None:
            needs_id.append((index, "missing_id"))
        elif raw < 1:
            needs_id.append((index, "renumbered_id"))
        elif raw in seen:
            needs_id.append((index, "duplicate_id"))
        else:
            seen.add(raw)
    next_id = max(seen, default=0) + 1
    ids = [item.raw_id or 0 for item in parsed]
    for index, code in needs_id:
        ids[index] = next_id
        raw = parsed[index].raw_id
        before = "no id" if raw is None else f"id {raw}"
        report.add(code, f"{parsed[index].where}: {before} -> id {next_id}")
        next_id += 1
    return {
        new_id: replace(item.annotation, id=new_id)
        for new_id, item in zip(ids, parsed, strict=True)
    }


# --------------------------------------------------------------------------- small checks


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    """A JSON number that fits a float (ints beyond 1e308 do not)."""
    if not _is_number(value):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _require_int(
    entry: JsonDict, key: str, where: str, problems: _Problems, *, minimum: int | None = None
) -> int | None:
    """An integer field; integral floats (``640.0``, written by some tools) are accepted."""
    value = entry.get(key)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not _is_int(value):
        if key in entry:
            problems.add(where, f'"{key}" must be an integer, got {_short(value)}')
        else:
            problems.add(where, f'no "{key}"')
        return None
    if minimum is not None and value < minimum:
        problems.add(where, f'"{key}" must be >= {minimum}, got {value}')
        return None
    return value


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if _is_number(value) else type(value).__name__


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# =========================================================================== writing


def project_to_coco(
    project: Project,
    *,
    segmentation: SegmentationFormat = "rle",
    force_polygons: bool = False,
    tool_data: bool = True,
    root: Path | None = None,
) -> tuple[JsonDict, ExportReport]:
    """The project as COCO JSON (a dict ready for :func:`dumps`).

    ``segmentation="polygon"`` writes each mask as polygons (one per part); masks with holes stay
    RLE unless ``force_polygons`` (then their holes are filled and a warning names them).
    ``tool_data=False`` leaves out every :data:`TOOL_KEY` object (a clean export). ``root``
    rewrites image paths relative to another folder (save as / export elsewhere).
    """
    if segmentation not in _SEGMENTATION_WRITERS:
        raise ValueError(f"segmentation must be one of {SEGMENTATION_FORMATS}: {segmentation!r}")
    report = ExportReport()
    new_root = root if root is not None else project.root
    data: JsonDict = {
        "info": project.info,
        "licenses": project.licenses,
        "images": [
            _image_json(image, project.root, new_root, tool_data)
            for image in project.images.values()
        ],
        "annotations": [
            _annotation_json(annotation, segmentation, force_polygons, tool_data, report)
            for annotation in project.annotations.values()
        ],
        "categories": [
            _category_json(category, tool_data) for category in project.categories.values()
        ],
    }
    data.update({k: v for k, v in project.extra.items() if k != TOOL_KEY})
    if tool_data:
        data[TOOL_KEY] = {
            **project.extra.get(TOOL_KEY, {}),
            "format": FORMAT_VERSION,
            "next_annotation_id": project.next_annotation_id,
        }
    for warning in report.warnings:
        log.warning("%s", warning)
    return data, report


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps(data: JsonDict) -> bytes:
    """Compact UTF-8 JSON; NaN/Infinity are refused (not valid JSON for other readers).

    The same bytes as one ``json.dumps`` call, but the top-level lists (images, annotations...)
    are encoded item by item: one C-level ``json.dumps`` of a whole 2,000-annotation project
    holds the GIL for tens of milliseconds, which would stall the GUI thread while the saver
    thread writes; item by item, the interpreter can switch threads between items.
    """
    try:
        parts = [f"{_ENCODER.encode(key)}:{_encode_value(value)}" for key, value in data.items()]
    except ValueError as exc:
        raise ProjectError(f"the project holds a value JSON cannot store: {exc}") from exc
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def _encode_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_ENCODER.encode(item) for item in value) + "]"
    return _ENCODER.encode(value)


def _image_json(
    image: ImageRecord, old_root: Path, new_root: Path, tool_data: bool = True
) -> JsonDict:
    data: JsonDict = {
        "id": image.id,
        "file_name": rebase(image.file_name, old_root, new_root),
        "width": image.width,
        "height": image.height,
    }
    data.update({k: v for k, v in image.extra.items() if tool_data or k != TOOL_KEY})
    return data


def _category_json(category: Category, tool_data: bool) -> JsonDict:
    data: JsonDict = {
        "id": category.id,
        "name": category.name,
        "supercategory": category.supercategory,
    }
    data.update({k: v for k, v in category.extra.items() if k != TOOL_KEY})
    if tool_data:
        tool = dict(category.extra.get(TOOL_KEY, {}))
        if category.color is not None:
            tool["color"] = list(category.color)
        if tool:
            data[TOOL_KEY] = tool
    return data


_SegmentationWriter = Callable[[Annotation, bool, ExportReport], tuple[Any, Rle]]


def _keeps_original(annotation: Annotation, segmentation: SegmentationFormat) -> bool:
    """Write the imported geometry verbatim? Polygons always (they are what the user brought);
    RLE in RLE exports, and for crowd annotations (COCO's crowd regions are RLE) in any."""
    original = annotation.original
    if original is None:
        return False
    return original.kind == "polygon" or segmentation == "rle" or annotation.iscrowd == 1


def _annotation_json(
    annotation: Annotation,
    segmentation_format: SegmentationFormat,
    force_polygons: bool,
    tool_data: bool,
    report: ExportReport,
) -> JsonDict:
    original = annotation.original
    drawn_in_project = original is not None and original.drawn and tool_data
    if (
        original is not None
        and _keeps_original(annotation, segmentation_format)
        and (not drawn_in_project)
    ):
        report.kept_original += 1
        if original.kind == "polygon":
            report.polygon += 1
        else:
            report.rle += 1
        segmentation = original.segmentation
        area = original.area if original.area is not None else annotation.rle.area
        bbox = list(original.bbox) if original.bbox is not None else list(annotation.rle.bbox)
    else:
        writer = _SEGMENTATION_WRITERS[segmentation_format]
        segmentation, written = writer(annotation, force_polygons, report)
        area, bbox = written.area, list(written.bbox)
    data: JsonDict = {
        "id": annotation.id,
        "image_id": annotation.image_id,
        "category_id": annotation.category_id,
        "segmentation": segmentation,
        "area": area,
        "bbox": bbox,
        "iscrowd": annotation.iscrowd,
    }
    data.update({k: v for k, v in annotation.extra.items() if k != TOOL_KEY})
    if tool_data:
        tool = dict(annotation.extra.get(TOOL_KEY, {}))
        if drawn_in_project:
            assert original is not None
            tool["polygon"] = original.segmentation
        if annotation.prompts is not None:
            tool["prompts"] = annotation.prompts.to_json()
        optional = {"score": annotation.score, "created": annotation.created}
        optional["edited"] = annotation.edited
        tool.update({k: v for k, v in optional.items() if v is not None})
        if tool:
            data[TOOL_KEY] = tool
    return data


def _write_rle(annotation: Annotation, force: bool, report: ExportReport) -> tuple[Any, Rle]:
    report.rle += 1
    return annotation.rle.to_coco(), annotation.rle


def _write_polygon(annotation: Annotation, force: bool, report: ExportReport) -> tuple[Any, Rle]:
    polygons = mask_to_polygons(annotation.mask)
    if not polygons.parts:
        # pycocotools cannot read an empty polygon list; an empty RLE loads everywhere.
        report.empty_as_rle.append(annotation.id)
        return _write_rle(annotation, force, report)
    if polygons.holes and not force:
        report.kept_rle_for_holes.append(annotation.id)
        return _write_rle(annotation, force, report)
    if polygons.holes:
        report.holes_filled.append(annotation.id)
        report.warnings.append(
            f"annotation {annotation.id} (image {annotation.image_id}) has {polygons.holes} "
            "hole(s); written as polygons with the holes filled"
        )
    report.polygon += 1
    height, width = annotation.rle.shape
    return polygons.parts, rle_from_polygons(polygons.parts, height, width)


_SEGMENTATION_WRITERS: dict[str, _SegmentationWriter] = {
    "rle": _write_rle,
    "polygon": _write_polygon,
}


def write_coco(
    project: Project,
    path: str | os.PathLike[str],
    *,
    segmentation: SegmentationFormat = "rle",
    force_polygons: bool = False,
    tool_data: bool = True,
    backup: bool = True,
) -> ExportReport:
    """Write ``project`` to ``path`` atomically, image paths relative to ``path``'s folder."""
    from sam2_annotator.annotations.atomic import write_atomic

    target = Path(path)
    data, report = project_to_coco(
        project,
        segmentation=segmentation,
        force_polygons=force_polygons,
        tool_data=tool_data,
        root=target.parent,
    )
    write_atomic(target, dumps(data), backup=backup)
    return report
