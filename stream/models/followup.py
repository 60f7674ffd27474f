"""Follow-up v1 (cx.followups, key response_id): call this detractor back, or no longer."""

from __future__ import annotations

from typing import Annotated

import msgspec

from stream.models.types import Channel, Id, Label, NpsScore, Revision

# The response's occurred_at as sent (RFC 3339 text): a follow-up repeats it, never reparses it.
TimestampText = Annotated[
    str,
    msgspec.Meta(
        description="RFC 3339 timestamp with a UTC offset",
        extra_json_schema={"format": "date-time"},
    ),
]


class Followup(msgspec.Struct, omit_defaults=True):
    """Call this detractor (NPS 0-6) back. Ids only: no comment, no contact data.

    One record per detractor response. When a later revision of the same response_id makes it
    a non-detractor (NPS 7-10, or no NPS answer), a second record is published for that
    response_id with `retracted` true, `revision` and `nps` of the revision that retracts it:
    whoever consumes cx.followups cancels the call-back (a retraction whose revision has no NPS
    answer repeats the retracted score in `nps`). Keyed by response_id, so the latest record of
    a response is its current state.
    """

    response_id: Id
    occurred_at: TimestampText
    channel: Channel
    nps: NpsScore
    revision: Revision
    customer_id: Label | None = None
    interaction_id: Label | None = None
    queue: Label | None = None
    agent_id: Label | None = None
    retracted: bool = False
