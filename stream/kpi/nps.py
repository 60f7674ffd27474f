"""Net Promoter Score.

Answers 0..10 to "How likely are you to recommend us?": promoters 9-10, passives 7-8,
detractors 0-6. NPS = 100 * (promoters - detractors) / n, in [-100, 100]; target >= 50.
Interval: adjusted Wald (see intervals.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream.kpi import summary as s
from stream.kpi.intervals import nps_adjusted_wald


@dataclass(frozen=True, slots=True)
class Nps:
    value: float
    lower: float
    upper: float
    responses: int
    promoters: int
    passives: int
    detractors: int


DETRACTOR_MAX = 6  # answers 0..6 are detractors


def is_detractor(score: int) -> bool:
    return score <= DETRACTOR_MAX


def contribution(score: int) -> s.Sparse:
    return [s.NPS + score, 1]


def nps(vector: Sequence[float]) -> Nps | None:
    histogram = vector[s.NPS : s.NPS + 11]
    n = int(sum(histogram))
    if n <= 0:
        return None
    detractors = int(sum(histogram[0:7]))
    passives = int(sum(histogram[7:9]))
    promoters = int(sum(histogram[9:11]))
    lower, upper = nps_adjusted_wald(promoters, detractors, n)
    value = 100 * (promoters - detractors) / n
    return Nps(value, lower, upper, n, promoters, passives, detractors)
