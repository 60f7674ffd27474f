"""The read model's snapshot: a group's members kept as arrays give the same rows, lookups and
gauges as the rows made one by one (what /kpi/all, /kpi and /metrics read)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from stream.aggregation.group_sums import member_bucket
from stream.aggregation.messages import BucketState
from stream.exporter import KpiCollector
from stream.kpi import summary
from stream.kpi.nps import contribution as nps_answer
from stream.kpi.rows import KpiRow
from stream.pipeline.read_model import Snapshot, group_rows

GROUP = "q|sms|*"


def vector(*nps_scores: int) -> list[float]:
    v = summary.initialize()
    for score in nps_scores:
        summary.add(v, [summary.N, 1, *nps_answer(score)])
    return v


def snapshot() -> Snapshot:
    members = {
        "5m": member_bucket(
            BucketState([], {}, {"billing": vector(10, 9), "sales": vector(3), "other": vector(7)})
        ),
        "1h": member_bucket(BucketState([], {}, {"billing": vector(10, 9, 1)})),
    }
    total = KpiRow("5m", "q", None, vector(10, 9, 3, 7), channel="sms", queue="all")
    agents = member_bucket(BucketState([], {}, {"ann": vector(10)}))
    segments = (("a|0|*", {"5m": agents}), (GROUP, members), ("q|sms|all", (total,)))
    sci = (KpiRow("5m", "churn", {"churn_ratio": 0.5}),)
    return Snapshot(1_750_000_000.0, segments, sci)


def test_rows_are_made_from_the_arrays_in_segment_order() -> None:
    snap = snapshot()
    agents, queues, total = snap.segments
    expected = [
        *group_rows("a|0|*", agents[1]),  # type: ignore[arg-type]
        *group_rows(GROUP, queues[1]),  # type: ignore[arg-type]
        *total[1],
        *snap.sci,
    ]
    assert list(snap.rows) == expected
    billing = [r for r in snap.rows if r.queue == "billing"]
    assert [(r.window, r.channel, r.vector[summary.N]) for r in billing] == [
        ("1h", "sms", 3), ("5m", "sms", 2)
    ]  # fmt: skip
    assert [r.agent_id for r in snap.rows if r.kind == "a"] == ["ann"]
    assert snap.totals == [total[1][0], *snap.sci]  # type: ignore[index]


def test_one_row_is_found_without_making_the_others() -> None:
    snap = snapshot()
    for row in snapshot().rows:
        if row.kind == "q":
            assert snap.row(row.window, row.channel or "", row.queue or "") == row
    assert snap.row("5m", "sms", "nobody") is None
    assert snap.row("24h", "sms", "billing") is None
    assert "rows" not in vars(snap)  # no row was made for the lookups


def scrape(collector: KpiCollector) -> list[str]:
    registry = CollectorRegistry()
    registry.register(collector)
    return sorted(generate_latest(registry).decode().splitlines())


def test_gauges_from_the_arrays_equal_the_gauges_from_rows() -> None:
    snap = snapshot()
    rows = [r for r in snap.rows if r.kind != "a"]
    for top_k in (0, 1, 5):
        from_rows = scrape(KpiCollector(lambda: rows, queue_top_k=top_k))
        from_arrays = scrape(
            KpiCollector(
                lambda: snap.totals, queue_top_k=top_k, queue_members=lambda: snap.members("q")
            )
        )
        assert from_arrays == from_rows
        assert any('queue="billing"' in line for line in from_rows) == (top_k > 0)


async def test_rows_made_on_the_loop_equal_the_rows() -> None:
    made = await snapshot().made_rows()
    assert list(made) == list(snapshot().rows)
