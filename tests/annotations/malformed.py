"""Generated malformed COCO inputs: (name, file bytes, a fragment the error must contain)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from sam2_annotator.annotations.masks import mask_to_rle
from sam2_annotator.annotations.model import TOOL_KEY
from tests.annotations.helpers import minimal_coco

Mutation = Callable[[dict[str, Any]], Any]


def _set(path: str, value: Any) -> Mutation:
    """Set ``a.b.0.c`` (list indices as numbers) to ``value``; ``...`` deletes the key."""

    def mutate(data: dict[str, Any]) -> Any:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is ...:
            del node[last]
        else:
            node[last] = value
        return data

    return mutate


def _append(section: str, entry: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> Any:
        data[section].append(entry)
        return data

    return mutate


def _duplicate(section: str, index: int) -> Mutation:
    def mutate(data: dict[str, Any]) -> Any:
        data[section].append(copy.deepcopy(data[section][index]))
        return data

    return mutate


def _whole(value: Any) -> Mutation:
    return lambda _data: value


def _bbox_only(bbox: Any) -> Mutation:
    """Annotation 1 without segmentation; ``bbox`` replaces its box (``...`` removes it)."""

    def mutate(data: dict[str, Any]) -> Any:
        del data["annotations"][1]["segmentation"]
        if bbox is ...:
            del data["annotations"][1]["bbox"]
        else:
            data["annotations"][1]["bbox"] = bbox
        return data

    return mutate


_OTHER_SIZE_RLE = mask_to_rle(np.ones((4, 4), bool)).to_coco()["counts"]

#: (name, mutation of :func:`minimal_coco`, fragment expected in the error message)
STRUCTURE_CASES: list[tuple[str, Mutation, str]] = [
    ("top-level list", _whole([]), "top level is a list"),
    ("top-level string", _whole("coco"), "top level is a string"),
    ("top-level null", _whole(None), "top level is null"),
    ("top-level number", _whole(3), "top level is a number"),
    ("no images", _set("images", ...), 'no "images"'),
    ("images object", _set("images", {}), "images: must be a list"),
    ("annotations string", _set("annotations", "x"), "annotations: must be a list"),
    ("categories number", _set("categories", 1), "categories: must be a list"),
    ("info list", _set("info", []), "info: must be an object"),
    ("licenses object", _set("licenses", {}), "licenses: must be a list"),
    ("image is string", _set("images.0", "a.png"), "images[0]: must be an object"),
    ("image is null", _append("images", None), "images[1]: must be an object"),
    ("image no id", _set("images.0.id", ...), 'no "id"'),
    ("image id string", _set("images.0.id", "1"), '"id" must be an integer'),
    ("image id bool", _set("images.0.id", True), '"id" must be an integer'),
    ("image id fraction", _set("images.0.id", 1.5), '"id" must be an integer'),
    ("image no file_name", _set("images.0.file_name", ...), '"file_name" must be'),
    ("image empty file_name", _set("images.0.file_name", " "), '"file_name" must be'),
    ("image file_name list", _set("images.0.file_name", ["a"]), '"file_name" must be'),
    ("image width zero", _set("images.0.width", 0), '"width" must be >= 1'),
    ("image height negative", _set("images.0.height", -8), '"height" must be >= 1'),
    ("image width string", _set("images.0.width", "10"), '"width" must be an integer'),
    ("image width fraction", _set("images.0.width", 10.5), '"width" must be an integer'),
    ("image no height", _set("images.0.height", ...), 'no "height"'),
    ("image too large", _set("images.0.width", 10**9), "too large for COCO RLE"),
    ("image ids twice", _duplicate("images", 0), "image id 1 is used twice"),
    ("image tool key list", _set(f"images.0.{TOOL_KEY}", []), f'"{TOOL_KEY}" must be an object'),
    ("category is list", _set("categories.0", [1, "cat"]), "categories[0]: must be an object"),
    ("category no id", _set("categories.0.id", ...), 'no "id"'),
    ("category id string", _set("categories.0.id", "cat"), '"id" must be an integer'),
    ("category name null", _set("categories.0.name", None), '"name" must be a string'),
    ("category supercat number", _set("categories.0.supercategory", 3), '"supercategory"'),
    ("category ids twice", _duplicate("categories", 1), "category id 2 is used twice"),
    ("category colour", _set(f"categories.0.{TOOL_KEY}", {"color": [300, 0, 0]}), "colour"),
    ("annotation is list", _set("annotations.0", [1]), "annotations[0]: must be an object"),
    ("annotation id string", _set("annotations.0.id", "a1"), '"id" must be an integer'),
    ("annotation id null", _set("annotations.0.id", None), '"id" must be an integer'),
    ("annotation no image_id", _set("annotations.0.image_id", ...), 'no "image_id"'),
    ("annotation unknown image", _set("annotations.0.image_id", 9), "image_id 9 is not in"),
    ("annotation unknown category", _set("annotations.1.category_id", 5), "category_id 5 is not"),
    ("annotation category null", _set("annotations.0.category_id", None), '"category_id" must'),
    ("segmentation number", _set("annotations.0.segmentation", 5), "polygons or RLE"),
    ("segmentation string", _set("annotations.0.segmentation", "1 2 3"), "polygons or RLE"),
    ("polygon odd", _set("annotations.0.segmentation", [[1, 1, 5, 1, 5]]), "odd number"),
    ("polygon text", _set("annotations.0.segmentation.0.2", "5"), "other than finite numbers"),
    ("polygon bool", _set("annotations.0.segmentation.0.0", True), "other than finite numbers"),
    ("polygon too deep", _set("annotations.0.segmentation", [[[1, 1]]]), "finite numbers"),
    ("polygon mixed", _set("annotations.0.segmentation", [[1, 1, 4, 1, 4, 4], 2]), "polygons or"),
    ("rle size mismatch", _set("annotations.1.segmentation.size", [10, 8]), "does not match"),
    ("rle size missing", _set("annotations.1.segmentation.size", ...), 'RLE "size"'),
    ("rle size text", _set("annotations.1.segmentation.size", "8x10"), 'RLE "size"'),
    ("rle counts short", _set("annotations.1.segmentation.counts", [20, 5]), "cover 25 pixels"),
    ("rle counts long", _set("annotations.1.segmentation.counts", [80, 5]), "cover 85 pixels"),
    ("rle counts negative", _set("annotations.1.segmentation.counts", [85, -5]), "negative"),
    ("rle counts floats", _set("annotations.1.segmentation.counts", [80.0]), "integers only"),
    ("rle counts number", _set("annotations.1.segmentation.counts", 80), 'RLE "counts"'),
    ("rle string bad char", _set("annotations.1.segmentation.counts", "0 1"), "invalid char"),
    (
        "rle string wrong size",
        _set("annotations.1.segmentation.counts", _OTHER_SIZE_RLE),
        "cover 16",
    ),
    ("iscrowd two", _set("annotations.0.iscrowd", 2), '"iscrowd" must be 0 or 1'),
    ("iscrowd text", _set("annotations.0.iscrowd", "0"), '"iscrowd" must be 0 or 1'),
    ("iscrowd list", _set("annotations.0.iscrowd", [1]), '"iscrowd" must be 0 or 1'),
    ("iscrowd null", _set("annotations.0.iscrowd", None), '"iscrowd" must be 0 or 1'),
    ("no segmentation no bbox", _bbox_only(...), "no segmentation and no bbox"),
    ("bbox negative", _bbox_only([1, 1, -2, 3]), '"bbox" must be [x, y, width, height]'),
    ("bbox short", _bbox_only([1, 1, 2]), '"bbox" must be [x, y, width, height]'),
    ("tool key string", _set(f"annotations.0.{TOOL_KEY}", "x"), f'"{TOOL_KEY}" must be'),
    (
        "prompts labels",
        _set(f"annotations.0.{TOOL_KEY}", {"prompts": {"points": [[1, 2]]}}),
        "1 points",
    ),
    (
        "prompts points text",
        _set(f"annotations.0.{TOOL_KEY}", {"prompts": {"points": "a"}}),
        "prompts",
    ),
    ("score text", _set(f"annotations.0.{TOOL_KEY}", {"score": "high"}), "score must be a number"),
    (
        "created number",
        _set(f"annotations.0.{TOOL_KEY}", {"created": 5}),
        "created must be a string",
    ),
    ("format newer", _set(TOOL_KEY, {"format": 2}), "newer sam2-annotator"),
    ("format text", _set(TOOL_KEY, {"format": "1"}), "format must be an integer"),
    ("next id zero", _set(TOOL_KEY, {"next_annotation_id": 0}), "next_annotation_id"),
    ("top tool key list", _set(TOOL_KEY, [1]), f'"{TOOL_KEY}" must be an object'),
]


def _valid_bytes() -> bytes:
    return json.dumps(minimal_coco(), indent=1).encode()


def _truncations(count: int) -> list[tuple[str, bytes, str]]:
    raw = _valid_bytes().rstrip()
    step = len(raw) // (count + 1)
    return [
        (f"truncated at {n * step}", raw[: n * step], "invalid JSON") for n in range(1, count + 1)
    ]


BYTE_CASES: list[tuple[str, bytes, str]] = [
    ("empty file", b"", "empty"),
    ("only whitespace", b" \n\t ", "empty"),
    ("not json", b"images: []", "invalid JSON"),
    ("open brace", b"{", "invalid JSON"),
    ("trailing comma", b'{"images": [],}', "invalid JSON"),
    ("latin-1", '{"info": {"d": "caf\xe9"}}'.encode("latin-1"), "not UTF-8"),
    ("utf-16", json.dumps(minimal_coco()).encode("utf-16"), "not UTF-8"),
    ("NaN width", _valid_bytes().replace(b'"width": 10', b'"width": NaN'), "NaN"),
    ("Infinity height", _valid_bytes().replace(b'"height": 8', b'"height": -Infinity'), "Infinity"),
    ("deep nesting", b'{"info": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "nested too deeply"),
    *_truncations(12),
]


def all_cases() -> list[tuple[str, bytes, str]]:
    cases = list(BYTE_CASES)
    for name, mutation, fragment in STRUCTURE_CASES:
        data = mutation(minimal_coco())
        cases.append((name, json.dumps(data).encode(), fragment))
    names = [name for name, _, _ in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    return cases
