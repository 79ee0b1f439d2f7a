"""Read and validate COCO instances files (the project file format).

Reading accepts what real COCO files contain: polygons, compressed and uncompressed RLE, ids
starting at 0, category id 0, missing image files, wrong image sizes, duplicate annotation ids and
keys this tool does not know. Everything that can be repaired is repaired and listed in an
:class:`~.coco_format.ImportReport`; everything that cannot (wrong types, unknown references, RLE
that does not cover its image...) is collected and raised together as one
:class:`~.coco_format.ProjectFormatError`, so the user sees the first problems at once instead of
one per attempt. Annotations and their segmentations are read by :mod:`.coco_read_annotations`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from sam2_annotator.annotations.coco_checks import (
    Problems,
    is_int,
    json_type,
    require_int,
    short,
    tool_dict,
)
from sam2_annotator.annotations.coco_format import (
    CATEGORY_KEYS,
    IMAGE_KEYS,
    TOP_LEVEL_KEYS,
    ImportReport,
    ProjectFormatError,
)
from sam2_annotator.annotations.coco_read_annotations import (
    assign_annotation_ids,
    parse_annotations,
)
from sam2_annotator.annotations.masks import MAX_PIXELS
from sam2_annotator.annotations.model import (
    FORMAT_VERSION,
    TOOL_KEY,
    Category,
    ImageRecord,
    JsonDict,
    Project,
    rebase,
)
from sam2_annotator.errors import ImageLoadError, ProjectError

#: Records keep the name of the public module, :mod:`sam2_annotator.annotations.coco_io`.
log = logging.getLogger("sam2_annotator.annotations.coco_io")


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
        raise ProjectFormatError(source, [f"the top level is {json_type(data)}, not an object"])
    problems = Problems()
    report = ImportReport(source=source, foreign=TOOL_KEY not in data)
    images_raw = _section(data, "images", problems, required=True)
    categories_raw = _section(data, "categories", problems, required=False)
    annotations_raw = _section(data, "annotations", problems, required=False)
    tool = tool_dict(data, "top level", problems)
    _check_format_version(tool, problems)
    info = data.get("info")
    if info is not None and not isinstance(info, dict):
        problems.add("info", f"must be an object, got {json_type(info)}")
    licenses = data.get("licenses")
    if licenses is not None and not isinstance(licenses, list):
        problems.add("licenses", f"must be a list, got {json_type(licenses)}")

    images = _parse_images(images_raw, problems)
    categories = _parse_categories(categories_raw, problems)
    parsed = parse_annotations(annotations_raw, images, categories, problems, report)
    if problems:
        raise ProjectFormatError(source, problems.items, problems.total)

    annotations = assign_annotation_ids(parsed, report)
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


def _section(data: JsonDict, key: str, problems: Problems, *, required: bool) -> list[Any]:
    value = data.get(key)
    if value is None:
        if required:
            problems.add("top level", f'no "{key}" list')
        return []
    if not isinstance(value, list):
        problems.add(key, f"must be a list, got {json_type(value)}")
        return []
    return value


def _check_format_version(tool: JsonDict, problems: Problems) -> None:
    version = tool.get("format", FORMAT_VERSION)
    if not is_int(version):
        problems.add(TOOL_KEY, f"format must be an integer, got {short(version)}")
    elif version > FORMAT_VERSION:
        problems.add(
            TOOL_KEY,
            f"written by a newer sam2-annotator (format {version}; this version reads "
            f"{FORMAT_VERSION}); update the app",
        )
    next_id = tool.get("next_annotation_id", 1)
    if not is_int(next_id) or next_id < 1:
        problems.add(TOOL_KEY, f"next_annotation_id must be an integer >= 1, got {short(next_id)}")


def _tool_int(tool: JsonDict, key: str, default: int) -> int:
    value = tool.get(key, default)
    return int(value) if is_int(value) else default


# --------------------------------------------------------------------------- images


def _parse_images(entries: list[Any], problems: Problems) -> dict[int, ImageRecord]:
    images: dict[int, ImageRecord] = {}
    for index, entry in enumerate(entries):
        where = f"images[{index}]"
        if not isinstance(entry, dict):
            problems.add(where, f"must be an object, got {json_type(entry)}")
            continue
        image_id = require_int(entry, "id", where, problems)
        if image_id is not None:
            where = f"images[{index}] (id {image_id})"
        file_name = entry.get("file_name")
        if not isinstance(file_name, str) or not file_name.strip():
            problems.add(where, f'"file_name" must be a non-empty string, got {short(file_name)}')
            file_name = None
        width = require_int(entry, "width", where, problems, minimum=1)
        height = require_int(entry, "height", where, problems, minimum=1)
        if width is not None and height is not None and width * height > MAX_PIXELS:
            problems.add(where, f"{width}x{height} is too large for COCO RLE (32-bit counts)")
            continue
        tool_dict(entry, where, problems)
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


def _parse_categories(entries: list[Any], problems: Problems) -> dict[int, Category]:
    categories: dict[int, Category] = {}
    for index, entry in enumerate(entries):
        where = f"categories[{index}]"
        if not isinstance(entry, dict):
            problems.add(where, f"must be an object, got {json_type(entry)}")
            continue
        category_id = require_int(entry, "id", where, problems)
        if category_id is not None:
            where = f"categories[{index}] (id {category_id})"
        name = entry.get("name")
        if not isinstance(name, str):
            problems.add(where, f'"name" must be a string, got {short(name)}')
            name = None
        supercategory = entry.get("supercategory", "")
        if supercategory is None:
            supercategory = ""
        if not isinstance(supercategory, str):
            problems.add(where, f'"supercategory" must be a string, got {short(supercategory)}')
            supercategory = ""
        tool = dict(tool_dict(entry, where, problems))
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


def _parse_color(value: Any, where: str, problems: Problems) -> tuple[int, int, int] | None:
    if value is None:
        return None
    if (
        isinstance(value, list)
        and len(value) == 3
        and all(is_int(v) and 0 <= v <= 255 for v in value)
    ):
        return int(value[0]), int(value[1]), int(value[2])
    problems.add(where, f"colour must be [r, g, b] with 0..255, got {short(value)}")
    return None
