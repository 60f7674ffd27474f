"""Dead-letter record v1 (cx.deadletter, key = the original key): a rejected input, kept whole."""

from __future__ import annotations

import msgspec


class DeadLetterSource(msgspec.Struct):
    """Where the rejected message was read from."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


class DeadLetter(msgspec.Struct):
    """`original` holds the exact bytes that were rejected, base64 encoded.

    `reason` is a machine-readable code (`Reason` in stream/channels/outcome.py); `detail` is a
    short explanation that never repeats input values, so personal data cannot leak through it.
    """

    version: int
    reason: str
    detail: str
    source: DeadLetterSource
    original: bytes
    original_size: int
    rejected_at: str
    original_key: bytes | None = None
