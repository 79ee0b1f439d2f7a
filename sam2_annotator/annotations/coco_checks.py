"""Small validation helpers shared by the COCO readers: problem collection and type checks."""

from __future__ import annotations

import json
import math
from typing import Any

from sam2_annotator.annotations.coco_format import MAX_PROBLEMS
from sam2_annotator.annotations.model import TOOL_KEY, JsonDict


class Problems:
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


def tool_dict(entry: JsonDict, where: str, problems: Problems) -> JsonDict:
    value = entry.get(TOOL_KEY, {})
    if not isinstance(value, dict):
        problems.add(where, f'"{TOOL_KEY}" must be an object, got {json_type(value)}')
        return {}
    return value


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A JSON number that fits a float (ints beyond 1e308 do not)."""
    if not is_number(value):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def require_int(
    entry: JsonDict, key: str, where: str, problems: Problems, *, minimum: int | None = None
) -> int | None:
    """An integer field; integral floats (``640.0``, written by some tools) are accepted."""
    value = entry.get(key)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not is_int(value):
        if key in entry:
            problems.add(where, f'"{key}" must be an integer, got {short(value)}')
        else:
            problems.add(where, f'no "{key}"')
        return None
    if minimum is not None and value < minimum:
        problems.add(where, f'"{key}" must be >= {minimum}, got {value}')
        return None
    return value


def json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if is_number(value) else type(value).__name__


def short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
