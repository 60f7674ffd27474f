"""Produce to and read back from the real broker, with bounded waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from stream.settings import KafkaSettings


def client_kwargs(bootstrap: str, security: KafkaSettings | None) -> dict[str, Any]:
    """Connection settings: `security`'s (SASL/SSL) when given, else plain `bootstrap`."""
    kwargs = security.aiokafka_kwargs() if security is not None else {}
    return {**kwargs, "bootstrap_servers": bootstrap}


async def produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    security: KafkaSettings | None = None,
) -> int:
    producer = AIOKafkaProducer(**client_kwargs(bootstrap, security), acks="all", linger_ms=5)
    await producer.start()
    count = 0
    try:
        batch = []
        for key, value in messages:
            batch.append(await producer.send(topic, value=value, key=key))
            count += 1
        await asyncio.gather(*batch)
    finally:
        await producer.stop()
    return count


async def read_exactly(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout: float = 180.0,
    settle: float = 1.0,
    security: KafkaSettings | None = None,
) -> list[ConsumerRecord]:
    """Every record of `topic` from the start, once `expected` arrived and nothing more came
    within `settle` seconds (so too many records fail the test instead of going unseen)."""
    consumer = AIOKafkaConsumer(
        topic,
        **client_kwargs(bootstrap, security),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            fresh = [record for batch in batches.values() for record in batch]
            records.extend(fresh)
            if len(records) >= expected:
                if fresh or quiet_since is None:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= settle:
                    break
    finally:
        await consumer.stop()
    return records
