"""Dispatch v1 (cx.dispatches, key dispatch_id): a survey was offered or sent."""

from __future__ import annotations

import msgspec

from stream.models.types import Channel, Id, Label, Timestamp


class Dispatch(msgspec.Struct, omit_defaults=True):
    dispatch_id: Id
    channel: Channel
    occurred_at: Timestamp
    queue: Label | None = None
    agent_id: Label | None = None
    customer_id: Label | None = None
