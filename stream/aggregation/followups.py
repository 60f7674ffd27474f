"""Closed-loop follow-ups: which responses ask for a call back (pure)."""

from __future__ import annotations

import msgspec

from stream.kpi.nps import is_detractor
from stream.models import SurveyResponse


class Followup(msgspec.Struct, omit_defaults=True):
    """cx.followups v1: call this detractor back. Ids only: no comment, no contact data."""

    response_id: str
    occurred_at: str
    channel: str
    nps: int
    revision: int
    customer_id: str | None = None
    interaction_id: str | None = None
    queue: str | None = None
    agent_id: str | None = None


def followup_of(response: SurveyResponse) -> Followup | None:
    nps = response.scores.nps
    if nps is None or not is_detractor(nps):
        return None
    return Followup(
        response.response_id,
        response.occurred_at.isoformat(),
        response.channel,
        nps,
        response.revision,
        response.customer_id,
        response.interaction_id,
        response.queue,
        response.agent_id,
    )
