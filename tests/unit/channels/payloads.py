"""Shared fixtures of the channel adapter tests: a fixed clock, valid raw documents, helpers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from stream.channels import (
    Outcome,
    Rejected,
    TimeLimits,
    adapt_canonical,
    adapt_email,
    adapt_ivr,
    adapt_sms,
)

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
LIMITS = TimeLimits(now=NOW)
# Ten minutes before NOW, written with a non-UTC offset that the response must keep.
AT = "2025-01-15T13:50:00+02:00"
AT_DT = datetime(2025, 1, 15, 11, 50, tzinfo=UTC)

# Personal data that must never reach a canonical response or a rejection detail.
PHONE = "+33612345678"
EMAIL = "jane.doe@example.com"

Adapter = Callable[..., Outcome]
ADAPTERS: dict[str, Adapter] = {
    "ivr": adapt_ivr,
    "sms": adapt_sms,
    "email": adapt_email,
    "canonical": adapt_canonical,
}
# The field holding the event time, per adapter.
TIME_FIELD = {
    "ivr": "ended_at",
    "sms": "received_at",
    "email": "submitted_at",
    "canonical": "occurred_at",
}
REQUIRED = {
    "ivr": ("call_id", "ended_at", "digits"),
    "sms": ("message_id", "received_at", "from", "body", "survey"),
    "email": ("event_id", "submitted_at", "survey", "score"),
    "canonical": ("response_id", "channel", "occurred_at", "scores"),
}


def ivr_doc(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "call_id": "call-1",
        "ended_at": AT,
        "digits": {"1": "9", "2": "4", "3": "6"},
        "ani": PHONE,
        "queue": "billing",
        "agent_id": "agent-7",
        "customer_id": "cust-42",
    }
    doc.update(fields)
    return doc


def sms_doc(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "message_id": "msg-1",
        "received_at": AT,
        "from": PHONE,
        "body": "9",
        "survey": "nps",
        "queue": "billing",
        "agent_id": "agent-7",
        "customer_id": "cust-42",
    }
    doc.update(fields)
    return doc


def email_doc(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": "evt-1",
        "submitted_at": AT,
        "survey": "nps",
        "score": 9,
        "recipient": EMAIL,
        "queue": "billing",
        "agent_id": "agent-7",
        "customer_id": "cust-42",
    }
    doc.update(fields)
    return doc


def canonical_doc(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "response_id": "resp-1",
        "channel": "web",
        "occurred_at": AT,
        "scores": {"nps": 9},
    }
    doc.update(fields)
    return doc


DOCS: dict[str, Callable[..., dict[str, Any]]] = {
    "ivr": ivr_doc,
    "sms": sms_doc,
    "email": email_doc,
    "canonical": canonical_doc,
}


def encode(doc: object) -> bytes:
    """JSON bytes as a producer would send them (UTF-8, non-ASCII kept as is)."""
    return json.dumps(doc, ensure_ascii=False).encode()


def without(doc: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in names}


def ts(moment: datetime) -> str:
    return moment.isoformat()


def assert_rejected(outcome: Outcome, reason: str) -> Rejected:
    assert isinstance(outcome, Rejected), outcome
    assert outcome.reason == reason, outcome
    assert outcome.detail, "a rejection always explains itself"
    return outcome


def assert_no_personal_data(outcome: Outcome, *secrets: str) -> None:
    """Neither a rejection detail nor anything else printable of the outcome holds `secrets`."""
    text = repr(outcome)
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked into {outcome!r}"
