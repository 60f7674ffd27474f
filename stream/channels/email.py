"""Email/web survey answers (cx.raw.email) -> SurveyResponse.

`score` is an int or a numeric string holding an integer ("9", " 9 ", "9.0"); anything else is
`invalid_value`, and a number off the survey's scale is `out_of_range`. The recipient address is
never carried into the canonical response.
"""

from __future__ import annotations

from stream.channels.decode import decode
from stream.channels.outcome import Accepted, Outcome, Reason, Rejected, TimeLimits
from stream.channels.scales import answer_scores, check_score
from stream.models import EmailAnswer, SurveyResponse


def parse_score(score: int | str) -> int | Rejected:
    if isinstance(score, int):
        return score
    text = score.strip()
    whole, dot, fraction = text.partition(".")
    if whole.isascii() and whole.isdigit() and (not dot or set(fraction) <= {"0"}):
        return int(whole)
    return Rejected(Reason.INVALID_VALUE, "score is not an integer")


def adapt_email(raw: bytes, limits: TimeLimits, max_bytes: int = 65536) -> Outcome:
    answer = decode(raw, EmailAnswer, max_bytes)
    if isinstance(answer, Rejected):
        return answer
    if (late := limits.check(answer.submitted_at)) is not None:
        return late
    score = parse_score(answer.score)
    if isinstance(score, Rejected):
        return score
    if (bad := check_score(answer.survey, score)) is not None:
        return bad
    return Accepted(
        SurveyResponse(
            response_id=f"email:{answer.dispatch_id or answer.event_id}",
            channel="email",
            occurred_at=answer.submitted_at,
            scores=answer_scores({answer.survey: score}),
            customer_id=answer.customer_id,
            queue=answer.queue,
            agent_id=answer.agent_id,
            comment=answer.comment,
        )
    )
