"""Summaries of repeated measurements: medians with their range, ratios, the growth exponent."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Summary", "power_law_exponent", "ratio", "summarise"]


@dataclass(frozen=True)
class Summary:
    """The median of some repetitions and their range."""

    median: float
    low: float
    high: float
    count: int


def summarise(values: Sequence[float | None]) -> Summary | None:
    """The median, min and max of the values that exist (``None`` when none does)."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return Summary(statistics.median(present), min(present), max(present), len(present))


def ratio(value: Summary | None, reference: Summary | None) -> float | None:
    """``value / reference`` of the medians, when both exist."""
    if value is None or reference is None or reference.median == 0:
        return None
    return value.median / reference.median


def power_law_exponent(points: Sequence[tuple[float, float]]) -> float | None:
    """The exponent b of t(N) ~ N^b, least squares on log t against log N (two points at least)."""
    usable = [(math.log(n), math.log(t)) for n, t in points if n > 0 and t > 0]
    if len(usable) < 2:
        return None
    mean_x = sum(x for x, _ in usable) / len(usable)
    mean_y = sum(y for _, y in usable) / len(usable)
    spread = sum((x - mean_x) ** 2 for x, _ in usable)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in usable) / spread
