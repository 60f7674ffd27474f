"""The HTTP query parameters of the KPI endpoints, validated (pydantic), and the rankings of
agents and queues that operators ask for (pure: rows in, rows out).

Every endpoint refuses an unknown parameter or value with 400 and the valid values; none
answers 500 on a query string.
"""

from __future__ import annotations

import math
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stream.kpi.rows import KpiRow
from stream.kpi.windows import WindowName

ChannelName = Literal["ivr", "sms", "email", "web", "all"]
# sort key -> (KPI in the row, the answers it counts)
SORTS: dict[str, tuple[str, str]] = {
    "nps": ("nps", "nps_responses"),
    "csat": ("csat_top_box_ratio", "csat_responses"),
    "csat_top2": ("csat_top2_box_ratio", "csat_responses"),
    "ces": ("ces_average", "ces_responses"),
    "n": ("nps_responses", "nps_responses"),
}
SortName = Literal["nps", "csat", "csat_top2", "ces", "n"]


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _epoch(value: str | None) -> float | None:
    if value is None:
        return None
    at = float(value)
    if not math.isfinite(at) or at < 0:
        raise ValueError("at must be a finite Unix time in seconds")
    return at


class At(Query):
    at: float | None = None  # Unix seconds; the current time when absent

    @field_validator("at", mode="before")
    @classmethod
    def finite(cls, value: Any) -> float | None:
        return _epoch(value)


class SegmentQuery(At):
    window: WindowName = "1h"
    channel: ChannelName = "all"
    queue: str = Field("all", min_length=1, max_length=64)


class RankingQuery(At):
    window: WindowName = "1h"
    sort: SortName = "nps"
    order: Literal["asc", "desc"] = "asc"  # asc: the worst first
    min_n: int = Field(30, ge=0)
    limit: int = Field(20, ge=1, le=1000)


class QueueRankingQuery(RankingQuery):
    channel: ChannelName = "all"


Q = TypeVar("Q", bound=Query)


class QueryError(ValueError):
    """A query the endpoint refuses, with what is valid (for a 400 answer)."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("error", "invalid query"))
        self.body = body


def parse(model: type[Q], params: dict[str, str]) -> Q:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problems = [
            {"parameter": ".".join(str(p) for p in e["loc"]) or "?", "problem": e["msg"]}
            for e in exc.errors(include_input=False, include_url=False)
        ]
        valid = {
            name: _valid_values(field.annotation) for name, field in model.model_fields.items()
        }
        raise QueryError(
            {"error": "invalid query", "problems": problems, "parameters": valid}
        ) from None


def _valid_values(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    if args and all(isinstance(a, str) for a in args):
        return list(args)
    return getattr(annotation, "__name__", str(annotation))


def ranking(
    rows: list[KpiRow], query: RankingQuery, kind: str, channel: str | None = None
) -> list[dict[str, Any]]:
    """Rows of `kind` ("a" agents, "q" queues) in the window, with at least `min_n` answers
    to the sorted KPI, ordered by it (then by n, most answers first), at most `limit`."""
    kpi, counted = SORTS[query.sort]
    chosen = []
    for row in rows:
        if row.kind != kind or row.window != query.window or kpi not in row.kpis:
            continue
        if kind == "q" and (row.queue == "all" or row.channel != channel):
            continue
        n = row.kpis.get(counted, 0)
        if n < query.min_n:
            continue
        chosen.append((row.kpis[kpi], -n, row.label, row))
    chosen.sort(key=lambda item: item[:3], reverse=query.order == "desc")
    out: list[dict[str, Any]] = []
    for value, negative_n, _, row in chosen[: query.limit]:
        ranked = {k: v for k, v in row.as_dict(vector=False).items() if k not in ("kind", "kpis")}
        ranked |= {"sort": query.sort, "value": value, "n": -negative_n,
                   "interval": _interval(row.kpis, query.sort), "kpis": row.kpis}  # fmt: skip
        out.append(ranked)
    return out


INTERVALS: dict[str, tuple[str, str]] = {
    "nps": ("nps_lower", "nps_upper"),
    "csat_top2": ("csat_top2_box_lower", "csat_top2_box_upper"),
}


def _interval(kpis: dict[str, float], sort: str) -> list[float] | None:
    bounds = INTERVALS.get(sort)
    if bounds is None or bounds[0] not in kpis:
        return None
    return [kpis[bounds[0]], kpis[bounds[1]]]
