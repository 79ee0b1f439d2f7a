"""Small PNG charts drawn with OpenCV (a runtime dependency), so plotting adds no package.

Three kinds, the ones section 4 of the paper uses: a per-run latency trace (line chart), grouped
bars (latency per image / per number of points), and box plots (IoU distributions). Each
function returns a BGR ``uint8`` image; :func:`save_png` writes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sam2_annotator.errors import UserError

Color = tuple[int, int, int]  # BGR

WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)
GRID: Color = (228, 228, 228)
AXIS: Color = (90, 90, 90)
#: Colour-blind friendly categorical colours (Okabe-Ito), in BGR.
PALETTE: tuple[Color, ...] = (
    (178, 114, 0),
    (0, 159, 230),
    (115, 158, 0),
    (167, 121, 204),
    (0, 94, 213),
    (233, 180, 86),
    (66, 228, 240),
)
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.45
TITLE_SCALE = 0.6
#: Plot area margins in pixels: left (tick labels + axis title), top (title + legend), right,
#: bottom (category labels + axis title).
MARGIN_LEFT, MARGIN_TOP, MARGIN_RIGHT, MARGIN_BOTTOM = 78, 52, 20, 58
DEFAULT_SIZE = (960, 420)  # width, height


@dataclass(frozen=True)
class Series:
    """One named line or bar colour; ``values`` in chart units (NaN = no value)."""

    name: str
    values: Sequence[float]


def color(index: int) -> Color:
    return PALETTE[index % len(PALETTE)]


# --------------------------------------------------------------------------- axes


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]``: steps of 1, 2 or 5 times a power of ten."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"tick range must be finite, got {low}..{high}")
    if high <= low:
        high = low + 1.0
    raw_step = (high - low) / max(target, 1)
    power = 10.0 ** math.floor(math.log10(raw_step))
    step = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw_step)
    first = math.floor(low / step + 1e-9) * step
    count = math.ceil((high - first) / step - 1e-9)
    return [round(first + i * step, 10) for i in range(count + 1)]


def _format_tick(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:.{decimals}f}"


class Axes:
    """A white canvas with one plot area; maps data values to pixel rows and columns."""

    def __init__(
        self, size: tuple[int, int], y_low: float, y_high: float, x_low: float, x_high: float
    ) -> None:
        width, height = size
        self.image = np.full((height, width, 3), 255, np.uint8)
        self.left, self.top = MARGIN_LEFT, MARGIN_TOP
        self.right, self.bottom = width - MARGIN_RIGHT, height - MARGIN_BOTTOM
        self.ticks = nice_ticks(y_low, y_high)
        self.y_low, self.y_high = self.ticks[0], self.ticks[-1]
        self.x_low, self.x_high = x_low, x_high if x_high > x_low else x_low + 1.0

    def y(self, value: float) -> int:
        frac = (float(value) - self.y_low) / (self.y_high - self.y_low)
        return round(self.bottom - frac * (self.bottom - self.top))

    def x(self, value: float) -> int:
        frac = (float(value) - self.x_low) / (self.x_high - self.x_low)
        return round(self.left + frac * (self.right - self.left))

    def frame(self, title: str, y_label: str, x_label: str = "") -> None:
        step = self.ticks[1] - self.ticks[0] if len(self.ticks) > 1 else 1.0
        for tick in self.ticks:
            row = self.y(tick)
            cv2.line(self.image, (self.left, row), (self.right, row), GRID, 1)
            label = _format_tick(tick, step)
            (tw, th), _ = cv2.getTextSize(label, FONT, FONT_SCALE, 1)
            put_text(self.image, label, (self.left - 8 - tw, row + th // 2), FONT_SCALE, AXIS)
        cv2.line(self.image, (self.left, self.top), (self.left, self.bottom), AXIS, 1)
        cv2.line(self.image, (self.left, self.bottom), (self.right, self.bottom), AXIS, 1)
        put_text(self.image, title, (self.left, 24), TITLE_SCALE, BLACK, thickness=2)
        _vertical_text(self.image, y_label, 6, (self.top + self.bottom) // 2)
        if x_label:
            (tw, _), _ = cv2.getTextSize(x_label, FONT, FONT_SCALE, 1)
            centre = (self.left + self.right) // 2
            put_text(
                self.image, x_label, (centre - tw // 2, self.image.shape[0] - 10), FONT_SCALE, AXIS
            )

    def legend(self, names: Sequence[str]) -> None:
        """Colour swatches and names in one row under the title, right-aligned."""
        x = self.right
        for index in reversed(range(len(names))):
            (tw, th), _ = cv2.getTextSize(names[index], FONT, FONT_SCALE, 1)
            x -= tw
            put_text(self.image, names[index], (x, 42), FONT_SCALE, BLACK)
            x -= 16
            cv2.rectangle(self.image, (x, 42 - th), (x + 10, 42), color(index), -1)
            x -= 18

    def category_label(self, text: str, centre: int, max_width: int) -> None:
        scale = FONT_SCALE
        (tw, _), _ = cv2.getTextSize(text, FONT, scale, 1)
        if tw > max_width > 0:
            scale *= max_width / tw
            (tw, _), _ = cv2.getTextSize(text, FONT, scale, 1)
        put_text(self.image, text, (centre - tw // 2, self.bottom + 20), scale, BLACK)


def put_text(
    image: np.ndarray,
    text: str,
    origin: tuple[int, int],
    scale: float = FONT_SCALE,
    fg: Color = BLACK,
    thickness: int = 1,
) -> None:
    """ASCII text (Hershey fonts have no other glyphs) at ``origin`` (bottom-left)."""
    ascii_text = text.encode("ascii", "replace").decode("ascii")
    cv2.putText(image, ascii_text, origin, FONT, scale, fg, thickness, cv2.LINE_AA)


def _vertical_text(image: np.ndarray, text: str, x: int, centre_y: int) -> None:
    """Text rotated 90 degrees counter-clockwise, left edge at ``x``, centred on ``centre_y``."""
    if not text:
        return
    (tw, th), baseline = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    strip = np.full((th + baseline + 4, tw + 4, 3), 255, np.uint8)
    put_text(strip, text, (2, th + 2), FONT_SCALE, AXIS)
    rotated = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)
    h, w = rotated.shape[:2]
    top = max(0, centre_y - h // 2)
    h = min(h, image.shape[0] - top)
    image[top : top + h, x : x + w] = rotated[:h]


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, np.float64)
    return array[np.isfinite(array)]


def _value_range(arrays: Sequence[np.ndarray], floor_zero: bool) -> tuple[float, float]:
    data = [a for a in arrays if a.size]
    if not data:
        return 0.0, 1.0
    low = 0.0 if floor_zero else min(float(a.min()) for a in data)
    high = max(float(a.max()) for a in data)
    pad = 0.05 * (high - low) if high > low else 1.0
    return (low if floor_zero else low - pad), high + pad


# --------------------------------------------------------------------------- charts


def line_chart(
    series: Sequence[Series],
    title: str,
    x_label: str,
    y_label: str,
    size: tuple[int, int] = DEFAULT_SIZE,
) -> np.ndarray:
    """One polyline per series against the run index (0, 1, 2, ...)."""
    arrays = [np.asarray(s.values, np.float64) for s in series]
    low, high = _value_range([_finite(a) for a in arrays], floor_zero=True)
    longest = max((a.size for a in arrays), default=1)
    axes = Axes(size, low, high, 0.0, float(max(longest - 1, 1)))
    axes.frame(title, y_label, x_label)
    for index, values in enumerate(arrays):
        points = [(axes.x(i), axes.y(v)) for i, v in enumerate(values) if math.isfinite(v)]
        if len(points) == 1:
            cv2.circle(axes.image, points[0], 2, color(index), -1, cv2.LINE_AA)
        elif points:
            polyline = np.array(points, np.int32).reshape(-1, 1, 2)
            cv2.polylines(axes.image, [polyline], False, color(index), 1, cv2.LINE_AA)
    _x_ticks(axes, longest)
    axes.legend([s.name for s in series])
    return axes.image


def _x_ticks(axes: Axes, count: int) -> None:
    for tick in nice_ticks(0, max(count - 1, 1), target=8):
        if tick > axes.x_high:
            break
        column = axes.x(tick)
        cv2.line(axes.image, (column, axes.bottom), (column, axes.bottom + 4), AXIS, 1)
        label = f"{tick:g}"
        (tw, _), _ = cv2.getTextSize(label, FONT, FONT_SCALE, 1)
        put_text(axes.image, label, (column - tw // 2, axes.bottom + 18), FONT_SCALE, AXIS)


def bar_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    title: str,
    y_label: str,
    value_format: str = "{:.1f}",
    size: tuple[int, int] = DEFAULT_SIZE,
) -> np.ndarray:
    """Grouped bars: one group per category, one bar per series, value written on top."""
    for s in series:
        if len(s.values) != len(categories):
            raise ValueError(
                f"series {s.name!r} has {len(s.values)} values for {len(categories)} categories"
            )
    low, high = _value_range([_finite(s.values) for s in series], floor_zero=True)
    axes = Axes(size, low, high * 1.08, 0.0, float(max(len(categories), 1)))
    axes.frame(title, y_label)
    group_width = (axes.right - axes.left) / max(len(categories), 1)
    bar_width = max(2, int(group_width * 0.8 / max(len(series), 1)))
    for group, name in enumerate(categories):
        start = axes.left + group * group_width + group_width * 0.1
        for index, s in enumerate(series):
            value = float(s.values[group])
            if not math.isfinite(value):
                continue
            x0 = int(start + index * bar_width)
            top = axes.y(value)
            cv2.rectangle(
                axes.image, (x0, top), (x0 + bar_width - 2, axes.bottom - 1), color(index), -1
            )
            label = value_format.format(value)
            (tw, _), _ = cv2.getTextSize(label, FONT, FONT_SCALE * 0.9, 1)
            put_text(
                axes.image,
                label,
                (x0 + (bar_width - 2 - tw) // 2, top - 4),
                FONT_SCALE * 0.9,
                BLACK,
            )
        axes.category_label(name, int(start + group_width * 0.4), int(group_width * 0.95))
    axes.legend([s.name for s in series])
    return axes.image


@dataclass(frozen=True)
class BoxStats:
    """Tukey box: quartiles, whiskers at the furthest data within 1.5 IQR, outliers beyond."""

    q1: float
    median: float
    q3: float
    low_whisker: float
    high_whisker: float
    mean: float
    outliers: tuple[float, ...]


def box_stats(values: Sequence[float]) -> BoxStats | None:
    array = _finite(values)
    if array.size == 0:
        return None
    q1, median, q3 = (float(v) for v in np.percentile(array, [25, 50, 75]))
    reach = 1.5 * (q3 - q1)
    inside = array[(array >= q1 - reach) & (array <= q3 + reach)]
    outliers = array[(array < q1 - reach) | (array > q3 + reach)]
    return BoxStats(
        q1,
        median,
        q3,
        float(inside.min()),
        float(inside.max()),
        float(array.mean()),
        tuple(float(v) for v in outliers),
    )


def box_plot(
    categories: Sequence[str],
    data: Sequence[Sequence[float]],
    title: str,
    y_label: str,
    y_range: tuple[float, float] | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
) -> np.ndarray:
    """One box per category (median line, mean as a white diamond, outliers as dots)."""
    if len(categories) != len(data):
        raise ValueError(f"{len(categories)} categories but {len(data)} data sets")
    if y_range is None:
        y_range = _value_range([_finite(d) for d in data], floor_zero=False)
    axes = Axes(size, y_range[0], y_range[1], 0.0, float(max(len(categories), 1)))
    axes.frame(title, y_label)
    slot = (axes.right - axes.left) / max(len(categories), 1)
    half = max(3, int(slot * 0.25))
    for index, (name, values) in enumerate(zip(categories, data, strict=True)):
        centre = int(axes.left + (index + 0.5) * slot)
        axes.category_label(name, centre, int(slot * 0.95))
        stats = box_stats(values)
        if stats is None:
            put_text(axes.image, "no data", (centre - 25, axes.bottom - 10), FONT_SCALE, AXIS)
            continue
        _draw_box(axes, stats, centre, half, color(index))
    return axes.image


def _draw_box(axes: Axes, stats: BoxStats, centre: int, half: int, fill: Color) -> None:
    image = axes.image
    top, bottom = axes.y(stats.q3), axes.y(stats.q1)
    cv2.line(image, (centre, axes.y(stats.high_whisker)), (centre, top), AXIS, 1)
    cv2.line(image, (centre, bottom), (centre, axes.y(stats.low_whisker)), AXIS, 1)
    for whisker in (stats.low_whisker, stats.high_whisker):
        row = axes.y(whisker)
        cv2.line(image, (centre - half // 2, row), (centre + half // 2, row), AXIS, 1)
    cv2.rectangle(image, (centre - half, top), (centre + half, bottom), fill, -1)
    cv2.rectangle(image, (centre - half, top), (centre + half, bottom), AXIS, 1)
    median = axes.y(stats.median)
    cv2.line(image, (centre - half, median), (centre + half, median), BLACK, 2)
    mean = axes.y(stats.mean)
    diamond = np.array(
        [(centre, mean - 4), (centre + 4, mean), (centre, mean + 4), (centre - 4, mean)], np.int32
    )
    cv2.fillPoly(image, [diamond], WHITE)
    cv2.polylines(image, [diamond], True, BLACK, 1, cv2.LINE_AA)
    for value in stats.outliers:
        cv2.circle(image, (centre, axes.y(value)), 2, AXIS, 1, cv2.LINE_AA)


# --------------------------------------------------------------------------- output


def vstack(images: Sequence[np.ndarray]) -> np.ndarray:
    """Panels on top of each other (padded to the widest with white)."""
    width = max(image.shape[1] for image in images)
    padded = [
        np.pad(image, ((0, 0), (0, width - image.shape[1]), (0, 0)), constant_values=255)
        for image in images
    ]
    return np.concatenate(padded, axis=0)


def save_png(path: Path, image: np.ndarray) -> Path:
    """Write ``image`` as a maximally compressed PNG; UserError when the file cannot be written."""
    path = Path(path)
    ok = cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise UserError(f"cannot write the plot {path}")
    return path
