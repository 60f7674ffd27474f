"""Agents that turn raw channel messages (and direct v1 responses) into canonical responses.

Every message gets exactly one outcome: accepted (a canonical response goes to cx.responses),
opted_out (counted), or invalid (the original bytes go to cx.deadletter with the reason).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

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


async def reject(app: CxApp, event: faust.EventT, rejected: Rejected) -> None:
    """Send the original message to cx.deadletter, with where it came from and why."""
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
    await app.topics_by_name[app.names.deadletter].send(key=message.key, value=record)
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
    responses = app.topics_by_name[app.names.responses]
    for topic_name, adapter in adapters(app).items():
        source = app.topics_by_name[topic_name]

        async def normalise(stream: faust.StreamT[bytes], adapter: Adapter = adapter) -> None:
            async for event in stream.events():
                outcome = safe_adapt(adapter, event.value, app.settings.time_limits())
                if isinstance(outcome, Accepted):
                    response = outcome.response
                    await responses.send(key=response.response_id.encode(), value=_encode(response))
                    app.metrics.count(event.message.topic, "accepted")
                elif isinstance(outcome, OptedOut):
                    app.metrics.count(event.message.topic, "opted_out")
                else:
                    await reject(app, event, outcome)

        app.agent(source, name=f"normalise-{topic_name}")(normalise)
