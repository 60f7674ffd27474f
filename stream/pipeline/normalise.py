"""Agents that turn raw channel messages into canonical responses, a batch at a time.

Every message gets exactly one outcome: accepted (a canonical response goes to cx.responses),
opted_out (counted), or invalid (the original bytes go to cx.deadletter with the reason).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from stream.aggregation.routing import id_partitions
from stream.channels import Accepted, OptedOut, Outcome, Rejected, TimeLimits
from stream.channels.guard import guarded
from stream.faustx import RecordBatch, confirmed, send_batched
from stream.pipeline.app import CxApp
from stream.pipeline.batches import batch_agent, pass_turn, rounds
from stream.pipeline.deadletter import dead_letter

log = logging.getLogger(__name__)
Adapter = Callable[[bytes, TimeLimits], Outcome]
_encode = msgspec.json.Encoder().encode


def adapters(app: CxApp) -> dict[str, Adapter]:
    """Raw topic -> its channel's adapter."""
    by_channel = app.settings.channel_adapters()
    names = app.names
    return {
        names.raw_ivr: by_channel["ivr"],
        names.raw_sms: by_channel["sms"],
        names.raw_email: by_channel["email"],
    }


async def reject(
    app: CxApp, record: Any, rejected: Rejected, producer: Any = None
) -> Awaitable[Any]:
    """Send the original message to cx.deadletter, with where it came from and why, through
    `producer` (an aiokafka producer, e.g. a transaction's) or the app's.

    Returns the delivery future: the caller awaits it before its batch's offsets may commit.
    """
    key = record.key if isinstance(record.key, bytes) else None
    value = dead_letter(
        original=record.value if isinstance(record.value, bytes) else b"",
        key=key,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp if record.timestamp else None,
        reason=rejected.reason,
        detail=rejected.detail,
    )
    if producer is not None:
        delivered = await producer.send(app.names.deadletter, value, key=key)
    else:
        delivered = await app.producer.send(app.names.deadletter, key, value, None, None, None)
    app.metrics.count(record.topic, "invalid")
    app.metrics.deadletters.labels(record.topic, rejected.reason).inc()
    # Only the reason and coordinates are logged: payloads may hold personal data.
    log.info(
        "dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset,
        rejected.reason,
    )  # fmt: skip
    return delivered


def register_normalisers(app: CxApp) -> None:
    for topic, adapter in adapters(app).items():

        async def handle(batches: list[RecordBatch], adapter: Adapter = adapter) -> None:
            await normalise_batches(app, adapter, batches)

        batch_agent(app, topic, f"normalise-{topic}", handle)


async def normalise_batches(app: CxApp, adapter: Adapter, batches: list[RecordBatch]) -> None:
    """Adapt the batches and wait until the broker has every response and dead letter they
    made: only then may their offsets commit, so a crash never loses one."""
    limits = app.settings.time_limits()
    sent: list[Awaitable[Any]] = []
    counts: Counter[str] = Counter()
    settings = app.settings
    accepted: list[tuple[bytes, bytes]] = []
    for batch in (b for round_ in rounds(batches) for b in round_):
        for record in batch.records:
            outcome = guarded(adapter, record.value, limits)
            if isinstance(outcome, Accepted):
                accepted.append((outcome.response.response_id.encode(), _encode(outcome.response)))
                counts["accepted"] += 1
            elif isinstance(outcome, OptedOut):
                counts["opted_out"] += 1
            else:
                sent.append(await reject(app, record, outcome))
        await pass_turn()
    # Straight to each id's stage-1 partition (the configured id partitioner).
    homes = id_partitions(
        [key for key, _ in accepted], settings.partitions, settings.id_partitioner
    )
    canonical: dict[int, list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
    for (key, value), home in zip(accepted, homes.tolist(), strict=True):
        canonical[home].append((key, value))
    outgoing = [
        one
        for partition, items in canonical.items()
        for one in await send_batched(app, app.names.responses, partition, items)
    ]
    for outcome_name, n in counts.items():
        app.metrics.count(batches[0].tp.topic, outcome_name, n)
    if sent:
        await asyncio.gather(*sent)
    await confirmed(outgoing)
