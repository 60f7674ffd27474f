"""Lifecycle v1 (cx.lifecycle, key customer_id): a customer was activated or cancelled."""

from __future__ import annotations

from typing import Literal

import msgspec

from stream.models.types import Id, Label, Timestamp


class LifecycleEvent(msgspec.Struct):
    event_id: Id
    customer_id: Label
    type: Literal["activated", "cancelled"]
    occurred_at: Timestamp
