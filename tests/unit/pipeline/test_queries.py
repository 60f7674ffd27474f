"""Query validation of the KPI endpoints, and the agent/queue rankings (pure)."""

from __future__ import annotations

import pytest

from stream.kpi.rows import KpiRow
from stream.pipeline.queries import (
    At,
    QueryError,
    QueueRankingQuery,
    RankingQuery,
    SegmentQuery,
    parse,
    ranking,
)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"window": "2h"}, "window"), ({"channel": "fax"}, "channel"), ({"at": "abc"}, "at"),
     ({"at": "nan"}, "at"), ({"at": "-1"}, "at"), ({"agent_id": "a1"}, "agent_id"),
     ({"queue": ""}, "queue")],
)  # fmt: skip
def test_invalid_segment_queries_say_what_is_valid(params: dict, parameter: str) -> None:
    with pytest.raises(QueryError) as refused:
        parse(SegmentQuery, params)
    body = refused.value.body
    assert [p["parameter"] for p in body["problems"]] == [parameter]
    assert body["parameters"]["window"] == ["5m", "1h", "24h", "7d"]
    assert body["parameters"]["channel"] == ["ivr", "sms", "email", "web", "all"]


def test_valid_queries_and_defaults() -> None:
    assert parse(SegmentQuery, {}) == SegmentQuery(window="1h", channel="all", queue="all")
    assert parse(At, {"at": "1700000000.5"}).at == 1700000000.5
    with pytest.raises(QueryError):
        parse(At, {"window": "1h"})  # /kpi/all takes `at` only
    ranked = parse(RankingQuery, {"sort": "csat", "order": "desc", "min_n": "5", "limit": "3"})
    assert (ranked.sort, ranked.order, ranked.min_n, ranked.limit) == ("csat", "desc", 5, 3)
    for bad in ({"sort": "x"}, {"order": "up"}, {"min_n": "-1"}, {"limit": "0"}):
        with pytest.raises(QueryError):
            parse(RankingQuery, bad)


def agent(agent_id: str, nps: float, n: int, window: str = "1h") -> KpiRow:
    kpis = {"nps": nps, "nps_lower": nps - 10, "nps_upper": nps + 5, "nps_responses": n}
    return KpiRow(window, "a", kpis, agent_id=agent_id)


def test_agents_are_ranked_by_kpi_gated_by_n() -> None:
    rollup = KpiRow("1h", "q", {"nps": 0}, channel="all", queue="all")
    rows = [agent("a1", -100.0, 1), agent("a2", 10.0, 40), agent("a3", -20.0, 35),
            agent("a4", 50.0, 90), agent("a5", -90.0, 200, window="24h"), rollup]  # fmt: skip
    worst = ranking(rows, RankingQuery(min_n=30), "a")
    assert [(r["agent_id"], r["n"]) for r in worst] == [("a3", 35), ("a2", 40), ("a4", 90)]
    assert worst[0]["interval"] == [-30.0, -15.0] and worst[0]["value"] == -20.0
    best = ranking(rows, RankingQuery(min_n=0, order="desc", limit=2), "a")
    assert [r["agent_id"] for r in best] == ["a4", "a2"]


def test_queues_of_one_channel_without_the_rollup() -> None:
    def queue(channel: str, name: str, csat: float, n: int) -> KpiRow:
        kpis = {"csat_top_box_ratio": csat, "csat_responses": n}
        return KpiRow("1h", "q", kpis, channel=channel, queue=name)

    rows = [queue("sms", "billing", 0.5, 50), queue("sms", "sales", 0.9, 50),
            queue("sms", "all", 0.7, 100), queue("ivr", "billing", 0.1, 50)]  # fmt: skip
    ranked = ranking(rows, QueueRankingQuery(channel="sms", sort="csat"), "q", "sms")
    assert [(r["queue"], r["value"]) for r in ranked] == [("billing", 0.5), ("sales", 0.9)]
    assert ranked[0]["interval"] is None  # no interval is exported for the top box
