"""Every topic of the contract, with the partition count the project declares for it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from stream.settings import KafkaSettings, Settings

# Largest partial record (stage 1 -> stage 2). The sums that reach one group record (e.g. every
# queue of a round in one bucket of queue="all"'s group) are never split across records, so
# under a flood of names one record holds an entry per name of a 4,000-record round: up to
# about 1 MB with 64-character names, above the broker's default 1 MB limit (a take that
# could never be sent). The partials topic and the transactional producers allow this much;
# the consumer's fetch size stays at Faust's 1 MiB per partition (more multiplies the records
# buffered per fetch: peak RSS 1 GB under the million-name flood), since the broker returns a
# partition's first record batch whole even when it is larger (KIP-74).
PARTIAL_RECORD_MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class TopicNames:
    raw_ivr: str
    raw_sms: str
    raw_email: str
    responses: str
    dispatches: str
    lifecycle: str
    deadletter: str
    snapshots: str
    followups: str
    # Internal: stage-1 -> stage-2 partial sums; stage-2 partitions' parts -> the final step.
    partials: str
    parts: str

    @classmethod
    def from_settings(cls, settings: Settings) -> TopicNames:
        t = settings.topic
        return cls(
            raw_ivr=t("raw.ivr"),
            raw_sms=t("raw.sms"),
            raw_email=t("raw.email"),
            responses=t("responses"),
            dispatches=t("dispatches"),
            lifecycle=t("lifecycle"),
            deadletter=t("deadletter"),
            snapshots=t("kpi.snapshots"),
            followups=t("followups"),
            partials=t("internal.kpi-partials"),
            parts=t("internal.kpi-parts"),
        )

    def all(self) -> list[str]:
        return list(vars(self).values())


async def ensure_topics(settings: Settings, kafka: KafkaSettings) -> list[str]:
    """Create the contract's topics that do not exist yet, with `settings.partitions` each.

    The broker does not auto-create topics (its default partition count would not match the
    changelogs Faust derives from them); producers and the worker call this first.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    names = TopicNames.from_settings(settings).all()
    admin = AIOKafkaAdminClient(**kafka.aiokafka_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing:
            partials = TopicNames.from_settings(settings).partials
            configs = {partials: {"max.message.bytes": str(PARTIAL_RECORD_MAX_BYTES)}}
            new = [NewTopic(name, settings.partitions, 1, topic_configs=configs.get(name, {}))
                   for name in missing]  # fmt: skip
            response = await admin.create_topics(new)
            for name, code, *_ in getattr(response, "topic_errors", []):
                if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS (a concurrent creator won)
                    raise RuntimeError(f"could not create topic {name}: error code {code}")
            await _until_described(admin, missing)
        return missing
    finally:
        await admin.close()


async def _until_described(admin: Any, topics: list[str], timeout: float = 30.0) -> None:
    """Wait until the broker's metadata shows every partition of `topics` with a leader: a
    consumer that subscribes before that (the worker, right after) is assigned nothing until
    its next metadata refresh, minutes later, and a producer logs errors meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        described = await admin.describe_topics(topics)
        ready = {
            t["topic"]
            for t in described
            if t.get("error_code") == 0
            and t.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in t["partitions"])
        }
        if ready >= set(topics) or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.2)
