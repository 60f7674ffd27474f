"""An independent batch computation of the contract's KPIs over a list of events.

Written from the contract, not from stream/kpi or stream/aggregation: it replays the produced
events in order, keeps the winning revision of each response, and counts what falls in each
window at a fixed time. Tests compare the worker's tables with it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

WINDOWS = {"5m": (300, 15), "1h": (3600, 300), "24h": (86400, 3600), "7d": (604800, 43200)}
Z = 1.959963984540054


def in_window(t: float, window: str, at: float) -> bool:
    seconds, width = WINDOWS[window]
    current = math.floor(at / width)
    return current - seconds // width < math.floor(t / width) <= current


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass
class Tally:
    n: int = 0
    nps: list[int] = field(default_factory=list)
    csat: list[int] = field(default_factory=list)
    ces: list[int] = field(default_factory=list)
    thumbs: list[bool] = field(default_factory=list)
    dispatches: int = 0

    def kpis(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.nps:
            n = len(self.nps)
            p = sum(1 for x in self.nps if x >= 9)
            d = sum(1 for x in self.nps if x <= 6)
            na = n + 3
            pa, da = (p + 0.75) / na, (d + 0.75) / na
            half = Z * math.sqrt((pa + da - (pa - da) ** 2) / na)
            out |= {
                "nps": 100 * (p - d) / n,
                "nps_lower": max(-100, 100 * (pa - da - half)),
                "nps_upper": min(100, 100 * (pa - da + half)),
                "nps_responses": n,
                "nps_promoters": p,
                "nps_passives": n - p - d,
                "nps_detractors": d,
            }
        if self.csat:
            n = len(self.csat)
            top2 = sum(1 for x in self.csat if x >= 4)
            ratio = top2 / n
            centre = (ratio + Z * Z / (2 * n)) / (1 + Z * Z / n)
            half = Z / (1 + Z * Z / n) * math.sqrt(ratio * (1 - ratio) / n + Z * Z / (4 * n * n))
            out |= {
                "csat_top_box_ratio": sum(1 for x in self.csat if x == 5) / n,
                "csat_top2_box_ratio": ratio,
                "csat_top2_box_lower": max(0, centre - half),
                "csat_top2_box_upper": min(1, centre + half),
                "csat_responses": n,
            }
        if self.ces:
            n = len(self.ces)
            out |= {
                "ces_average": sum(self.ces) / n,
                "ces_agree_ratio": sum(1 for x in self.ces if x >= 5) / n,
                "ces_responses": n,
            }
        if self.thumbs:
            out["thumbs_up_ratio"] = sum(self.thumbs) / len(self.thumbs)
        if self.dispatches:
            out["response_ratio"] = self.n / self.dispatches
        return out


def segments(response: dict[str, Any]) -> list[tuple[str, ...]]:
    channel, queue = response["channel"], response.get("queue") or "unassigned"
    keys = [("q", channel, queue), ("q", channel, "all"), ("q", "all", queue), ("q", "all", "all")]
    if response.get("agent_id"):
        keys.append(("a", response["agent_id"]))
    return keys


def winning_responses(responses: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """response_id -> the answer that counts: first seen, replaced only by a higher revision."""
    winners: dict[str, dict[str, Any]] = {}
    for response in responses:
        current = winners.get(response["response_id"])
        if current is None or response.get("revision", 0) > current.get("revision", 0):
            winners[response["response_id"]] = response
    return winners


def batch_kpis(
    responses: list[dict[str, Any]],
    dispatches: list[dict[str, Any]],
    at: float,
) -> dict[tuple[str, tuple[str, ...]], dict[str, float]]:
    """(window, segment) -> KPIs, for responses and dispatches in produce order."""
    tallies: dict[tuple[str, tuple[str, ...]], Tally] = defaultdict(Tally)
    for response in winning_responses(responses).values():
        t = epoch(response["occurred_at"])
        scores = response["scores"]
        for window in WINDOWS:
            if not in_window(t, window, at):
                continue
            for segment in segments(response):
                tally = tallies[(window, segment)]
                tally.n += 1
                for name in ("nps", "csat", "ces", "thumbs"):
                    if name in scores:
                        getattr(tally, name).append(scores[name])
    seen: set[str] = set()
    for dispatch in dispatches:
        if dispatch["dispatch_id"] in seen:
            continue
        seen.add(dispatch["dispatch_id"])
        t = epoch(dispatch["occurred_at"])
        for window in WINDOWS:
            if in_window(t, window, at):
                for segment in segments({**dispatch, "agent_id": None}):
                    tallies[(window, segment)].dispatches += 1
    return {key: tally.kpis() for key, tally in tallies.items() if tally.kpis()}


def batch_churn(lifecycle: list[dict[str, Any]], at: float) -> dict[str, dict[str, float]]:
    """window -> churn KPIs, with the same state machine: activate when inactive, cancel when
    active; active at the window start = activations - cancellations before it."""
    active: dict[str, bool] = {}
    changes: list[tuple[str, float]] = []
    for event in lifecycle:
        customer, kind = event["customer_id"], event["type"]
        if kind == "activated" and not active.get(customer):
            active[customer] = True
            changes.append(("a", epoch(event["occurred_at"])))
        elif kind == "cancelled" and active.get(customer):
            active[customer] = False
            changes.append(("c", epoch(event["occurred_at"])))
    out = {}
    for window in WINDOWS:
        inside = [kind for kind, t in changes if in_window(t, window, at)]
        activated_before = sum(1 for k, _ in changes if k == "a") - inside.count("a")
        cancelled_before = sum(1 for k, _ in changes if k == "c") - inside.count("c")
        active_at_start = activated_before - cancelled_before
        if active_at_start > 0:
            out[window] = {
                "churn_ratio": inside.count("c") / active_at_start,
                "churn_cancelled": inside.count("c"),
                "churn_active_at_start": active_at_start,
            }
    return out


def batch_sci(responses: list[dict[str, Any]], at: float) -> dict[str, dict[str, float]]:
    """window -> SCI: per customer, the mean of nps/10, (csat-1)/4, (ces-1)/6 in the window;
    secure >= 0.9, neutral 0.7..0.9, at_risk < 0.7."""
    out = {}
    for window in WINDOWS:
        per_customer: dict[str, list[Fraction]] = defaultdict(list)
        for response in winning_responses(responses).values():
            customer = response.get("customer_id")
            if not customer or not in_window(epoch(response["occurred_at"]), window, at):
                continue
            scores = response["scores"]
            if "nps" in scores:
                per_customer[customer].append(Fraction(scores["nps"], 10))
            if "csat" in scores:
                per_customer[customer].append(Fraction(scores["csat"] - 1, 4))
            if "ces" in scores:
                per_customer[customer].append(Fraction(scores["ces"] - 1, 6))
        bands = {"secure": 0, "neutral": 0, "at_risk": 0}
        for values in per_customer.values():
            if values:
                mean = sum(values) / len(values)
                secure, neutral = Fraction(9, 10), Fraction(7, 10)
                bands[
                    "secure" if mean >= secure else "neutral" if mean >= neutral else "at_risk"
                ] += 1
        customers = sum(bands.values())
        if customers:
            out[window] = {f"sci_customers_{b}": n for b, n in bands.items()}
            out[window]["sci_secure_ratio"] = bands["secure"] / customers
    return out
