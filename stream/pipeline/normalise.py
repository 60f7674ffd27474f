"""Agents that turn raw channel messages (and direct v1 responses) into canonical responses.

Every message gets exactly one outcome: accepted (a canonical response goes to cx.responses),
opted_out (counted), or invalid (the original bytes go to cx.deadletter with the reason).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import faust
import msgspec

from stream.channels import (
    Accepted,
    OptedOut,
    Outcome,
    Reason,
    Rejected,
    TimeLimits,
    adapt_email,
    adapt_ivr,
    adapt_sms,
)
from stream.pipeline.app import CxApp
from stream.pipeline.deadletter import dead_letter

log = logging.getLogger(__name__)
Adapter = Callable[[bytes, TimeLimits], Outcome]
LONGEST_WINDOW = timedelta(days=7)
_encode = msgspec.json.Encoder().encode


def time_limits(app: CxApp) -> TimeLimits:
    return TimeLimits(
        now=datetime.now(UTC),
        max_future=timedelta(seconds=app.settings.max_future_seconds),
        max_age=LONGEST_WINDOW + timedelta(seconds=app.settings.late_grace_seconds),
    )


def adapters(app: CxApp) -> dict[str, Adapter]:
    questions = app.settings.ivr_questions
    size = app.settings.max_message_bytes
    names = app.names
    return {
        names.raw_ivr: lambda raw, limits: adapt_ivr(raw, limits, questions, size),
        names.raw_sms: lambda raw, limits: adapt_sms(raw, limits, size),
        names.raw_email: lambda raw, limits: adapt_email(raw, limits, size),
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
                outcome = safe_adapt(adapter, event.value, time_limits(app))
                if isinstance(outcome, Accepted):
                    response = outcome.response
                    await responses.send(key=response.response_id.encode(), value=_encode(response))
                    app.metrics.count(event.message.topic, "accepted")
                elif isinstance(outcome, OptedOut):
                    app.metrics.count(event.message.topic, "opted_out")
                else:
                    await reject(app, event, outcome)

        app.agent(source, name=f"normalise-{topic_name}")(normalise)
