"""Read the annotations of a COCO file: every segmentation form into an exact RLE, our tool keys,
the geometry kept verbatim for export, and annotation ids (renumbered where unusable)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sam2_annotator.annotations.coco_checks import (
    Problems,
    is_finite_number,
    is_int,
    is_number,
    json_type,
    require_int,
    short,
    tool_dict,
)
from sam2_annotator.annotations.coco_format import ANNOTATION_KEYS, ImportReport
from sam2_annotator.annotations.masks import (
    Rle,
    SegmentationError,
    empty_rle,
    rle_from_bbox,
    rle_from_counts,
    rle_from_polygons,
    rle_from_string,
)
from sam2_annotator.annotations.model import (
    TOOL_KEY,
    Annotation,
    Category,
    ImageRecord,
    JsonDict,
    PromptRecord,
    SourceGeometry,
    check_score,
)


@dataclass
class ParsedAnnotation:
    raw_id: int | None
    annotation: Annotation  # with id 0 until ids are assigned
    where: str


def parse_annotations(
    entries: list[Any],
    images: dict[int, ImageRecord],
    categories: dict[int, Category],
    problems: Problems,
    report: ImportReport,
) -> list[ParsedAnnotation]:
    parsed: list[ParsedAnnotation] = []
    for index, entry in enumerate(entries):
        where = f"annotations[{index}]"
        if not isinstance(entry, dict):
            problems.add(where, f"must be an object, got {json_type(entry)}")
            continue
        raw_id: int | None = None
        if "id" in entry:
            raw_id = require_int(entry, "id", where, problems)
            if raw_id is None:
                continue
            where = f"annotations[{index}] (id {raw_id})"
        item = _parse_annotation(entry, where, images, categories, problems, report)
        if item is not None:
            parsed.append(ParsedAnnotation(raw_id, item, where))
    return parsed


def _parse_annotation(
    entry: JsonDict,
    where: str,
    images: dict[int, ImageRecord],
    categories: dict[int, Category],
    problems: Problems,
    report: ImportReport,
) -> Annotation | None:
    image_id = require_int(entry, "image_id", where, problems)
    category_id = require_int(entry, "category_id", where, problems)
    image = images.get(image_id) if image_id is not None else None
    if image_id is not None and image is None:
        problems.add(where, f"image_id {image_id} is not in images")
    if category_id is not None and category_id not in categories:
        problems.add(where, f"category_id {category_id} is not in categories")
    iscrowd = entry.get("iscrowd", 0)
    crowd_ok = is_number(iscrowd) and iscrowd in (0, 1)
    if not crowd_ok:
        problems.add(where, f'"iscrowd" must be 0 or 1, got {short(iscrowd)}')
    tool = dict(tool_dict(entry, where, problems))
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


def _drawn_polygon(tool: JsonDict, where: str, problems: Problems) -> SourceGeometry | None:
    """A polygon drawn in this app: its vertices under our key (the segmentation is the RLE of
    the mask the app rasterised, so that reopening gives the same pixels)."""
    polygon = tool.pop("polygon", None)
    if polygon is None:
        return None
    if not (
        isinstance(polygon, list)
        and polygon
        and all(
            isinstance(part, list) and len(part) >= 6 and all(is_finite_number(v) for v in part)
            for part in polygon
        )
    ):
        problems.add(where, f"{TOOL_KEY}.polygon must be a list of polygons, got {short(polygon)}")
        return None
    return SourceGeometry(polygon, "polygon", drawn=True)


def _source_geometry(entry: JsonDict) -> SourceGeometry | None:
    segmentation = entry.get("segmentation")
    kind = _segmentation_kind(segmentation) if segmentation not in (None, []) else None
    if kind not in ("polygon", "rle", "uncompressed_rle"):
        return None
    area = entry.get("area")
    bbox = entry.get("bbox")
    bbox_ok = isinstance(bbox, list) and len(bbox) == 4 and all(is_finite_number(v) for v in bbox)
    return SourceGeometry(
        segmentation=segmentation,
        kind=kind,
        area=area if is_finite_number(area) else None,  # as written (an int stays an int)
        bbox=tuple(bbox) if bbox_ok else None,  # type: ignore[arg-type]
    )


_ToolFields = tuple[PromptRecord | None, float | None, str | None, str | None]


def _parse_annotation_tool_fields(
    tool: JsonDict, where: str, problems: Problems
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
            problems.add(where, f"{TOOL_KEY}.score must be a number, got {short(score)}")
            ok = False
    stamps: list[str | None] = []
    for key in ("created", "edited"):
        stamp = tool.pop(key, None)
        if stamp is not None and not isinstance(stamp, str):
            problems.add(where, f"{TOOL_KEY}.{key} must be a string, got {short(stamp)}")
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
        raise SegmentationError(f"segmentation must be polygons or RLE, got {short(segmentation)}")
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
        if all(is_number(v) for v in segmentation):
            return "flat_polygon"
    return None


def _read_polygons(
    parts: list[Any], height: int, width: int, where: str, report: ImportReport
) -> Rle:
    usable: list[list[float]] = []
    for index, part in enumerate(parts):
        if not all(is_finite_number(v) for v in part):
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
    if not (isinstance(size, list) and len(size) == 2 and all(is_int(v) for v in size)):
        raise SegmentationError(f'RLE "size" must be [height, width], got {short(size)}')
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
        raise SegmentationError(f'RLE "counts" must be a string or a list, got {short(counts)}')
    return rle_from_string(counts, height, width)


def _read_uncompressed_rle(
    segmentation: JsonDict, height: int, width: int, where: str, report: ImportReport
) -> Rle:
    _rle_size(segmentation, height, width)
    counts = segmentation["counts"]
    if not all(is_int(v) for v in counts):
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
        not (isinstance(bbox, list) and len(bbox) == 4 and all(is_finite_number(v) for v in bbox))
        or min(bbox[2], bbox[3]) < 0
    ):
        raise SegmentationError(f'"bbox" must be [x, y, width, height], got {short(bbox)}')
    report.segmentations["bbox"] += 1
    report.add("bbox_only", f"{where}: no segmentation; its bbox becomes a rectangular mask")
    return rle_from_bbox(bbox, image.height, image.width)


def assign_annotation_ids(
    parsed: list[ParsedAnnotation], report: ImportReport
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
