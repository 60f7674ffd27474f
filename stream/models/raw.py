"""Raw channel payloads as the call-center systems send them (cx.raw.ivr, .sms, .email)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from stream.models.types import Comment, Label, RawId, SurveyKind, Timestamp

DtmfString = Annotated[str, msgspec.Meta(max_length=16)]


class IvrCall(msgspec.Struct):
    """Post-call keypresses: question key -> DTMF string (e.g. {"1": "9", "2": "4"})."""

    call_id: RawId
    ended_at: Timestamp
    digits: dict[Annotated[str, msgspec.Meta(max_length=8)], DtmfString]
    ani: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    queue: Label | None = None
    agent_id: Label | None = None
    customer_id: Label | None = None


class SmsReply(msgspec.Struct):
    """An inbound SMS reply to a survey question; `body` is free text."""

    message_id: RawId
    received_at: Timestamp
    sender: Annotated[str, msgspec.Meta(max_length=32)] = msgspec.field(name="from")
    body: Annotated[str, msgspec.Meta(max_length=1600)]
    survey: SurveyKind
    dispatch_id: RawId | None = None
    queue: Label | None = None
    agent_id: Label | None = None
    customer_id: Label | None = None


class EmailAnswer(msgspec.Struct):
    """A submitted email/web survey answer; `score` is an int or a numeric string."""

    event_id: RawId
    submitted_at: Timestamp
    survey: SurveyKind
    score: int | Annotated[str, msgspec.Meta(max_length=16)]
    dispatch_id: RawId | None = None
    recipient: Annotated[str, msgspec.Meta(max_length=320)] | None = None
    queue: Label | None = None
    agent_id: Label | None = None
    customer_id: Label | None = None
    comment: Comment | None = None
