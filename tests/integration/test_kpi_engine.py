"""The KPI tables against an independent batch computation, on the real broker.

10,000 responses (shuffled, out of order, with re-deliveries, revisions, mis-keyed and too-old
messages), dispatches and customer lifecycles; every window and segment must match exactly
(counts) or to 1e-9 (ratios), also when the worker is killed mid-stream and restarted on an
empty state directory (recovery from the changelogs alone).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.support.batch_kpi import batch_churn, batch_kpis, batch_sci, epoch, winning_responses
from tests.support.kafka_io import produce, read_exactly
from tests.support.traffic import Traffic, make_traffic
from tests.support.worker import Worker

pytestmark = pytest.mark.kafka
COUNTS = {"nps_responses", "nps_promoters", "nps_passives", "nps_detractors", "csat_responses",
          "ces_responses", "churn_cancelled", "churn_active_at_start", "sci_customers_secure",
          "sci_customers_neutral", "sci_customers_at_risk"}  # fmt: skip


def fetch_rows(worker: Worker, at: float) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{worker.url}/kpi/all?at={at}", timeout=10) as reply:
        return list(json.load(reply)["rows"])


def rows_by_segment(rows: list[dict[str, Any]]) -> dict[tuple[str, tuple[str, ...]], dict]:
    out = {}
    for row in rows:
        if row["kind"] == "q":
            segment: tuple[str, ...] = ("q", row["channel"], row["queue"])
        elif row["kind"] == "a":
            segment = ("a", row["agent_id"])
        elif row["kind"] == "sci":
            segment = ("sci",)
        else:
            segment = ("churn",)
        if row["kpis"]:
            out[(row["window"], segment)] = row["kpis"]
    return out


def assert_matches(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected), (
        f"segments differ: missing {sorted(set(expected) - set(actual))[:5]}, "
        f"extra {sorted(set(actual) - set(expected))[:5]}"
    )
    for key, kpis in expected.items():
        got = actual[key]
        assert set(got) == set(kpis), f"{key}: KPIs {sorted(got)} != {sorted(kpis)}"
        for name, value in sorted(kpis.items(), key=lambda item: item[0] not in COUNTS):
            if name in COUNTS:
                assert got[name] == value, f"{key} {name}: {got[name]} != {value}"
            else:
                assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-9), f"{key} {name}"


def too_old(response: dict[str, Any]) -> bool:
    return epoch(response["occurred_at"]) < time.time() - 8 * 86400


def expected_kpis(traffic: Traffic, at: float) -> dict:
    expected = batch_kpis(traffic.responses, traffic.dispatches, at)
    for window, kpis in batch_churn(traffic.lifecycle, at).items():
        expected[(window, ("churn",))] = kpis
    for window, kpis in batch_sci(traffic.responses, at).items():
        expected[(window, ("sci",))] = kpis
    return expected


async def produce_all(bootstrap: str, prefix: str, traffic: Traffic, part: slice) -> None:
    await produce(bootstrap, prefix + "responses", traffic.response_messages[part])
    await produce(bootstrap, prefix + "dispatches", traffic.dispatch_messages[part])
    await produce(bootstrap, prefix + "lifecycle", traffic.lifecycle_messages[part])


async def wait_until_matches(worker: Worker, traffic: Traffic, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        at = time.time()
        actual = rows_by_segment(fetch_rows(worker, at))
        expected = expected_kpis(traffic, at)
        try:
            assert_matches(actual, expected)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(1.0)


async def changelog_records(bootstrap: str, app_id: str) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith(app_id) and "changelog" in t]
        partitions = [TopicPartition(t, p) for t in topics for p in range(4)]
        ends = await consumer.end_offsets(partitions)
        totals: dict[str, int] = {}
        for tp, end in ends.items():
            totals[tp.topic] = totals.get(tp.topic, 0) + end
        return totals
    finally:
        await consumer.stop()


async def test_tables_equal_batch_computation(
    kafka_bootstrap: str, topic_prefix: str, make_worker
) -> None:
    now = datetime.now(UTC)
    traffic = make_traffic(now, responses=10_000, seed=11)
    worker = make_worker(CX_SNAPSHOT_INTERVAL="1").start(wait_for_partitions=4)
    await produce_all(kafka_bootstrap, topic_prefix, traffic, slice(None))
    await wait_until_matches(worker, traffic)
    matched_at = time.time()

    dead = await read_exactly(kafka_bootstrap, topic_prefix + "deadletter", traffic.too_old)
    assert {json.loads(r.value)["reason"] for r in dead} == {"too_old"}
    # Follow-ups: a call-back per recent detractor answer (at most CX_FOLLOWUP_MAX_AGE, 48 h,
    # old), a retraction when a revision took the id out of detractor range. The latest record
    # of an id is its state: open for every id whose counted answer is a recent detractor,
    # retracted (or absent) for every id whose counted answer is no detractor.
    winners = winning_responses(traffic.responses)
    recent = time.time() - 48 * 3600 + 60  # a minute of margin for the worker's own clock

    def detractor(r: dict) -> bool:
        return r["scores"].get("nps", 10) <= 6

    must = {rid for rid, r in winners.items() if detractor(r) and epoch(r["occurred_at"]) > recent}
    may = {r["response_id"] for r in traffic.responses if detractor(r)}
    followups = await read_exactly(kafka_bootstrap, topic_prefix + "followups", len(must))
    latest = {r.key.decode(): json.loads(r.value) for r in followups}  # in offset order per key
    open_ids = {rid for rid, f in latest.items() if not f.get("retracted")}
    assert must <= open_ids <= may
    for rid, r in winners.items():
        if not detractor(r) and rid in latest:
            assert latest[rid]["retracted"], rid
    for f in (json.loads(r.value) for r in followups):
        assert f.get("retracted") or epoch(f["occurred_at"]) > recent - 120
    assert all(b"comment" not in r.value and b"+33" not in r.value for r in followups)

    # The incrementally kept rows (/kpi/all without `at`, what /metrics reads) equal a full
    # computation at the same time.
    # (a snapshot of the read model built after everything counted: one every 0.5 s)
    kept = {"at": 0.0}
    while kept["at"] < matched_at:
        await asyncio.sleep(0.2)
        with urllib.request.urlopen(f"{worker.url}/kpi/all", timeout=10) as reply:
            kept = json.load(reply)
    full = rows_by_segment(fetch_rows(worker, kept["at"]))
    assert rows_by_segment(kept["rows"]) == full

    # Snapshots carry the same KPIs as the tables at their own time.
    await asyncio.sleep(2.5)
    snapshots = await read_exactly(kafka_bootstrap, topic_prefix + "kpi.snapshots", 1, timeout=10)
    latest = json.loads([r for r in snapshots if r.key == b"1h|q|all|all"][-1].value)
    expected = expected_kpis(traffic, latest["at"])[("1h", ("q", "all", "all"))]
    assert_matches({"s": latest["kpis"]}, {"s": expected})

    inputs = len(traffic.response_messages) + len(traffic.dispatch_messages)
    inputs += len(traffic.lifecycle_messages)
    records = await changelog_records(kafka_bootstrap, worker.app_id)
    per_event = {topic: count / inputs for topic, count in records.items()}
    print(f"\nchangelog records per input event: {per_event} (inputs {inputs})")


async def test_kill_and_restart_mid_stream_gives_the_same_result(
    kafka_bootstrap: str, topic_prefix: str, make_worker
) -> None:
    now = datetime.now(UTC)
    traffic = make_traffic(now, responses=10_000, seed=12)
    first = make_worker("first").start(wait_for_partitions=4)
    await produce_all(kafka_bootstrap, topic_prefix, traffic, slice(0, 6000))
    await asyncio.sleep(1.5)
    first.kill()  # SIGKILL while the first half is being processed
    await produce_all(kafka_bootstrap, topic_prefix, traffic, slice(6000, None))
    second = make_worker("second").start(wait_for_partitions=4)  # empty state dir
    await wait_until_matches(second, traffic)
