"""Secure Customer Index (SCI).

Per customer with answers in the window: the mean of its normalised answers nps/10,
(csat-1)/4 and (ces-1)/6 (each in [0, 1]). Bands (seed documents): secure >= 0.9,
neutral 0.7..0.9, at_risk < 0.7. Secure ratio = secure customers / customers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

BANDS = ("secure", "neutral", "at_risk")


def normalised_answers(nps: int | None, csat: int | None, ces: int | None) -> list[float]:
    values = []
    if nps is not None:
        values.append(nps / 10)
    if csat is not None:
        values.append((csat - 1) / 4)
    if ces is not None:
        values.append((ces - 1) / 6)
    return values


def band(score: float) -> str:
    if score >= 0.9:
        return "secure"
    return "neutral" if score >= 0.7 else "at_risk"


@dataclass(frozen=True, slots=True)
class Sci:
    customers: dict[str, int]
    secure_ratio: float


def sci(customer_sums: Iterable[tuple[float, float]]) -> Sci | None:
    """From each customer's (sum of normalised answers, number of answers) in the window."""
    counts = dict.fromkeys(BANDS, 0)
    for total, n in customer_sums:
        if n > 0:
            counts[band(total / n)] += 1
    customers = sum(counts.values())
    if customers == 0:
        return None
    return Sci(counts, counts["secure"] / customers)
