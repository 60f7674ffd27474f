"""ACSI-style satisfaction index, 0..100.

Per response with (satisfaction, expectation, ideal), each 1..10:
    index = (w_s (satisfaction-1) + w_e (expectation-1) + w_i (ideal-1)) / 9 * 100
with weights normalised to sum 1; the default (equal weights) is the published unweighted form
((s-1) + (e-1) + (i-1)) / 27 * 100. The KPI is the mean over responses.
"""

from __future__ import annotations

from collections.abc import Sequence

from stream.kpi import summary as s

EQUAL = (1.0, 1.0, 1.0)


def response_index(
    satisfaction: int, expectation: int, ideal: int, weights: Sequence[float] = EQUAL
) -> float:
    total = sum(weights)
    points = weights[0] * (satisfaction - 1) + weights[1] * (expectation - 1)
    points += weights[2] * (ideal - 1)
    return points / total / 9 * 100


def contribution(index: float) -> s.Sparse:
    return [s.ACSI_N, 1, s.ACSI_SUM, index]


def acsi(vector: Sequence[float]) -> float | None:
    n = vector[s.ACSI_N]
    return vector[s.ACSI_SUM] / n if n > 0 else None
