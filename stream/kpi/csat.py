"""Customer Satisfaction (CSAT), answers 1..5.

Top-box ratio = share of answers == 5 (the seed documents' definition);
top-2-box ratio = share of answers >= 4 (target about 0.80), with a 95% Wilson interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream.kpi import summary as s
from stream.kpi.intervals import wilson


@dataclass(frozen=True, slots=True)
class Csat:
    top_box_ratio: float
    top2_box_ratio: float
    top2_box_lower: float
    top2_box_upper: float
    responses: int


def contribution(score: int) -> s.Sparse:
    return [s.CSAT + score - 1, 1]


def csat(vector: Sequence[float]) -> Csat | None:
    histogram = vector[s.CSAT : s.CSAT + 5]
    n = int(sum(histogram))
    if n <= 0:
        return None
    top = histogram[4]
    top2 = histogram[3] + histogram[4]
    lower, upper = wilson(top2, n)
    return Csat(top / n, top2 / n, lower, upper, n)
