"""Agents that turn raw channel messages (and direct v1 responses) into canonical responses.

Every message gets exactly one outcome: accepted (a canonical response goes to cx.responses),
opted_out (counted), or invalid (the original bytes go to cx.deadletter with the reason).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import msgspec

from stream.channels import (
    Accepted,
    OptedOut,
    Outcome,
    Reason,
    Rejected,
    TimeLimits,
)
from stream.pipeline.app import CxApp
from stream.pipeline.deadletter import dead_letter
from stream.pipeline.events import BATCH_MAX, BATCH_WITHIN, in_order

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


async def reject(app: CxApp, event: faust.EventT, rejected: Rejected) -> Awaitable[Any]:
    """Send the original message to cx.deadletter, with where it came from and why.

    Returns the delivery future: the caller awaits it before its batch's offsets may commit.
    """
    message = event.message
    record = dead_letter(
        original=message.value if isinstance(message.value, bytes) else bytes(message.value or b""),
        key=message.key if isinstance(message.key, bytes) else None,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
        reason=rejected.reason,
        detail=rejected.detail,
    )
    key = message.key if isinstance(message.key, bytes) else None
    delivered = await app.producer.send(app.names.deadletter, key, record, None, None, None)
    app.metrics.count(message.topic, "invalid")
    app.metrics.deadletters.labels(message.topic, rejected.reason).inc()
    # Only the reason and coordinates are logged: payloads may hold personal data.
    log.info(
        "dead-lettered %s[%d]@%d: %s",
        message.topic,
        message.partition,
        message.offset,
        rejected.reason,
    )
    return delivered


def safe_adapt(adapter: Adapter, raw: object, limits: TimeLimits) -> Outcome:
    """Run an adapter; a bug in it dead-letters the message instead of killing the agent."""
    if not isinstance(raw, bytes):
        return Rejected(Reason.NOT_JSON, "message has no value")
    try:
        return adapter(raw, limits)
    except Exception as exc:  # a poison message must never stop the worker
        log.exception("adapter failed on a message (%s)", type(exc).__name__)
        return Rejected(Reason.INTERNAL_ERROR, f"adapter raised {type(exc).__name__}")


def register_normalisers(app: CxApp) -> None:
    order = in_order(app)
    for topic_name, adapter in adapters(app).items():
        source = app.topics_by_name[topic_name]
        order.watch(topic_name)

        async def normalise(stream: faust.StreamT[bytes], adapter: Adapter = adapter) -> None:
            async for batch in order.batches(stream, BATCH_MAX, BATCH_WITHIN):
                await normalise_batch(app, adapter, batch)

        app.agent(source, name=f"normalise-{topic_name}")(normalise)


async def normalise_batch(app: CxApp, adapter: Adapter, batch: list[faust.EventT]) -> None:
    """Adapt a batch and wait until the broker has every response and dead letter it made:
    only then may the batch's offsets commit, so a crash never loses one."""
    limits = app.settings.time_limits()
    sent: list[Awaitable[Any]] = []
    for event in batch:
        outcome = safe_adapt(adapter, event.value, limits)
        if isinstance(outcome, Accepted):
            response = outcome.response
            sent.append(
                await app.producer.send(
                    app.names.responses, response.response_id.encode(), _encode(response),
                    None, None, None,
                )
            )  # fmt: skip
            app.metrics.count(event.message.topic, "accepted")
        elif isinstance(outcome, OptedOut):
            app.metrics.count(event.message.topic, "opted_out")
        else:
            sent.append(await reject(app, event, outcome))
    if sent:
        await asyncio.gather(*sent)
