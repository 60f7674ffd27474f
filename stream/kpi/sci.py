"""Secure Customer Index (SCI).

Per customer with answers in the window: the mean of its normalised answers nps/10,
(csat-1)/4 and (ces-1)/6 (each in [0, 1]). Bands (seed documents): secure >= 0.9,
neutral 0.7..0.9, at_risk < 0.7. Secure ratio = secure customers / customers.

Answers are summed in sixtieths (nps/10 = 6*nps/60, (csat-1)/4 = 15*(csat-1)/60,
(ces-1)/6 = 10*(ces-1)/60), so sums are integers and a customer exactly on a band edge is
classified the same way whatever order the answers were added in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream.kpi import summary as s

BANDS = ("secure", "neutral", "at_risk")
# The band edges in tenths of the mean normalised answer: secure >= 0.9, neutral >= 0.7.
SECURE_TENTHS = 9
NEUTRAL_TENTHS = 7


def normalised_answers(nps: int | None, csat: int | None, ces: int | None) -> list[float]:
    values = []
    if nps is not None:
        values.append(nps / 10)
    if csat is not None:
        values.append((csat - 1) / 4)
    if ces is not None:
        values.append((ces - 1) / 6)
    return values


def sixtieths(nps: int | None, csat: int | None, ces: int | None) -> list[int]:
    values = []
    if nps is not None:
        values.append(6 * nps)
    if csat is not None:
        values.append(15 * (csat - 1))
    if ces is not None:
        values.append(10 * (ces - 1))
    return values


def contribution(nps: int | None, csat: int | None, ces: int | None) -> s.Sparse:
    values = sixtieths(nps, csat, ces)
    return [s.SCI_SUM, sum(values), s.SCI_N, len(values)] if values else []


# A customer's bucket keeps only these two slots of the summary vector.
CUSTOMER_SLOTS = {s.SCI_SUM: 0, s.SCI_N: 1}


def add_to_customer(vector: list[float], delta: Sequence[float]) -> None:
    """Add the SCI slots of a sparse contribution to a customer's [sum, n] vector."""
    for i in range(0, len(delta), 2):
        slot = CUSTOMER_SLOTS.get(int(delta[i]))
        if slot is not None:
            vector[slot] += delta[i + 1]


def band(score: float) -> str:
    if score >= 0.9:
        return "secure"
    return "neutral" if score >= 0.7 else "at_risk"


def band_of_sum(total_sixtieths: float, n: float) -> str:
    """band(total / 60 / n) in exact integer arithmetic."""
    if 10 * total_sixtieths >= SECURE_TENTHS * 60 * n:
        return "secure"
    return "neutral" if 10 * total_sixtieths >= NEUTRAL_TENTHS * 60 * n else "at_risk"


def band_counts(sums: npt.NDArray[np.float64], ns: npt.NDArray[np.float64]) -> list[int]:
    """Customers per band (BANDS order) of per-customer arrays (sum in sixtieths, n):
    `band_of_sum` over arrays, customers without answers left out."""
    answered = ns > 0
    tenfold = 10 * sums[answered]
    n = ns[answered]
    secure = tenfold >= SECURE_TENTHS * 60 * n
    neutral = ~secure & (tenfold >= NEUTRAL_TENTHS * 60 * n)
    counts = {"secure": int(secure.sum()), "neutral": int(neutral.sum())}
    counts["at_risk"] = int(answered.sum()) - counts["secure"] - counts["neutral"]
    return [counts[band] for band in BANDS]


@dataclass(frozen=True, slots=True)
class Sci:
    customers: dict[str, int]
    secure_ratio: float


def sci(customer_sums: Iterable[tuple[float, float]]) -> Sci | None:
    """From each customer's (sum of answers in sixtieths, number of answers) in the window."""
    counts = dict.fromkeys(BANDS, 0)
    for total, n in customer_sums:
        if n > 0:
            counts[band_of_sum(total, n)] += 1
    customers = sum(counts.values())
    if customers == 0:
        return None
    return Sci(counts, counts["secure"] / customers)
