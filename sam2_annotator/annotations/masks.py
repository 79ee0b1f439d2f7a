"""Binary masks <-> COCO segmentations (RLE and polygons).

Masks are ``numpy`` bool arrays of shape ``(H, W)``. Internally every annotation keeps its mask as
pycocotools' compressed RLE (:class:`Rle`): exact, small, and what the project file stores.

Polygons follow pycocotools' geometry, where pixel ``(x, y)`` is the unit square
``[x, x+1] x [y, y+1]``. :func:`mask_to_polygons` traces the *pixel edges* (not the pixel centres
``cv2.findContours`` returns), so rasterising the polygons of a hole-free mask with pycocotools
gives the mask back exactly; a one-pixel object becomes a unit square instead of a degenerate
point. The trick: upsample the mask 2x (each pixel becomes a 2x2 block), trace that, and map an
upsampled index ``k`` to the pixel corner ``ceil(k / 2)`` (even = left/top half of a pixel ->
its left/top edge, odd = right/bottom half -> its right/bottom edge).

COCO polygons cannot express holes (loaders union all parts), so a mask with holes is reported
by :class:`Polygons` and callers decide whether to keep it as RLE.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
from pycocotools import mask as mask_utils

log = logging.getLogger(__name__)

#: pycocotools keeps run lengths in 32-bit unsigned ints, so an image may have at most this many
#: pixels for its RLE to be valid.
MAX_PIXELS = 2**32 - 1

#: Characters of pycocotools' compressed counts string: 6-bit groups offset by 48 ("0").
_RLE_CHAR_MIN, _RLE_CHAR_MAX = 48, 48 + 63
#: A single run length needs at most 7 groups of 5 bits (35 bits > 32).
_RLE_MAX_GROUPS = 7


class SegmentationError(ValueError):
    """A COCO segmentation that cannot be turned into a mask (message says why)."""


@dataclass(frozen=True)
class Rle:
    """A mask as pycocotools' compressed run-length encoding (column-major runs)."""

    height: int
    width: int
    counts: bytes

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    def as_pycocotools(self) -> dict[str, object]:
        """The dict pycocotools' C functions take (``counts`` as bytes)."""
        return {"size": [self.height, self.width], "counts": self.counts}

    def to_coco(self) -> dict[str, object]:
        """The JSON form: ``{"size": [h, w], "counts": "<ascii>"}``."""
        return {"size": [self.height, self.width], "counts": self.counts.decode("ascii")}

    def decode(self) -> np.ndarray:
        """The mask as a C-contiguous bool array ``(H, W)``."""
        return np.ascontiguousarray(mask_utils.decode(self.as_pycocotools()), dtype=bool)

    # area and bbox are cached: records are immutable and autosave writes them on every edit.
    @cached_property
    def area(self) -> int:
        return int(mask_utils.area(self.as_pycocotools()))

    @cached_property
    def bbox(self) -> tuple[float, float, float, float]:
        """``x, y, width, height`` of the tight box around the mask (zeros when empty)."""
        box = mask_utils.toBbox(self.as_pycocotools())
        return float(box[0]), float(box[1]), float(box[2]), float(box[3])


@dataclass(frozen=True)
class Polygons:
    """A mask traced as COCO polygons.

    ``parts`` holds one flat ``[x0, y0, x1, y1, ...]`` list per connected part (outer boundary
    only). ``holes`` counts the holes those outer boundaries do not express; when it is non-zero
    the polygons describe the mask with its holes filled.
    """

    parts: list[list[int]]
    holes: int


# --------------------------------------------------------------------------- masks and RLE


def as_mask(mask: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Check that ``mask`` is a 2-D binary array (of ``shape`` if given) and return it as bool."""
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"a mask must be 2-D (H, W), got shape {array.shape}")
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"mask shape {array.shape} does not match the image {tuple(shape)}")
    if array.dtype != bool:
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise ValueError(f"a mask must be bool or 0/1 numbers, got dtype {array.dtype}")
        if array.size and not np.isin(array, (0, 1)).all():
            raise ValueError("a mask must contain only 0 and 1 (or be bool)")
        array = array.astype(bool)
    if array.size == 0:
        raise ValueError(f"a mask must not be empty, got shape {array.shape}")
    return array


def mask_to_rle(mask: np.ndarray) -> Rle:
    """Encode a bool mask ``(H, W)`` exactly."""
    array = as_mask(mask)
    height, width = array.shape
    encoded = mask_utils.encode(np.asfortranarray(array, dtype=np.uint8))
    return Rle(height, width, bytes(encoded["counts"]))


def empty_rle(height: int, width: int) -> Rle:
    """The RLE of an all-false mask, without allocating the mask."""
    return rle_from_counts([height * width], height, width)


def decode_counts_string(counts: str) -> np.ndarray:
    """Run lengths (int64) from pycocotools' compressed counts string; vectorised.

    Every run is a little-endian series of 5-bit groups, one character each (value + 48), bit
    0x20 marking "more groups follow" and bit 0x10 of the last group the sign. From the fourth
    run on, the value is a difference to the run two places back.
    """
    try:
        raw = np.frombuffer(counts.encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError as exc:
        raise SegmentationError(f"RLE counts has a non-ASCII character at {exc.start}") from exc
    if raw.size == 0:
        return np.zeros(0, np.int64)
    bad = (raw < _RLE_CHAR_MIN) | (raw > _RLE_CHAR_MAX)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        raise SegmentationError(
            f"RLE counts has an invalid character {counts[position]!r} at {position}"
        )
    groups = raw.astype(np.int64) - _RLE_CHAR_MIN
    last = (groups & 0x20) == 0
    if not last[-1]:
        raise SegmentationError("RLE counts string is truncated (last run unfinished)")
    ends = np.flatnonzero(last)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > _RLE_MAX_GROUPS:
        raise SegmentationError("RLE counts string holds a run too long for 32 bits")
    run_index = np.repeat(np.arange(len(ends)), lengths)
    shift = 5 * (np.arange(raw.size) - starts[run_index])
    values = np.zeros(len(ends), np.int64)
    np.add.at(values, run_index, (groups & 0x1F) << shift)
    negative = (groups[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * lengths[negative])
    runs = values.copy()
    # run[m] += run[m - 2] for m > 2: cumulative sums over the odd runs and over runs 2, 4, ...
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs


def check_runs(runs: Sequence[int] | np.ndarray, height: int, width: int) -> None:
    """Raise :class:`SegmentationError` unless ``runs`` are non-negative and cover the image.

    pycocotools' decoder writes runs without bounds checks, so this must pass before decoding.
    """
    try:
        array = np.asarray(runs, dtype=np.int64)
    except OverflowError as exc:
        raise SegmentationError("RLE counts has a run length too large for the image") from exc
    if array.size and array.min() < 0:
        raise SegmentationError("RLE counts has a negative run length")
    if array.size and array.max() > height * width:  # also keeps the int64 sum from wrapping
        raise SegmentationError("RLE counts has a run longer than the whole mask")
    total = int(array.sum())
    if total != height * width:
        raise SegmentationError(
            f"RLE counts cover {total} pixels but the mask has {height}x{width} = {height * width}"
        )


def rle_from_counts(counts: Sequence[int], height: int, width: int) -> Rle:
    """Compress COCO's uncompressed RLE (a list of run lengths, column-major) after checking it."""
    check_runs(counts, height, width)
    encoded = mask_utils.frPyObjects(
        {"size": [height, width], "counts": [int(c) for c in counts]}, height, width
    )
    return Rle(height, width, bytes(encoded["counts"]))


def rle_from_string(counts: str, height: int, width: int) -> Rle:
    """Wrap a compressed counts string after checking that it decodes to exactly H*W pixels."""
    check_runs(decode_counts_string(counts), height, width)
    return Rle(height, width, counts.encode("ascii"))


def rle_from_polygons(parts: Sequence[Sequence[float]], height: int, width: int) -> Rle:
    """Rasterise COCO polygons (the union of all parts) like every COCO loader does.

    Each part needs at least three points. pycocotools reads a first part of exactly four
    numbers as a *box*, so short parts are refused here rather than misread.
    """
    for index, part in enumerate(parts):
        if len(part) < 6 or len(part) % 2:
            raise SegmentationError(
                f"polygon {index} has {len(part)} coordinates; needs an even number >= 6"
            )
    if not parts:
        return empty_rle(height, width)
    clipped = [_clip_polygon([float(v) for v in part], height, width) for part in parts]
    usable = [part for part in clipped if len(part) >= 6]
    if not usable:
        return empty_rle(height, width)
    pieces = mask_utils.frPyObjects(usable, height, width)
    merged = mask_utils.merge(pieces, intersect=False)
    return Rle(height, width, bytes(merged["counts"]))


def rle_from_bbox(bbox: Sequence[float], height: int, width: int) -> Rle:
    """The mask of a COCO box ``x, y, w, h`` (pixels whose squares it covers, clipped)."""
    x, y, w, h = (float(v) for v in bbox)
    x0, x1 = np.clip([x, x + w], 0, width)
    y0, y1 = np.clip([y, y + h], 0, height)
    box = np.asarray([[x0, y0, x1 - x0, y1 - y0]], dtype=np.float64)
    encoded = mask_utils.frPyObjects(box, height, width)[0]
    return Rle(height, width, bytes(encoded["counts"]))


def _clip_polygon(coords: list[float], height: int, width: int) -> list[float]:
    """Clip a polygon to a margin around the image (Sutherland-Hodgman).

    pycocotools rasterises along every edge at 5x resolution, so a coordinate like 1e20 in an
    imported file would exhaust memory. Clipping to a rectangle that contains the image changes
    nothing inside the image. Polygons already inside are returned as they are.
    """
    low_x, low_y, high_x, high_y = -1.0, -1.0, width + 1.0, height + 1.0
    xs, ys = coords[0::2], coords[1::2]
    if min(xs) >= low_x and min(ys) >= low_y and max(xs) <= high_x and max(ys) <= high_y:
        return coords
    points = list(zip(xs, ys, strict=True))
    for axis, limit, keep_below in (
        (0, low_x, False),
        (0, high_x, True),
        (1, low_y, False),
        (1, high_y, True),
    ):
        points = _clip_half_plane(points, axis, limit, keep_below)
        if not points:
            return []
    return [v for point in points for v in point]


def _clip_half_plane(
    points: list[tuple[float, float]], axis: int, limit: float, keep_below: bool
) -> list[tuple[float, float]]:
    def inside(p: tuple[float, float]) -> bool:
        return p[axis] <= limit if keep_below else p[axis] >= limit

    result: list[tuple[float, float]] = []
    for index, current in enumerate(points):
        previous = points[index - 1]
        if inside(current) != inside(previous):
            t = (limit - previous[axis]) / (current[axis] - previous[axis])
            crossing = [
                previous[0] + t * (current[0] - previous[0]),
                previous[1] + t * (current[1] - previous[1]),
            ]
            crossing[axis] = limit
            result.append((crossing[0], crossing[1]))
        if inside(current):
            result.append(current)
    return result


# --------------------------------------------------------------------------- polygons


def mask_to_polygons(mask: np.ndarray) -> Polygons:
    """Trace the outer pixel-edge boundary of every 8-connected part of ``mask``.

    Exact for masks without holes: ``rle_from_polygons(mask_to_polygons(m).parts) == m``.
    Parts that touch only at a corner come back as one figure-eight polygon, which pycocotools
    rasterises correctly. ``holes`` counts the enclosed background regions that are lost.
    """
    array = as_mask(mask)
    upsampled = np.repeat(np.repeat(array.view(np.uint8), 2, axis=0), 2, axis=1)
    padded = np.pad(upsampled, 1)  # findContours needs background around border-touching parts
    contours, hierarchy = cv2.findContours(padded, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return Polygons(parts=[], holes=0)
    parts: list[list[int]] = []
    holes = 0
    for contour, (_next, _previous, _child, parent) in zip(contours, hierarchy[0], strict=True):
        if parent != -1:
            holes += 1
            continue
        points = contour[:, 0, :].astype(np.int64) - 1  # undo the padding
        corners = (points + (points & 1)) // 2
        parts.append(_simplify(corners).ravel().tolist())
    return Polygons(parts=parts, holes=holes)


def _simplify(points: np.ndarray) -> np.ndarray:
    """Drop repeated points and points in the middle of a straight (axis-parallel) run."""
    distinct = points[np.any(points != np.roll(points, 1, axis=0), axis=1)]
    if len(distinct) < 3:
        return distinct
    before = np.roll(distinct, 1, axis=0)
    after = np.roll(distinct, -1, axis=0)
    cross = (distinct[:, 0] - before[:, 0]) * (after[:, 1] - distinct[:, 1]) - (
        distinct[:, 1] - before[:, 1]
    ) * (after[:, 0] - distinct[:, 0])
    same_direction = ((distinct - before) * (after - distinct)).sum(axis=1) > 0
    keep = ~((cross == 0) & same_direction)
    return distinct[keep]


def polygons_to_mask(parts: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Rasterise polygons to a bool mask, the way pycocotools' ``annToMask`` does."""
    return rle_from_polygons(parts, height, width).decode()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks; 1.0 when both are empty."""
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)
