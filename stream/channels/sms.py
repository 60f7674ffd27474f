"""SMS free-text replies (cx.raw.sms) -> SurveyResponse, or an opt-out.

Accepted bodies hold exactly one number on the survey's scale, written as digits ("9", "10!!",
"I'd say 8"), as a fraction of the scale's maximum ("9/10", "4/5"), or as an English or French
number word ("nine", "neuf", "dix"). STOP / ARRET / UNSUBSCRIBE (any case, accents ignored) is an
opt-out. Anything else (no number, two different numbers, decimals) is `unparseable_reply`.
"""

from __future__ import annotations

import re
import unicodedata

from stream.channels.decode import decode
from stream.channels.outcome import Accepted, OptedOut, Outcome, Reason, Rejected, TimeLimits
from stream.channels.scales import SCALES, answer_scores, check_score
from stream.models import SmsReply, SurveyResponse

OPT_OUT_WORDS = frozenset({"stop", "arret", "arreter", "unsubscribe", "stopall", "desabonner"})
NUMBER_WORDS: dict[str, int] = {
    # English
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    # French (accents are stripped before lookup: zéro -> zero)
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5,
    "sept": 7, "huit": 8, "neuf": 9, "dix": 10,
}  # fmt: skip

_FRACTION = re.compile(r"(\d+)\s*/\s*(\d+)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# A minus sign (ASCII, U+2212 or an en dash) before a number, not between two numbers ("9-10").
_NEGATIVE = re.compile(r"(?:^|[^\w])[-\u2212\u2013]\s*\d")
_WORD = re.compile(r"[a-z]+")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def is_opt_out(body: str) -> bool:
    words = _WORD.findall(_fold(body))
    return bool(words) and words[0] in OPT_OUT_WORDS and len(words) <= 3


def parse_reply(body: str, survey: str) -> int | Rejected:
    """The one score a free-text reply carries on `survey`'s scale."""
    text = _fold(body)
    high = SCALES[survey][1]
    values: set[int] = set()
    for numerator, denominator in _FRACTION.findall(text):
        if int(denominator) != high:
            return Rejected(Reason.UNPARSEABLE_REPLY, f"fraction is not out of {high}")
        values.add(int(numerator))
    text = _FRACTION.sub(" ", text)
    if _NEGATIVE.search(text):
        return Rejected(Reason.OUT_OF_RANGE, "reply holds a negative number")
    for number in _NUMBER.findall(text):
        if not number.isdigit() or len(number) > 3:
            return Rejected(Reason.UNPARSEABLE_REPLY, "reply holds a number that is not a score")
        values.add(int(number))
    values.update(NUMBER_WORDS[w] for w in _WORD.findall(text) if w in NUMBER_WORDS)
    if len(values) != 1:
        why = "no score" if not values else "more than one score"
        return Rejected(Reason.UNPARSEABLE_REPLY, f"reply holds {why}")
    return values.pop()


def adapt_sms(raw: bytes, limits: TimeLimits, max_bytes: int = 65536) -> Outcome:
    reply = decode(raw, SmsReply, max_bytes)
    if isinstance(reply, Rejected):
        return reply
    response_id = f"sms:{reply.dispatch_id or reply.message_id}"
    if (late := limits.check(reply.received_at)) is not None:
        return late
    if is_opt_out(reply.body):
        return OptedOut(response_id)
    score = parse_reply(reply.body, reply.survey)
    if isinstance(score, Rejected):
        return score
    if (bad := check_score(reply.survey, score)) is not None:
        return bad
    return Accepted(
        SurveyResponse(
            response_id=response_id,
            channel="sms",
            occurred_at=reply.received_at,
            scores=answer_scores({reply.survey: score}),
            customer_id=reply.customer_id,
            queue=reply.queue,
            agent_id=reply.agent_id,
        )
    )
