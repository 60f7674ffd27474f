"""Every KPI of one summary vector, keyed by its metric name (without the cx_ prefix), as the
catalogue (stream.kpi.catalogue) lists them; and the KPIs of churn and SCI results.

A KPI with no answers is left out, so exporters and snapshots show it as absent, not 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from stream.kpi.catalogue import KPIS
from stream.kpi.churn import Churn
from stream.kpi.sci import Sci


def kpis(vector: Sequence[float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for kpi in KPIS:
        out |= kpi.of(vector)
    return out


def churn_kpis(result: Churn | None) -> dict[str, float]:
    if result is None:
        return {}
    return {
        "churn_ratio": result.ratio,
        "churn_cancelled": result.cancelled,
        "churn_active_at_start": result.active_at_start,
    }


def sci_kpis(result: Sci) -> dict[str, float]:
    out: dict[str, float] = {f"sci_customers_{band}": n for band, n in result.customers.items()}
    out["sci_secure_ratio"] = result.secure_ratio
    return out
