"""Customer Satisfaction Index, CSI = sum_j w_j (perceived_j - expected_j).

Per response, over the attributes j it rated (perceived and expected, 1..10). Weights w_j come
from configuration; with none configured every rated attribute weighs the same. The weights a
response uses are normalised to sum 1 over the weighted attributes it rated, so a response's CSI
lies in [-9, 9] and a partially answered survey is not penalised. Attributes with no configured
weight are ignored when weights are configured. The KPI is the mean over responses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stream.kpi import summary as s


def response_csi(
    ratings: Mapping[str, tuple[int, int]], weights: Mapping[str, float] | None = None
) -> float | None:
    """CSI of one response from {attribute: (perceived, expected)}; None if nothing counts."""
    if weights:
        used = {name: weights[name] for name in ratings if weights.get(name, 0) > 0}
    else:
        used = dict.fromkeys(ratings, 1.0)
    total = sum(used.values())
    if total <= 0:
        return None
    return sum(w * (ratings[name][0] - ratings[name][1]) for name, w in used.items()) / total


def contribution(value: float) -> s.Sparse:
    return [s.CSI_N, 1, s.CSI_SUM, value]


def csi(vector: Sequence[float]) -> float | None:
    n = vector[s.CSI_N]
    return vector[s.CSI_SUM] / n if n > 0 else None
