"""The readiness probe against the real broker: it counts the brokers on its first answer, and
after that asks for no topic's metadata (aiokafka's describe_cluster asks for every topic of
the cluster, which grows with the cluster, not with the worker)."""

from __future__ import annotations

from typing import Any

import pytest

from stream.pipeline.health import BrokerProbe, new_admin, probe_once
from stream.settings import KafkaSettings

pytestmark = pytest.mark.kafka


class CountingAdmin:
    """A real admin client whose metadata requests are counted by the topics they ask for."""

    def __init__(self, admin: Any) -> None:
        self.admin = admin
        self.asked: list[list[str] | None] = []

    async def describe_cluster(self) -> dict[str, Any]:
        self.asked.append(None)  # None: every topic
        return dict(await self.admin.describe_cluster())

    async def describe_topics(self, topics: list[str]) -> list[Any]:
        self.asked.append(list(topics))
        return list(await self.admin.describe_topics(topics))


async def test_the_probe_counts_brokers_once_then_asks_for_no_topic(kafka_bootstrap: str) -> None:
    admin = new_admin(KafkaSettings(bootstrap_servers=kafka_bootstrap), timeout=10.0)
    await admin.start()
    counting = CountingAdmin(admin)
    probe = BrokerProbe()
    try:
        await probe_once(counting, probe, 10.0)  # type: ignore[arg-type]
        first = probe.answered_at
        await probe_once(counting, probe, 10.0)  # type: ignore[arg-type]
    finally:
        await admin.close()
    assert probe.error is None and probe.brokers == 1
    assert first is not None and probe.answered_at is not None and probe.answered_at > first
    assert counting.asked == [None, []]


async def test_after_a_failed_probe_the_brokers_are_counted_again(kafka_bootstrap: str) -> None:
    admin = new_admin(KafkaSettings(bootstrap_servers=kafka_bootstrap), timeout=10.0)
    await admin.start()
    counting = CountingAdmin(admin)
    probe = BrokerProbe(answered_at=1.0, brokers=3, error="KafkaConnectionError")
    try:
        await probe_once(counting, probe, 10.0)  # type: ignore[arg-type]
    finally:
        await admin.close()
    assert (probe.error, probe.brokers, counting.asked) == (None, 1, [None])
