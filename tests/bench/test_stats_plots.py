"""Statistics, the OpenCV charts and the memory probes behind ``bench`` and ``eval``."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from sam2_annotator.bench import memory, plots
from sam2_annotator.bench.plots import Series
from sam2_annotator.bench.stats import distribution, latency_stats, ratio


def test_latency_stats_follow_the_percentile_definition():
    samples = [5.0, 1.0, 4.0, 2.0, 3.0, 100.0]
    stats = latency_stats(samples)
    ordered = sorted(samples)
    # Linear interpolation between closest ranks: rank p/100 * (n - 1).
    assert stats.p50_ms == pytest.approx((ordered[2] + ordered[3]) / 2)
    assert stats.p95_ms == pytest.approx(ordered[4] + 0.75 * (ordered[5] - ordered[4]))
    assert (stats.max_ms, stats.min_ms, stats.count) == (100.0, 1.0, 6)
    assert stats.mean_ms == pytest.approx(sum(samples) / 6)
    with pytest.raises(ValueError):
        latency_stats([])


def test_distribution_quartiles_and_ratio():
    values = [0.0, 0.25, 0.5, 0.75, 1.0]
    dist = distribution(values)
    assert dist is not None
    assert (dist.q1, dist.median, dist.q3) == (0.25, 0.5, 0.75)
    assert distribution([]) is None
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None and ratio(1.0, 0.0) is None


@pytest.mark.parametrize(("low", "high"), [(0, 1), (0, 37.2), (12.5, 13.1), (0, 2400)])
def test_nice_ticks_cover_the_range_with_round_steps(low, high):
    ticks = plots.nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])
    mantissa = steps[0] / 10 ** np.floor(np.log10(steps[0]))
    assert round(mantissa, 6) in (1.0, 2.0, 5.0)
    assert 3 <= len(ticks) <= 12


def _column_heights(image: np.ndarray, bgr: tuple[int, int, int]) -> list[int]:
    """Pixel height of each run of columns painted in ``bgr`` (one run per bar)."""
    hits = np.all(image == np.array(bgr, np.uint8), axis=2)
    hits[: plots.MARGIN_TOP] = False  # the legend swatch
    per_column = hits.sum(axis=0)
    heights, current = [], 0
    for count in per_column:
        if count:
            current = max(current, int(count))
        elif current:
            heights.append(current)
            current = 0
    return heights


def test_bar_heights_are_proportional_to_values():
    image = plots.bar_chart(["a", "b", "c"], [Series("s", [10.0, 20.0, 40.0])], "t", "ms")
    heights = _column_heights(image, plots.color(0))
    assert len(heights) == 3
    assert heights[1] / heights[0] == pytest.approx(2.0, rel=0.05)
    assert heights[2] / heights[0] == pytest.approx(4.0, rel=0.05)


def test_box_plot_puts_the_median_where_the_axis_says():
    values = list(np.linspace(0.2, 0.6, 41))  # median 0.4, quartiles 0.3 / 0.5
    image = plots.box_plot(["x"], [values], "t", "IoU", (0.0, 1.0))
    fill = np.all(image == np.array(plots.color(0), np.uint8), axis=2)
    rows = np.flatnonzero(fill.any(axis=1))
    axes = plots.Axes(plots.DEFAULT_SIZE, 0.0, 1.0, 0.0, 1.0)
    assert rows.min() == pytest.approx(axes.y(0.5), abs=2)
    assert rows.max() == pytest.approx(axes.y(0.3), abs=2)
    # The median line (black, 2 px) splits the box at 0.4 (off-centre: the mean marker is there).
    column = int(np.flatnonzero(fill.any(axis=0)).min()) + 2
    black = np.flatnonzero(np.all(image[:, column] == 0, axis=1))
    assert any(abs(r - axes.y(0.4)) <= 1 for r in black)


def test_line_chart_and_png_round_trip(tmp_path):
    trace = [10.0, 12.0, 11.0, 30.0, 10.5]
    image = plots.vstack(
        [
            plots.line_chart([Series("a", trace), Series("b", [5.0] * 5)], "t", "run", "ms"),
            plots.line_chart([Series("c", [1.0])], "single point", "run", "ms", size=(400, 200)),
        ]
    )
    path = plots.save_png(tmp_path / "trace.png", image)
    back = cv2.imread(str(path))
    assert back.shape == (plots.DEFAULT_SIZE[1] + 200, plots.DEFAULT_SIZE[0], 3)
    assert np.any(np.all(back == np.array(plots.color(0), np.uint8), axis=2))
    assert path.stat().st_size < 300_000


@pytest.mark.skipif(sys.platform == "win32", reason="no resource module on Windows")
def test_memory_probes_see_a_large_allocation():
    before = memory.current_rss_mb()
    block = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched
    during = memory.current_rss_mb()
    peak = memory.peak_rss_mb()
    if before is None or during is None:  # no /proc: only the peak is measurable
        assert peak is not None and peak > 0
        return
    assert during - before > 50
    assert peak >= during - 1
    del block
