"""Build the cx.deadletter record of a rejected message (pure; the agent sends it)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from stream.models import DeadLetter, DeadLetterSource

_encoder = msgspec.json.Encoder()


def dead_letter(
    *,
    original: bytes,
    key: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    reason: str,
    detail: str,
) -> bytes:
    record = DeadLetter(
        version=1,
        reason=reason,
        detail=detail,
        source=DeadLetterSource(topic, partition, offset, timestamp_ms),
        original=original,
        original_size=len(original),
        rejected_at=datetime.now(UTC).isoformat(),
        original_key=key,
    )
    return _encoder.encode(record)
