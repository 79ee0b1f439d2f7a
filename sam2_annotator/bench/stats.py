"""Summary statistics of latency samples and IoU values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Percentiles of a list of durations in milliseconds (numpy's linear interpolation)."""

    count: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    mean_ms: float
    min_ms: float

    def to_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def latency_stats(samples_ms: Sequence[float]) -> LatencyStats:
    """Summarise ``samples_ms``; raises ValueError for an empty list (a bug in the caller)."""
    values = np.asarray(samples_ms, np.float64)
    if values.size == 0:
        raise ValueError("no latency samples to summarise")
    p50, p95 = np.percentile(values, [50, 95])
    return LatencyStats(
        count=int(values.size),
        p50_ms=float(p50),
        p95_ms=float(p95),
        max_ms=float(values.max()),
        mean_ms=float(values.mean()),
        min_ms=float(values.min()),
    )


@dataclass(frozen=True)
class Distribution:
    """What a box plot shows: quartiles, whiskers at min/max, and the mean."""

    count: int
    mean: float
    median: float
    q1: float
    q3: float
    min: float
    max: float

    def to_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def distribution(values: Sequence[float]) -> Distribution | None:
    """Quartiles of ``values``; None when there are none (e.g. no annotation was usable)."""
    array = np.asarray(values, np.float64)
    if array.size == 0:
        return None
    q1, median, q3 = np.percentile(array, [25, 50, 75])
    return Distribution(
        count=int(array.size),
        mean=float(array.mean()),
        median=float(median),
        q1=float(q1),
        q3=float(q3),
        min=float(array.min()),
        max=float(array.max()),
    )


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` rounded to 3 places, or None when either is missing or 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 3)
