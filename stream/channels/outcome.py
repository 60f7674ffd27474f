"""What an adapter makes of one raw message: a canonical response, an opt-out, or a rejection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from stream.models import SurveyResponse


class Reason:
    """Machine-readable rejection reasons (the `reason` field of cx.deadletter)."""

    OVERSIZED = "oversized"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    INVALID_VALUE = "invalid_value"
    NO_ANSWER = "no_answer"
    UNPARSEABLE_REPLY = "unparseable_reply"
    FUTURE_TIMESTAMP = "future_timestamp"
    TOO_OLD = "too_old"
    # An adapter raised: a bug of ours, but the message is still kept in cx.deadletter.
    INTERNAL_ERROR = "internal_error"

    ALL = (
        OVERSIZED, NOT_UTF8, NOT_JSON, NOT_OBJECT, MISSING_FIELD, WRONG_TYPE, OUT_OF_RANGE,
        INVALID_VALUE, NO_ANSWER, UNPARSEABLE_REPLY, FUTURE_TIMESTAMP, TOO_OLD, INTERNAL_ERROR,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Accepted:
    response: SurveyResponse


@dataclass(frozen=True, slots=True)
class OptedOut:
    """The customer asked to stop receiving surveys (STOP / ARRET / UNSUBSCRIBE)."""

    response_id: str


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    detail: str


Outcome = Accepted | OptedOut | Rejected


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """How far from `now` an event time may be. Both checks use the adapter's clock."""

    now: datetime
    max_future: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=7, hours=1)

    def check(self, occurred_at: datetime) -> Rejected | None:
        if occurred_at > self.now + self.max_future:
            return Rejected(
                Reason.FUTURE_TIMESTAMP, "event time is more than the allowed skew ahead"
            )
        if occurred_at < self.now - self.max_age:
            return Rejected(
                Reason.TOO_OLD, "event time is older than the longest window plus grace"
            )
        return None
