"""Id state is forgotten once an answer has left every window (RocksDB state stays bounded)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from stream.aggregation.messages import id_partition
from tests.support.kafka_io import produce

pytestmark = pytest.mark.kafka
WINDOW_PLUS_GRACE = 12  # seconds: the worker below treats answers older than this as expired


def response(rid: str) -> bytes:
    now = datetime.now(UTC).isoformat()
    return orjson.dumps(
        {"response_id": rid, "channel": "web", "occurred_at": now, "scores": {"nps": 9}}
    )


def id_on_partition(partition: int, prefix: str) -> str:
    n = 0
    while id_partition(f"{prefix}-{n}".encode(), 4) != partition:
        n += 1
    return f"{prefix}-{n}"


async def changelog(bootstrap: str, topic: str) -> dict[bytes, bytes | None]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    latest: dict[bytes, bytes | None] = {}
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            for records in batch.values():
                latest.update((r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    return latest


async def test_expired_ids_are_forgotten(kafka_bootstrap: str, topic_prefix: str, make_worker):
    grace = WINDOW_PLUS_GRACE - 7 * 86400  # max age = 7 d + grace = a few seconds
    worker = make_worker(CX_LATE_GRACE_SECONDS=str(grace), CX_ID_SWEEP_INTERVAL="2")
    worker.start(wait_for_partitions=4)
    old = [f"old-{i}" for i in range(40)]
    await produce(
        kafka_bootstrap, topic_prefix + "responses", [(r.encode(), response(r)) for r in old]
    )
    topic = f"{worker.app_id}-ids-responses-changelog"
    for _ in range(30):
        states = await changelog(kafka_bootstrap, topic)
        if all(states.get(r.encode()) for r in old):
            break
        await asyncio.sleep(0.5)
    assert all(states.get(r.encode()) for r in old), "the ids were never stored"

    await asyncio.sleep(WINDOW_PLUS_GRACE + 3)
    fresh = [id_on_partition(p, "fresh") for p in range(4)]  # one batch on every partition
    await produce(
        kafka_bootstrap, topic_prefix + "responses", [(r.encode(), response(r)) for r in fresh]
    )
    for _ in range(30):
        states = await changelog(kafka_bootstrap, topic)
        if all(states.get(r.encode(), b"") is None for r in old):
            break
        await asyncio.sleep(0.5)
    assert [r for r in old if states.get(r.encode(), b"") is not None] == []
    assert all(states.get(r.encode()) for r in fresh)
