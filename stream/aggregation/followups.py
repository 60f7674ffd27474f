"""Closed-loop follow-ups: which responses ask for a call back, and which revisions cancel
one (pure).

A detractor answer (NPS 0-6) gets one follow-up on cx.followups, unless it is older than the
follow-up horizon (`CX_FOLLOWUP_MAX_AGE`, 48 h by default: a backfill of last week's answers
must not ring anyone today). A later revision of the same response_id that is no detractor
any more publishes a retraction (`retracted` true) for it, whatever the age: cancelling a
call-back that was never requested costs its consumer nothing.
"""

from __future__ import annotations

from stream.aggregation.messages import Contribution
from stream.kpi import summary
from stream.kpi.nps import DETRACTOR_MAX, is_detractor
from stream.models import SurveyResponse
from stream.models.followup import Followup

_DETRACTOR_SLOTS = frozenset(range(summary.NPS, summary.NPS + DETRACTOR_MAX + 1))


def detractor_score(contribution: Contribution | None) -> int | None:
    """The NPS score of a stored contribution if it is a detractor's, else None."""
    if contribution is None:
        return None
    delta = contribution.delta
    for i in range(0, len(delta), 2):
        if int(delta[i]) in _DETRACTOR_SLOTS and delta[i + 1] > 0:
            return int(delta[i]) - summary.NPS
    return None


def followup_of(
    response: SurveyResponse, previous: Contribution | None, now: float, max_age: float
) -> Followup | None:
    """The follow-up record `response` calls for: a call-back, a retraction, or nothing.

    `previous`: the contribution this response replaces (a revision), else None.
    """
    nps = response.scores.nps
    if nps is not None and is_detractor(nps):
        if now - response.occurred_at.timestamp() > max_age:
            return None
        return _record(response, nps, retracted=False)
    retracted = detractor_score(previous)
    if retracted is None:
        return None
    return _record(response, nps if nps is not None else retracted, retracted=True)


def _record(response: SurveyResponse, nps: int, retracted: bool) -> Followup:
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
        retracted=retracted,
    )
