"""Simple ratios.

Thumbs-up ratio = answers thumbs == true / thumbs answers.
Response ratio = responses / dispatches of the same segment and window (absent without
dispatches; it can exceed 1 when responses arrive for surveys whose dispatch was not seen).
"""

from __future__ import annotations

from collections.abc import Sequence

from stream.kpi import summary as s


def thumbs_contribution(up: bool) -> s.Sparse:
    return [s.THUMBS_N, 1, s.THUMBS_UP, 1] if up else [s.THUMBS_N, 1]


def thumbs_up_ratio(vector: Sequence[float]) -> float | None:
    n = vector[s.THUMBS_N]
    return vector[s.THUMBS_UP] / n if n > 0 else None


def response_ratio(vector: Sequence[float]) -> float | None:
    dispatches = vector[s.DISPATCHES]
    return vector[s.N] / dispatches if dispatches > 0 else None
