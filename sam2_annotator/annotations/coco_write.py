"""Write projects as COCO instances files.

Writing produces plain COCO plus one :data:`~.model.TOOL_KEY` object per record. ``bbox`` and
``area`` always come from pycocotools on the segmentation as written.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sam2_annotator.annotations.coco_format import (
    SEGMENTATION_FORMATS,
    ExportReport,
    SegmentationFormat,
)
from sam2_annotator.annotations.masks import Rle, mask_to_polygons, rle_from_polygons
from sam2_annotator.annotations.model import (
    FORMAT_VERSION,
    TOOL_KEY,
    Annotation,
    Category,
    ImageRecord,
    JsonDict,
    Project,
    rebase,
)
from sam2_annotator.errors import ProjectError

#: Records keep the name of the public module, :mod:`sam2_annotator.annotations.coco_io`.
log = logging.getLogger("sam2_annotator.annotations.coco_io")


def project_to_coco(
    project: Project,
    *,
    segmentation: SegmentationFormat = "rle",
    force_polygons: bool = False,
    tool_data: bool = True,
    root: Path | None = None,
    on_annotation: Callable[[int, Annotation], object] | None = None,
) -> tuple[JsonDict, ExportReport]:
    """The project as COCO JSON (a dict ready for :func:`dumps`).

    ``segmentation="polygon"`` writes each mask as polygons (one per part); masks with holes stay
    RLE unless ``force_polygons`` (then their holes are filled and a warning names them).
    ``tool_data=False`` leaves out every :data:`TOOL_KEY` object (a clean export). ``root``
    rewrites image paths relative to another folder (save as / export elsewhere).
    ``on_annotation(index, annotation)`` is called before each annotation is converted (progress
    for long exports; it may raise to stop).
    """
    if segmentation not in _SEGMENTATION_WRITERS:
        raise ValueError(f"segmentation must be one of {SEGMENTATION_FORMATS}: {segmentation!r}")
    report = ExportReport()
    new_root = root if root is not None else project.root
    annotations = []
    for index, annotation in enumerate(project.annotations.values()):
        if on_annotation is not None:
            on_annotation(index, annotation)
        annotations.append(
            _annotation_json(annotation, segmentation, force_polygons, tool_data, report)
        )
    data: JsonDict = {
        "info": project.info,
        "licenses": project.licenses,
        "images": [
            _image_json(image, project.root, new_root, tool_data)
            for image in project.images.values()
        ],
        "annotations": annotations,
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


def keeps_original(annotation: Annotation, segmentation: SegmentationFormat) -> bool:
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
        and keeps_original(annotation, segmentation_format)
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
    on_annotation: Callable[[int, Annotation], object] | None = None,
) -> ExportReport:
    """Write ``project`` to ``path`` atomically, image paths relative to ``path``'s folder
    (``on_annotation``: see :func:`project_to_coco`)."""
    from sam2_annotator.annotations.atomic import write_atomic

    target = Path(path)
    data, report = project_to_coco(
        project,
        segmentation=segmentation,
        force_polygons=force_polygons,
        tool_data=tool_data,
        root=target.parent,
        on_annotation=on_annotation,
    )
    write_atomic(target, dumps(data), backup=backup)
    return report
