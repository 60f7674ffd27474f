"""/metrics on a real worker: the gauges equal the independent batch KPIs, and promtool
finds no naming problem in a real scrape."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from stream.pipeline.topics import ensure_topics
from stream.settings import KafkaSettings, Settings
from tests.integration.test_kpi_engine import expected_kpis, produce_all, wait_until_matches
from tests.support.traffic import make_traffic

pytestmark = pytest.mark.kafka
SAMPLE = re.compile(r"^(cx_[a-z0-9_]+)\{([^}]*)\} (\S+)$")
SNAPSHOT_AT = re.compile(r"^cx_kpi_snapshot_timestamp_seconds (\S+)$", re.MULTILINE)


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for line in text.splitlines():
        if match := SAMPLE.match(line):
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            samples[(match.group(1), labels)] = float(match.group(3))
    return samples


def snapshot_at(text: str) -> float:
    """The time of the read model's snapshot a scrape shows (every KPI gauge of one scrape
    comes from one snapshot)."""
    match = SNAPSHOT_AT.search(text)
    assert match, "no cx_kpi_snapshot_timestamp_seconds in the scrape"
    return float(match.group(1))


def scrapes_at_one_time(
    workers: Sequence[Any],
) -> tuple[float, list[dict[tuple[str, frozenset[tuple[str, str]]], float]]]:
    """The workers' scrapes, from snapshots within one 15 s bucket (every window then has the
    same edges in all of them), and the time of the first."""
    while True:
        texts = [worker.metrics() for worker in workers]
        times = [snapshot_at(text) for text in texts]
        if len({int(at // 15) for at in times}) == 1:
            return times[0], [parse(text) for text in texts]
        time.sleep(0.2)


async def test_metrics_equal_batch_kpis(kafka_bootstrap: str, topic_prefix: str, make_worker):
    traffic = make_traffic(datetime.now(UTC), responses=2000, seed=21)
    worker = make_worker().start(wait_for_partitions=4)
    await produce_all(kafka_bootstrap, topic_prefix, traffic, slice(None))
    await wait_until_matches(worker, traffic)

    # The SCI gauges come from the final step's parts, sent every CX_PART_INTERVAL_SECONDS:
    # scrape again until they caught up with the last batch, within a bound.
    deadline = time.monotonic() + 20
    while True:
        before, samples = scrape_in_one_bucket(worker)
        expected = expected_kpis(traffic, before)
        if sci_matches(samples, expected) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    expected = expected_kpis(traffic, before)
    checked = 0
    for (window, segment), kpis in expected.items():
        if segment[0] != "q":
            continue
        labels = frozenset({("window", window), ("channel", segment[1]), ("queue", segment[2])})
        for name, value in kpis.items():
            assert samples[(f"cx_{name}", labels)] == pytest.approx(value, rel=1e-9, abs=1e-9)
            checked += 1
        if "csat_top2_box_ratio" not in kpis:
            assert ("cx_csat_top2_box_ratio", labels) not in samples  # absent, not 0
    assert checked > 1000
    assert sci_matches(samples, expected)
    assert any(segment == ("sci",) for _, segment in expected)


def scrape_in_one_bucket(
    worker,
) -> tuple[float, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    """A scrape and the time of the read model's snapshot it shows."""
    at, (samples,) = scrapes_at_one_time([worker])
    return at, samples


def sci_matches(samples: dict, expected: dict) -> bool:
    for (window, segment), kpis in expected.items():
        if segment == ("sci",):
            labels = frozenset({("window", window)})
            got = samples.get(("cx_sci_secure_ratio", labels))
            if got is None or got != pytest.approx(kpis["sci_secure_ratio"]):
                return False
    return True


async def test_promtool_accepts_a_real_scrape(kafka_bootstrap: str, topic_prefix: str, make_worker):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run scripts/setup.sh (Debian package prometheus)"
    traffic = make_traffic(datetime.now(UTC), responses=300, seed=22)
    worker = make_worker().start(wait_for_partitions=4)
    await produce_all(kafka_bootstrap, topic_prefix, traffic, slice(None))
    await wait_until_matches(worker, traffic)
    text = worker.metrics()
    for family in ("cx_nps", "cx_events_total", "cx_agent_nps", "cx_sci_customers"):
        assert f"\n{family}{{" in text, family
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def topic_ends(bootstrap: str, topic: str) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(4)])
        return {tp.partition: end for tp, end in ends.items()}
    finally:
        await consumer.stop()


async def last_records(bootstrap: str, topic: str) -> dict[int, int]:
    """Per partition, one past the last record a read_committed consumer gets."""
    from faust.types import TP

    from stream.pipeline.transactions import last_record_ends

    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    ends = await topic_ends(bootstrap, topic)
    found = await last_record_ends(kafka, {TP(topic, p): end for p, end in ends.items()})
    return {tp.partition: end for tp, end in found.items()}


async def group_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    finally:
        await admin.close()


def lag_samples(text: str) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["topic"], dict(labels)["partition"]): value
        for (name, labels), value in parse(text).items()
        if name == "cx_consumer_lag"
    }


async def test_consumer_lag_counts_what_is_left_and_is_zero_after_a_drain(
    kafka_bootstrap: str, topic_prefix: str, make_worker
):
    traffic = make_traffic(datetime.now(UTC), responses=20_000, seed=23)
    await ensure_topics(
        Settings(topic_prefix=topic_prefix), KafkaSettings(bootstrap_servers=kafka_bootstrap)
    )
    await produce_all(kafka_bootstrap, topic_prefix, traffic, slice(None))
    worker = make_worker().start(wait_for_partitions=4)
    responses = f"{topic_prefix}responses"
    behind = 0.0
    deadline = time.monotonic() + 60
    while behind == 0 and time.monotonic() < deadline:  # the first scrapes, mid-drain
        lag = lag_samples(worker.metrics())
        behind = sum(v for (topic, _), v in lag.items() if topic == responses)
        time.sleep(0.1)
    await wait_until_matches(worker, traffic)
    # at most what the topic holds (the produced responses, plus the ones the worker itself
    # re-published to their id's partition)
    written = sum((await topic_ends(kafka_bootstrap, responses)).values())
    assert 0 < behind <= written, f"lag on {responses} while draining: {behind} of {written}"
    # the KPIs can match a moment before the last partials (e.g. no-op entries) are finished
    deadline = time.monotonic() + 30
    while any((lag := lag_samples(worker.metrics())).values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    inputs = ("raw.ivr", "raw.sms", "raw.email", "responses", "dispatches", "lifecycle")
    expected = {(f"{topic_prefix}{t}", str(p)) for t in inputs for p in range(4)}
    internal = ("internal.kpi-partials", "internal.kpi-parts")
    expected |= {(f"{topic_prefix}{t}", str(p)) for t in internal for p in range(4)}
    assert set(lag) == expected
    assert {k: v for k, v in lag.items() if v} == {}, worker.log_tail()  # drained
    # ... and committed: the group's offsets reach the last record of every input partition
    # (a transaction's commit marker may follow it), so a restart reads none of them again
    committed = await group_offsets(kafka_bootstrap, worker.app_id, responses)
    records_end = await last_records(kafka_bootstrap, responses)
    deadline = time.monotonic() + 30
    while committed != records_end and time.monotonic() < deadline:
        time.sleep(0.5)
        committed = await group_offsets(kafka_bootstrap, worker.app_id, responses)
    assert committed == records_end
