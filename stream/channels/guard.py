"""Run an adapter so that a bug in it rejects one message instead of stopping a worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from stream.channels.outcome import Reason, Rejected, TimeLimits

log = logging.getLogger(__name__)
T = TypeVar("T")


def guarded(
    adapter: Callable[[bytes, TimeLimits], T], raw: object, limits: TimeLimits
) -> T | Rejected:
    """`adapter(raw, limits)`, or a rejection when there is no value or the adapter raises."""
    if not isinstance(raw, bytes):
        return Rejected(Reason.NOT_JSON, "message has no value")
    try:
        return adapter(raw, limits)
    except Exception as exc:  # a poison message must never stop the worker
        # The type only: the message (and so the exception text) may hold personal data.
        log.exception("adapter failed on a message (%s)", type(exc).__name__)
        return Rejected(Reason.INTERNAL_ERROR, f"adapter raised {type(exc).__name__}")
