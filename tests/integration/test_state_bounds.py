"""Id states are logged per batch, and forgotten once an answer has left every window (RocksDB
state and the log stay bounded)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from stream.aggregation.routing import id_partition
from stream.faustx import decode_state_log
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


async def state_log(bootstrap: str, topic: str) -> tuple[int, dict[bytes, bytes | None]]:
    """The state log read as recovery reads it: its record count, and each id's last state."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    records = 0
    latest: dict[bytes, bytes | None] = {}
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            for messages in batch.values():
                for message in messages:
                    records += 1
                    latest.update(decode_state_log(message.value))
    finally:
        await consumer.stop()
    return records, latest


async def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        (_, _, _, _, entries), *_ = response[0].resources
        return {name: value for name, value, *_ in entries}
    finally:
        await admin.close()


async def test_id_states_are_logged_per_batch_and_forgotten_once_expired(
    kafka_bootstrap: str, topic_prefix: str, make_worker
):
    grace = WINDOW_PLUS_GRACE - 7 * 86400  # max age = 7 d + grace = a few seconds
    worker = make_worker(CX_LATE_GRACE_SECONDS=str(grace), CX_ID_SWEEP_INTERVAL="2")
    worker.start(wait_for_partitions=4)
    old = [f"old-{i}" for i in range(40)]
    await produce(
        kafka_bootstrap, topic_prefix + "responses", [(r.encode(), response(r)) for r in old]
    )
    topic = f"{worker.app_id}-ids-responses-changelog"
    for _ in range(30):
        records, states = await state_log(kafka_bootstrap, topic)
        if all(states.get(r.encode()) for r in old):
            break
        await asyncio.sleep(0.5)
    assert all(states.get(r.encode()) for r in old), "the ids were never logged"
    assert records < len(old), f"{records} log records for {len(old)} ids: not one per batch"
    # the broker deletes a state once no window can count its answer (the local sweep's
    # horizon plus a margin); lifecycle states are kept for ever
    config = await topic_config(kafka_bootstrap, topic)
    assert config["cleanup.policy"] == "delete"
    assert int(config["retention.ms"]) == (7 * 86400 + grace + 2 * 86400) * 1000
    lifecycle = await topic_config(kafka_bootstrap, f"{worker.app_id}-ids-lifecycle-changelog")
    assert (lifecycle["cleanup.policy"], lifecycle["retention.ms"]) == ("delete", "-1")

    await asyncio.sleep(WINDOW_PLUS_GRACE + 3)
    fresh = [id_on_partition(p, "fresh") for p in range(4)]  # one batch on every partition
    await produce(
        kafka_bootstrap, topic_prefix + "responses", [(r.encode(), response(r)) for r in fresh]
    )
    for _ in range(30):
        _, states = await state_log(kafka_bootstrap, topic)
        if all(states.get(r.encode(), b"") is None for r in old):
            break
        await asyncio.sleep(0.5)
    # the sweep logged each forgotten id's deletion: a recovering worker forgets it too
    assert [r for r in old if states.get(r.encode(), b"") is not None] == []
    assert all(states.get(r.encode()) for r in fresh)
