"""Category names and colours: the rules they follow, and the ``--labels FILE`` list (no Qt).

A labels file has one category name per line, UTF-8 with or without a byte-order mark; blank lines
and lines starting with ``#`` are skipped. Names compare case-insensitively (as everywhere in the
app): a name that repeats an earlier one is dropped, with one warning that lists every such line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sam2_annotator.errors import UserError

if TYPE_CHECKING:
    from sam2_annotator.annotations.model import Category
    from sam2_annotator.annotations.store import ProjectStore

log = logging.getLogger(__name__)

__all__ = [
    "CategoryError",
    "LabelsFileError",
    "check_color",
    "clean_name",
    "ensure_categories",
    "name_key",
    "parse_labels",
    "read_labels_file",
]


class CategoryError(UserError, ValueError):
    """A category edit that cannot be done as asked (empty name, a name already taken, a delete
    that does not say what happens to the annotations...). Also a ``ValueError``."""


class LabelsFileError(UserError):
    """A labels file is missing or cannot be read as UTF-8 text."""


def name_key(name: str) -> str:
    """What two category names are compared by: stripped and case-folded."""
    return name.strip().casefold()


def clean_name(name: str) -> str:
    """``name`` stripped of surrounding whitespace; :class:`CategoryError` when nothing is left."""
    cleaned = name.strip()
    if not cleaned:
        raise CategoryError("a category needs a name")
    return cleaned


def check_color(color: Any) -> tuple[int, int, int]:
    """``color`` as an ``(r, g, b)`` tuple of ints 0-255; ``ValueError`` when it is not one."""
    try:
        values = tuple(color)
    except TypeError:
        values = ()
    if len(values) != 3 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and 0 <= v <= 255
        for v in values
    ):
        raise ValueError(f"a colour is three integers 0-255, got {color!r}")
    red, green, blue = (int(v) for v in values)
    return red, green, blue


def parse_labels(text: str) -> tuple[list[str], list[tuple[int, str]]]:
    """The names in a labels file's text, in order, and the dropped duplicates as
    ``(line number, name)``."""
    names: list[str] = []
    seen: set[str] = set()
    duplicates: list[tuple[int, str]] = []
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        key = name_key(name)
        if key in seen:
            duplicates.append((number, name))
            continue
        seen.add(key)
        names.append(name)
    return names, duplicates


def read_labels_file(path: str | os.PathLike[str]) -> list[str]:
    """The category names in ``path`` (see the module docstring); duplicates are dropped with one
    logged warning. Raises :class:`LabelsFileError` when the file cannot be read."""
    source = Path(path)
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise LabelsFileError(f"labels file {source} does not exist") from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise LabelsFileError(f"cannot read labels file {source}: {reason}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise LabelsFileError(
            f"labels file {source} is not UTF-8 text (line {line}); save it as UTF-8"
        ) from None
    names, duplicates = parse_labels(text)
    if duplicates:
        listed = ", ".join(f"{name!r} (line {number})" for number, name in duplicates)
        log.warning("labels file %s: dropped repeated names: %s", source, listed)
    return names


def ensure_categories(store: ProjectStore, names: Iterable[str]) -> list[Category]:
    """The categories called ``names`` (case-insensitive), in that order; the missing ones are
    added at the end, in order, with one save."""
    by_key: dict[str, Category] = {}
    for category in store.categories:
        by_key.setdefault(name_key(category.name), category)
    result: dict[int, Category] = {}
    with store.transaction():
        for name in names:
            cleaned = clean_name(name)
            category = by_key.get(name_key(cleaned))
            if category is None:
                category = store.add_category(cleaned)
                by_key[name_key(cleaned)] = category
            result.setdefault(category.id, category)
    return list(result.values())
