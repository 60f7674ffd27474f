"""Two workers share the partitions: every KPI series is exported by exactly one of them, and
together they export what a single worker computes (the batch KPIs)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from tests.integration.test_exporter import scrapes_at_one_time
from tests.integration.test_kpi_engine import (
    assert_matches,
    expected_kpis,
    fetch_rows,
    produce_all,
    rows_by_segment,
)
from tests.support.traffic import make_traffic

pytestmark = pytest.mark.kafka


async def test_each_series_on_exactly_one_worker(
    kafka_bootstrap: str, topic_prefix: str, make_worker
) -> None:
    traffic = make_traffic(datetime.now(UTC), responses=3000, seed=31)
    first = make_worker("one", CX_AGENT_TOP_K="5").start(wait_for_partitions=1)
    second = make_worker("two", CX_AGENT_TOP_K="5").start(wait_for_partitions=1)
    await produce_all(kafka_bootstrap, topic_prefix, traffic, slice(None))

    deadline = time.monotonic() + 300
    while True:
        at = time.time()
        rows = [rows_by_segment(fetch_rows(w, at)) for w in (first, second)]
        both = set(rows[0]) & set(rows[1])
        try:
            assert both == set(), f"served by both workers: {sorted(both)[:5]}"
            assert_matches({**rows[0], **rows[1]}, expected_kpis(traffic, at))
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)

    # both snapshots within one 15 s bucket: the same window edges
    before, scrapes = scrapes_at_one_time([first, second])
    # counters count what each process did (told apart by the `instance` label); gauges are owned
    kpi_series = [{k for k in s if not k[0].endswith("_total")} for s in scrapes]
    shared = kpi_series[0] & kpi_series[1]
    assert shared == set(), f"exported twice: {sorted(shared)[:5]}"
    assert kpi_series[0] and kpi_series[1], "both workers should own some series"
    expected = expected_kpis(traffic, before)
    merged = {**scrapes[0], **scrapes[1]}
    for window in ("5m", "1h", "24h", "7d"):  # 25 agents: the top 5 and "other", on one worker
        agents = [dict(labels)["agent_id"] for name, labels in merged
                  if name == "cx_agent_nps" and dict(labels)["window"] == window]  # fmt: skip
        assert len(agents) == 6 and "other" in agents, (window, agents)
    for (window, segment), kpis in expected.items():
        if segment[0] == "q":
            labels = frozenset({("window", window), ("channel", segment[1]), ("queue", segment[2])})
            for name, value in kpis.items():
                assert merged[(f"cx_{name}", labels)] == pytest.approx(value, rel=1e-9, abs=1e-9)
