"""IVR keypresses (cx.raw.ivr) -> SurveyResponse.

Each configured question key (default 1->nps, 2->csat, 3->ces) holds the DTMF string typed by the
caller. A trailing "#" terminator is dropped, then unanswered keys ("", "*", "#", "timeout", so
also "*#") are skipped. A call with no usable answer is rejected as `no_answer`; one bad answer
rejects the call.
"""

from __future__ import annotations

from collections.abc import Mapping

from stream.channels.decode import decode
from stream.channels.outcome import Accepted, Outcome, Reason, Rejected, TimeLimits
from stream.channels.scales import answer_scores, check_score
from stream.models import IvrCall, SurveyResponse

DEFAULT_QUESTIONS: Mapping[str, str] = {"1": "nps", "2": "csat", "3": "ces"}
_UNANSWERED = frozenset({"", "*", "#", "timeout", "t"})


def parse_keypresses(dtmf: str) -> int | Rejected | None:
    """The number typed, None when unanswered, or a rejection."""
    text = dtmf.strip().lower().rstrip("#")
    if text in _UNANSWERED:  # also "*#", "##": a skip followed by the terminator
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 2:
        return Rejected(Reason.INVALID_VALUE, "IVR answer is not a 1-2 digit keypress")
    return int(text)


def adapt_ivr(
    raw: bytes,
    limits: TimeLimits,
    questions: Mapping[str, str] = DEFAULT_QUESTIONS,
    max_bytes: int = 65536,
) -> Outcome:
    call = decode(raw, IvrCall, max_bytes)
    if isinstance(call, Rejected):
        return call
    if (late := limits.check(call.ended_at)) is not None:
        return late
    answers: dict[str, int] = {}
    for key, dtmf in call.digits.items():
        kind = questions.get(key)
        if kind is None:
            continue
        value = parse_keypresses(dtmf)
        if isinstance(value, Rejected):
            return value
        if value is None:
            continue
        if (bad := check_score(kind, value)) is not None:
            return bad
        answers[kind] = value
    if not answers:
        return Rejected(Reason.NO_ANSWER, "the call has no answered survey question")
    return Accepted(
        SurveyResponse(
            response_id=f"ivr:{call.call_id}",
            channel="ivr",
            occurred_at=call.ended_at,
            scores=answer_scores(answers),
            customer_id=call.customer_id,
            queue=call.queue,
            agent_id=call.agent_id,
        )
    )
