"""Label-cardinality attack: every response names a new agent and a new queue.

The state caps (CX_AGENT_LIMIT, CX_QUEUE_LIMIT: members kept per time bucket) and the export
folds (CX_AGENT_TOP_K, CX_QUEUE_TOP_K) must keep the worker's memory and its /metrics series
under the caps documented in docs/reliability.md, while every answer is still counted once:
in its own agent or queue, or in "other". The default run uses small caps and 20,000
distinct names (far past the caps); CX_RELIABILITY_LONG=1 sends a million with the default caps.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.workload import CHANNELS, FLOOD_SPREAD_SECONDS, name_flood
from tests.integration.test_exporter import parse
from tests.reliability.harness import LONG, summary
from tests.support.kafka_io import produce
from tests.support.worker import Worker

DISTINCT = 1_000_000 if LONG else 20_000
# The windows whose totals are checked: every answer is in every window while the drain takes
# under a minute, but a million names drain for minutes, and the first answers leave the 5m
# window before the last are counted, so the long variant checks 24h and 7d.
CHECKED = ("24h", "7d") if LONG else ("5m", "7d")
# Small caps by default, so 20,000 names overflow them many times; the defaults when long.
CAPS = (
    {}
    if LONG
    else {"CX_AGENT_LIMIT": "40", "CX_QUEUE_LIMIT": "15", "CX_AGENT_TOP_K": "10",
          "CX_QUEUE_TOP_K": "5"}
)  # fmt: skip
DEFAULTS = {"CX_AGENT_LIMIT": 1000, "CX_QUEUE_LIMIT": 200, "CX_AGENT_TOP_K": 100,
            "CX_QUEUE_TOP_K": 50}  # fmt: skip
# Documented in docs/reliability.md: the worker's peak RSS under this attack.
PEAK_RSS_CAP_MB = 600
SEGMENT_GAUGES = 19  # channel x queue gauges of the contract
AGENT_GAUGES = 4  # nps, csat top-2 box and their response counts


def cap(name: str) -> int:
    return int(CAPS.get(name, DEFAULTS[name]))


def series_cap() -> int:
    """Most KPI series a worker may export, whatever the names (docs/reliability.md)."""
    windows, channels = 4, len(CHANNELS) + 1  # + channel "all"
    queues = cap("CX_QUEUE_TOP_K") + 2  # + "other" + "all"
    agents = cap("CX_AGENT_TOP_K") + 1  # + "other"
    sci_and_churn = windows * (3 + 1 + 1)
    return (
        SEGMENT_GAUGES * windows * channels * queues
        + AGENT_GAUGES * windows * agents
        + sci_and_churn
    )


def peak_rss_mb(worker: Worker) -> float:
    assert worker.process is not None
    status = Path(f"/proc/{worker.process.pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def kpi_rows(worker: Worker) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{worker.url}/kpi/all", timeout=60) as reply:
        return list(json.load(reply)["rows"])


SNAPSHOT_SETTLE_SECONDS = 2.0


def wait_counted(worker: Worker, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    key = ("cx_nps_responses", _labels(CHECKED[0], "all", "all"))
    counted = 0.0
    drained_at = None
    while time.monotonic() < deadline:
        samples = parse(worker.metrics())
        counted = samples.get(key, 0.0)
        lag = [v for (name, _), v in samples.items() if name == "cx_consumer_lag"]
        # every stage-2 partition done too: the rollups of one channel finish apart
        if counted >= expected and lag and not any(lag):
            drained_at = drained_at or time.monotonic()
            # The lag is read live, the KPIs from the read model's snapshot (rebuilt every
            # CX_READ_REFRESH_SECONDS, 0.5 s): done once a snapshot after the last batch is in.
            if time.monotonic() - drained_at >= SNAPSHOT_SETTLE_SECONDS:
                return
        else:
            drained_at = None
        time.sleep(0.5)
    raise AssertionError(f"{counted} of {expected} answers counted:\n{worker.log_tail()}")


# The long variant's million names take far more than pytest's default 300 s.
@pytest.mark.timeout(3000 if LONG else 300)
async def test_a_flood_of_names_stays_under_the_caps(
    kafka_bootstrap: str, topic_prefix: str, make_worker
) -> None:
    messages = name_flood(DISTINCT, datetime.now(UTC), id_prefix="attack", run=uuid.uuid4().hex[:6])
    worker = make_worker(**CAPS).start(wait_for_partitions=4)
    await produce(kafka_bootstrap, f"{topic_prefix}responses", messages)
    wait_counted(worker, DISTINCT, timeout=2400 if LONG else 300)

    samples = parse(worker.metrics())
    operational = ("cx_events", "cx_consumer", "cx_kpi_snapshot")
    kpi_series = [name for name, _ in samples if not name.startswith(operational)]
    labels: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for name, pairs in samples:
        d = dict(pairs)
        if name == "cx_nps_responses":
            labels[("queue", d["window"], d["channel"])].add(d["queue"])
        elif name == "cx_agent_nps":
            labels[("agent", d["window"], "")].add(d["agent_id"])
    rss = peak_rss_mb(worker)

    # Exported series: bounded, with at most top-K names (+ "other", + "all") per window.
    assert len(kpi_series) <= series_cap()
    for (kind, _, _), names in labels.items():
        top_k = cap("CX_QUEUE_TOP_K") + 2 if kind == "queue" else cap("CX_AGENT_TOP_K") + 1
        assert len(names) <= top_k and "other" in names
    # Exported queue series of a channel add up to the channel's total: nothing lost.
    for window in CHECKED:
        for channel in CHANNELS:
            total = samples[("cx_nps_responses", _labels(window, channel, "all"))]
            parts = [
                v
                for (name, pairs), v in samples.items()
                if name == "cx_nps_responses"
                and dict(pairs)["window"] == window
                and dict(pairs)["channel"] == channel
                and dict(pairs)["queue"] != "all"
            ]
            assert total == DISTINCT // 4 and sum(parts) == total

    # State: per time bucket at most the cap of members (+ other); every answer counted once.
    rows = kpi_rows(worker)
    agents = Counter(r["window"] for r in rows if r["kind"] == "a")
    answers_by_agent = sum(r["vector"][0] for r in rows if r["kind"] == "a" and r["window"] == "7d")
    assert answers_by_agent == DISTINCT
    buckets_5m = FLOOD_SPREAD_SECONDS // 15 + 2  # 4 minutes of 15 s buckets, edges included
    shards = 4  # agents are capped per shard: one per partition (CX_PARTITIONS)
    assert agents["5m"] <= buckets_5m * shards * cap("CX_AGENT_LIMIT") + 1
    assert agents["7d"] <= 2 * shards * cap("CX_AGENT_LIMIT") + 1

    assert rss <= PEAK_RSS_CAP_MB
    assert worker.process is not None and worker.process.poll() is None
    summary(
        "cardinality",
        distinct_agents=DISTINCT,
        distinct_queues=DISTINCT,
        kpi_series=len(kpi_series),
        series_cap=series_cap(),
        agent_rows_7d=agents["7d"],
        peak_rss_mb=round(rss),
        rss_cap_mb=PEAK_RSS_CAP_MB,
        lost=0,
    )


def _labels(window: str, channel: str, queue: str) -> frozenset[tuple[str, str]]:
    return frozenset({("window", window), ("channel", channel), ("queue", queue)})
