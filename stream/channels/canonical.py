"""cx.responses: systems that speak SurveyResponse v1 directly; validated like every channel."""

from __future__ import annotations

from stream.channels.decode import decode
from stream.channels.outcome import Accepted, Outcome, Rejected, TimeLimits
from stream.models import SurveyResponse


def adapt_canonical(raw: bytes, limits: TimeLimits, max_bytes: int = 65536) -> Outcome:
    response = decode(raw, SurveyResponse, max_bytes)
    if isinstance(response, Rejected):
        return response
    if (late := limits.check(response.occurred_at)) is not None:
        return late
    return Accepted(response)
