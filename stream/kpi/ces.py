"""Customer Effort Score (CES 2.0), answers 1..7 to "the company made it easy to handle my
issue" (higher is better).

CES average = mean of the answers; agree ratio = share of answers >= 5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream.kpi import summary as s


@dataclass(frozen=True, slots=True)
class Ces:
    average: float
    agree_ratio: float
    responses: int


def contribution(score: int) -> s.Sparse:
    return [s.CES + score - 1, 1]


def ces(vector: Sequence[float]) -> Ces | None:
    histogram = vector[s.CES : s.CES + 7]
    n = int(sum(histogram))
    if n <= 0:
        return None
    total = sum((score + 1) * count for score, count in enumerate(histogram))
    agree = sum(histogram[4:7])
    return Ces(total / n, agree / n, n)
