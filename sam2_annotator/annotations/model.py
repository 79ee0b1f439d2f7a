"""The project data model: images, categories and annotations as plain dataclasses (no Qt, no I/O).

Records are frozen; an edit replaces a record (``dataclasses.replace``), which is what makes undo
a matter of swapping records. Masks are kept as compressed RLE (:class:`~.masks.Rle`) and decoded
on demand by :attr:`Annotation.mask`, so a project with many annotations stays small in memory.

Every record keeps the JSON keys this tool does not know in ``extra`` (written back verbatim);
``extra[TOOL_KEY]`` holds unknown keys inside our own namespace (from a newer version, say).

:class:`Project` is the in-memory container with lookups and the low-level mutations the undo
commands use; GUI and CLI code edit through :class:`~.store.ProjectStore`, which adds undo,
change notification and autosave.
"""

from __future__ import annotations

import colorsys
import copy
import logging
import math
import os
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any, Literal

import numpy as np

from sam2_annotator.annotations.masks import Rle, mask_to_rle
from sam2_annotator.engine.types import Prompt

log = logging.getLogger(__name__)

#: The one JSON key (per annotation, image, category and at the top level) under which this tool
#: keeps its own fields, so the rest of the file is plain COCO.
TOOL_KEY = "sam2_annotator"
#: Version of what lives under :data:`TOOL_KEY`; a file with a newer one is refused.
FORMAT_VERSION = 1

JsonDict = dict[str, Any]
RGB = tuple[int, int, int]


def utc_now() -> str:
    """Current time as ISO 8601 in UTC with milliseconds (what ``created``/``edited`` hold)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def default_color(category_id: int) -> RGB:
    """A distinct, stable colour per category id (golden-ratio hue steps)."""
    hue = (category_id * 0.618033988749895) % 1.0
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.65, 0.95)
    return round(red * 255), round(green * 255), round(blue * 255)


@dataclass(frozen=True)
class PromptRecord:
    """The clicks and box that produced a mask, in original-image pixels (JSON-friendly)."""

    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if len(self.points) != len(self.labels):
            raise ValueError(f"{len(self.points)} points but {len(self.labels)} labels")
        numbers = [v for point in self.points for v in point] + list(self.box or ())
        if not all(math.isfinite(v) for v in numbers):
            raise ValueError("prompt coordinates must be finite numbers")

    @classmethod
    def from_prompt(cls, prompt: Prompt) -> PromptRecord:
        """From the engine's :class:`~sam2_annotator.engine.types.Prompt` (drops ``mask_input``)."""
        points = tuple((float(x), float(y)) for x, y in np.asarray(prompt.points).reshape(-1, 2))
        labels = tuple(int(v) for v in np.asarray(prompt.labels).reshape(-1))
        box = None
        if prompt.box is not None:
            x0, y0, x1, y1 = (float(v) for v in np.asarray(prompt.box).reshape(4))
            box = (x0, y0, x1, y1)
        return cls(points=points, labels=labels, box=box)

    def to_prompt(self) -> Prompt:
        """Back to the engine's type, e.g. to refine the mask with more clicks."""
        return Prompt(
            points=np.asarray(self.points, np.float32).reshape(-1, 2),
            labels=np.asarray(self.labels, np.int64),
            box=None if self.box is None else np.asarray(self.box, np.float32),
        )

    def to_json(self) -> JsonDict:
        data: JsonDict = {"points": [list(p) for p in self.points], "labels": list(self.labels)}
        if self.box is not None:
            data["box"] = list(self.box)
        return data

    @classmethod
    def from_json(cls, data: Any) -> PromptRecord:
        """Parse :meth:`to_json` output; raises ``ValueError``/``TypeError`` when malformed."""
        if not isinstance(data, dict):
            raise TypeError("prompts must be an object")
        points = tuple((float(x), float(y)) for x, y in data.get("points", []))
        labels = tuple(_strict_int(v) for v in data.get("labels", []))
        box_data = data.get("box")
        box = None
        if box_data is not None:
            x0, y0, x1, y1 = (float(v) for v in box_data)
            box = (x0, y0, x1, y1)
        return cls(points=points, labels=labels, box=box)


def _strict_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    supercategory: str = ""
    color: RGB | None = None
    extra: JsonDict = field(default_factory=dict)


@dataclass(frozen=True)
class ImageRecord:
    """One image. ``file_name`` is relative to the project file's folder (as stored)."""

    id: int
    file_name: str
    width: int
    height: int
    extra: JsonDict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``: the shape every mask of this image has."""
        return self.height, self.width

    def flag(self, name: str) -> bool:
        """A per-image review flag (``"done"``, ``"review"``) kept under :data:`TOOL_KEY`."""
        tool = self.extra.get(TOOL_KEY)
        return bool(tool.get(name, False)) if isinstance(tool, dict) else False

    def with_flag(self, name: str, value: bool) -> ImageRecord:
        tool = dict(self.extra.get(TOOL_KEY) or {})
        if value:
            tool[name] = True
        else:
            tool.pop(name, None)
        extra = {k: v for k, v in self.extra.items() if k != TOOL_KEY}
        if tool:
            extra[TOOL_KEY] = tool
        return replace(self, extra=extra)


@dataclass(frozen=True)
class SourceGeometry:
    """An annotation's segmentation, area and bbox exactly as the file it came from had them.

    Kept while the mask is unchanged, so that an annotation the user did not touch is written back
    as it came (the same polygons, the same crowd RLE) in the project file and in every export,
    instead of being re-encoded. ``kind`` is ``"polygon"``, ``"rle"`` or ``"uncompressed_rle"``;
    ``area``/``bbox`` are ``None`` where the file had no valid value (then they are computed).
    """

    segmentation: Any
    kind: str
    area: int | float | None = None
    bbox: tuple[float, float, float, float] | None = None
    #: Drawn in this app: the mask is the app's rasterisation (``cv2.fillPoly``), so the project
    #: file keeps that exact mask as RLE and the vertices beside it; exports write the polygon.
    drawn: bool = False


@dataclass(frozen=True)
class Annotation:
    """One object: its exact mask (as RLE), category and how it was made.

    ``created``/``edited`` are ISO 8601 UTC strings (:func:`utc_now`); ``score`` is the model's
    predicted IoU when the mask came from SAM2, ``None`` for imported or hand-made masks.
    """

    id: int
    image_id: int
    category_id: int
    rle: Rle
    prompts: PromptRecord | None = None
    score: float | None = None
    created: str | None = None
    edited: str | None = None
    iscrowd: int = 0
    extra: JsonDict = field(default_factory=dict)
    #: The geometry as imported (see :class:`SourceGeometry`); ``None`` once the mask is edited.
    original: SourceGeometry | None = field(default=None, compare=False, repr=False)

    @property
    def mask(self) -> np.ndarray:
        """The mask as a bool array ``(H, W)`` (decoded on each access)."""
        return self.rle.decode()

    @property
    def area(self) -> int:
        return self.rle.area

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return self.rle.bbox

    @classmethod
    def from_mask(
        cls,
        id: int,
        image_id: int,
        category_id: int,
        mask: np.ndarray,
        *,
        prompts: PromptRecord | None = None,
        score: float | None = None,
        now: str | None = None,
    ) -> Annotation:
        stamp = now or utc_now()
        return cls(
            id=id,
            image_id=image_id,
            category_id=category_id,
            rle=mask_to_rle(mask),
            prompts=prompts,
            score=check_score(score),
            created=stamp,
            edited=stamp,
        )


def check_score(score: float | None) -> float | None:
    if score is None:
        return None
    value = float(score)
    if not math.isfinite(value):
        raise ValueError(f"score must be a finite number, got {score!r}")
    return value


#: Where an annotation sat, so that undoing a delete puts it back in the same place (file order
#: and drawing order): (index among all annotations, index among its image's annotations).
Position = tuple[int, int]

ChangeKind = Literal[
    "annotation_added",
    "annotation_removed",
    "annotation_changed",
    "image_added",
    "image_changed",
    "category_added",
    "category_changed",
    "category_removed",
    "saved",
]


@dataclass(frozen=True)
class Change:
    """What observers of a :class:`~.store.ProjectStore` are told after each change.

    ``id`` is the annotation, image or category id (``None`` for ``saved``); ``image_id`` is set
    for annotation changes so a view can ignore other images cheaply.
    """

    kind: ChangeKind
    id: int | None = None
    image_id: int | None = None


@dataclass
class Project:
    """Everything in one project file, indexed for the lookups an editor needs.

    ``root`` is the folder image ``file_name`` values are relative to (the project file's folder).
    ``info``, ``licenses`` and ``extra`` (unknown top-level keys) are kept as read.
    """

    root: Path
    images: dict[int, ImageRecord] = field(default_factory=dict)
    categories: dict[int, Category] = field(default_factory=dict)
    annotations: dict[int, Annotation] = field(default_factory=dict)
    info: JsonDict = field(default_factory=dict)
    licenses: list[Any] = field(default_factory=list)
    extra: JsonDict = field(default_factory=dict)
    next_annotation_id: int = 1
    _by_image: dict[int, list[int]] = field(default_factory=dict, repr=False, compare=False)
    _by_name: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    #: Category ids handed out before in this session (also of removed categories), so that a new
    #: category never takes the id of a removed one that an undo may bring back.
    _category_id_floor: int = field(default=1, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the lookups (after bulk changes to :attr:`images` or :attr:`annotations`)."""
        self._by_name = {}
        for image in self.images.values():
            self._by_name.setdefault(_name_key(image.file_name), image.id)
        self._by_image = {image_id: [] for image_id in self.images}
        for annotation in self.annotations.values():
            self._by_image.setdefault(annotation.image_id, []).append(annotation.id)
        top = max(self.annotations, default=0)
        self.next_annotation_id = max(self.next_annotation_id, top + 1)

    def snapshot(self) -> Project:
        """A copy for a writer on another thread: the record dicts are copied (records are frozen,
        so sharing them is safe), the lookups are left empty. Cheap: no record is copied and
        nothing is re-indexed, so the editing thread can hand one over on every edit."""
        clone = copy.copy(self)
        clone.images = dict(self.images)
        clone.categories = dict(self.categories)
        clone.annotations = dict(self.annotations)
        clone.info = copy.deepcopy(self.info)
        clone.licenses = copy.deepcopy(self.licenses)
        clone.extra = copy.deepcopy(self.extra)
        clone._by_image = {}
        clone._by_name = {}
        return clone

    # ------------------------------------------------------------------ lookups

    def image(self, image_id: int) -> ImageRecord:
        try:
            return self.images[image_id]
        except KeyError:
            raise KeyError(f"no image with id {image_id}") from None

    def category(self, category_id: int) -> Category:
        try:
            return self.categories[category_id]
        except KeyError:
            raise KeyError(f"no category with id {category_id}") from None

    def annotation(self, annotation_id: int) -> Annotation:
        try:
            return self.annotations[annotation_id]
        except KeyError:
            raise KeyError(f"no annotation with id {annotation_id}") from None

    def category_by_number(self, number: int) -> Category | None:
        """The ``number``-th category (1-based, file order: what number key ``number`` gives),
        or ``None`` when there are fewer."""
        if number < 1 or number > len(self.categories):
            return None
        return list(self.categories.values())[number - 1]

    def category_counts(self) -> dict[int, int]:
        """Annotations per category id (every category present, 0 when unused)."""
        counts = dict.fromkeys(self.categories, 0)
        for annotation in self.annotations.values():
            counts[annotation.category_id] = counts.get(annotation.category_id, 0) + 1
        return counts

    def annotations_for(self, image_id: int) -> list[Annotation]:
        """The image's annotations in drawing order (oldest first)."""
        return [self.annotations[i] for i in self._by_image.get(image_id, [])]

    def iter_annotations(self) -> Iterator[Annotation]:
        return iter(self.annotations.values())

    def image_path(self, image: ImageRecord | int) -> Path:
        """Where the image file is on disk (``file_name`` resolved against :attr:`root`)."""
        record = image if isinstance(image, ImageRecord) else self.image(image)
        path = Path(record.file_name)
        return path if path.is_absolute() else self.root / path

    def image_by_path(self, path: str | os.PathLike[str]) -> ImageRecord | None:
        """The image whose file is ``path`` (compared as normalised relative paths), if any."""
        image_id = self._by_name.get(_name_key(self.relative_name(path)))
        return None if image_id is None else self.images[image_id]

    def relative_name(self, path: str | os.PathLike[str]) -> str:
        """``path`` as it is stored: relative to :attr:`root`, with forward slashes."""
        return relative_to(Path(path), self.root)

    # ------------------------------------------------------------------ id allocation

    def allocate_annotation_id(self) -> int:
        """A fresh id, never handed out before in this project (ids are never reused)."""
        new_id = max(self.next_annotation_id, max(self.annotations, default=0) + 1)
        self.next_annotation_id = new_id + 1
        return new_id

    def next_image_id(self) -> int:
        return max(self.images, default=0) + 1

    def next_category_id(self) -> int:
        return max(max(self.categories, default=0) + 1, self._category_id_floor)

    # ------------------------------------------------------------------ low-level mutations
    # Used by the undo commands; they check consistency but record no history.

    def add_image(self, image: ImageRecord) -> Change:
        if image.id in self.images:
            raise ValueError(f"image id {image.id} already exists")
        self.images[image.id] = image
        self._by_image.setdefault(image.id, [])
        self._by_name.setdefault(_name_key(image.file_name), image.id)
        return Change("image_added", image.id)

    def replace_image(self, image: ImageRecord) -> Change:
        """Swap in a new version of an image record (same id and file)."""
        old = self.image(image.id)
        if (old.file_name, old.shape) != (image.file_name, image.shape):
            raise ValueError("replace_image keeps the file and size of an image")
        self.images[image.id] = image
        return Change("image_changed", image.id, image.id)

    def add_category(self, category: Category) -> Change:
        if category.id in self.categories:
            raise ValueError(f"category id {category.id} already exists")
        self.categories[category.id] = category
        return Change("category_added", category.id)

    def insert_category(self, category: Category, position: int | None = None) -> Change:
        """Add ``category`` at the end, or back at ``position`` in the category order (the index
        :meth:`remove_category` returned), so that an undone delete restores the file order."""
        if position is None:
            return self.add_category(category)
        if category.id in self.categories:
            raise ValueError(f"category id {category.id} already exists")
        items = list(self.categories.items())
        items.insert(position, (category.id, category))
        self.categories = dict(items)
        return Change("category_added", category.id)

    def replace_category(self, category: Category) -> Change:
        """Swap in a new version of an existing category (same id; renamed or recoloured)."""
        self.category(category.id)
        self.categories[category.id] = category
        return Change("category_changed", category.id)

    def remove_category(self, category_id: int) -> tuple[Category, int, Change]:
        """Remove a category that no annotation uses; returns it, its index in the category
        order (for :meth:`insert_category`) and the change."""
        category = self.category(category_id)
        used = self.category_annotation_ids(category_id)
        if used:
            raise ValueError(
                f"category {category_id} ({category.name!r}) still has {len(used)} annotations"
            )
        position = list(self.categories).index(category_id)
        del self.categories[category_id]
        self._category_id_floor = max(self._category_id_floor, category_id + 1)
        return category, position, Change("category_removed", category_id)

    def category_annotation_ids(self, category_id: int) -> list[int]:
        """Ids of the annotations of ``category_id``, in file order."""
        return [a.id for a in self.annotations.values() if a.category_id == category_id]

    def insert_annotation(self, annotation: Annotation, position: Position | None = None) -> Change:
        """Add ``annotation`` at the end, or at ``position`` (from :meth:`remove_annotation`)."""
        if annotation.id in self.annotations:
            raise ValueError(f"annotation id {annotation.id} already exists")
        if annotation.id < 1:
            raise ValueError(f"annotation ids start at 1, got {annotation.id}")
        self._check(annotation)
        per_image = self._by_image.setdefault(annotation.image_id, [])
        if position is None:
            self.annotations[annotation.id] = annotation
            per_image.append(annotation.id)
        else:
            overall, local = position
            items = list(self.annotations.items())
            items.insert(overall, (annotation.id, annotation))
            self.annotations = dict(items)
            per_image.insert(local, annotation.id)
        self.next_annotation_id = max(self.next_annotation_id, annotation.id + 1)
        return Change("annotation_added", annotation.id, annotation.image_id)

    def remove_annotation(self, annotation_id: int) -> tuple[Annotation, Position, Change]:
        annotation = self.annotation(annotation_id)
        overall = list(self.annotations).index(annotation_id)
        per_image = self._by_image[annotation.image_id]
        local = per_image.index(annotation_id)
        del self.annotations[annotation_id]
        del per_image[local]
        change = Change("annotation_removed", annotation_id, annotation.image_id)
        return annotation, (overall, local), change

    def remove_annotations(
        self, annotation_ids: Iterable[int]
    ) -> tuple[list[tuple[Annotation, Position]], list[Change]]:
        """Remove several annotations in one pass (linear in the project size, where one
        :meth:`remove_annotation` per id would be quadratic). Returns each one with its position
        before the removal (for :meth:`insert_annotations`), in file order, and the changes."""
        wanted = list(annotation_ids)
        gone = set(wanted)
        if len(gone) != len(wanted):
            raise ValueError("an annotation id is listed twice")
        for annotation_id in wanted:
            self.annotation(annotation_id)  # KeyError before anything changes
        overall = {i: n for n, i in enumerate(self.annotations) if i in gone}
        local: dict[int, int] = {}
        for image_id in {self.annotations[i].image_id for i in gone}:
            ids = self._by_image[image_id]
            local.update((i, n) for n, i in enumerate(ids) if i in gone)
            self._by_image[image_id] = [i for i in ids if i not in gone]
        removed = [(self.annotations[i], (overall[i], local[i])) for i in overall]
        self.annotations = {i: a for i, a in self.annotations.items() if i not in gone}
        changes = [Change("annotation_removed", a.id, a.image_id) for a, _ in removed]
        return removed, changes

    def insert_annotations(self, entries: Iterable[tuple[Annotation, Position]]) -> list[Change]:
        """Put back what :meth:`remove_annotations` removed, each at its position (one pass)."""
        ordered = sorted(entries, key=lambda entry: entry[1][0])
        ids = [annotation.id for annotation, _ in ordered]
        if len(set(ids)) != len(ids) or any(i in self.annotations for i in ids):
            raise ValueError("an annotation to restore already exists")
        for annotation, _position in ordered:
            if annotation.id < 1:
                raise ValueError(f"annotation ids start at 1, got {annotation.id}")
            self._check(annotation)
        self.annotations = dict(
            _merge(list(self.annotations.items()), [((a.id, a), p[0]) for a, p in ordered])
        )
        by_image: dict[int, list[tuple[int, int]]] = {}
        for annotation, (_overall, position) in ordered:
            by_image.setdefault(annotation.image_id, []).append((annotation.id, position))
        for image_id, restored in by_image.items():
            current = self._by_image.setdefault(image_id, [])
            self._by_image[image_id] = _merge(current, sorted(restored, key=lambda r: r[1]))
        self.next_annotation_id = max(self.next_annotation_id, max(ids, default=0) + 1)
        return [Change("annotation_added", a.id, a.image_id) for a, _ in ordered]

    def replace_annotation(self, annotation: Annotation) -> Change:
        """Swap in a new version of an existing annotation (same id and image)."""
        old = self.annotation(annotation.id)
        if old.image_id != annotation.image_id:
            raise ValueError("an annotation cannot move to another image")
        self._check(annotation)
        self.annotations[annotation.id] = annotation
        return Change("annotation_changed", annotation.id, annotation.image_id)

    def _check(self, annotation: Annotation) -> None:
        image = self.image(annotation.image_id)
        self.category(annotation.category_id)
        if annotation.rle.shape != image.shape:
            raise ValueError(
                f"mask shape {annotation.rle.shape} does not match image {image.id} "
                f"({image.height}x{image.width})"
            )


def _merge(items: list[Any], restored: list[tuple[Any, int]]) -> list[Any]:
    """``items`` with each ``(item, index)`` of ``restored`` (sorted by index) put back so that
    it ends up at ``index``."""
    result: list[Any] = []
    rest = iter(items)
    for item, index in restored:
        while len(result) < index:
            try:
                result.append(next(rest))
            except StopIteration:
                break
        result.append(item)
    result.extend(rest)
    return result


def relative_to(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with forward slashes; absolute if no relative path exists
    (another drive on Windows)."""
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute, os.path.abspath(root))
    except ValueError:
        return Path(absolute).as_posix()
    return PurePath(relative).as_posix()


def rebase(file_name: str, old_root: Path, new_root: Path) -> str:
    """A stored ``file_name`` (relative to ``old_root``) made relative to ``new_root``."""
    if Path(file_name).is_absolute() or _same_dir(old_root, new_root):
        return file_name
    return relative_to(old_root / file_name, new_root)


def _name_key(file_name: str) -> str:
    return os.path.normcase(posixpath.normpath(file_name.replace("\\", "/")))


def _same_dir(a: Path, b: Path) -> bool:
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))
