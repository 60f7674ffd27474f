"""SMS free-text replies (cx.raw.sms) -> SurveyResponse, or an opt-out.

Accepted bodies hold exactly one number on the survey's scale, written as digits ("9", "10!!",
"I'd say 8", "je mets 8"), as a fraction of the scale's maximum ("9/10", "4/5", "9 out of 10",
"8 sur 10", "neuf sur dix"), or as an English or French number word ("nine", "neuf", "dix").
A body that starts with an opt-out word (STOP, ARRET, ARRETEZ, UNSUBSCRIBE, ...; any case,
accents ignored) is an opt-out, whatever follows ("Stop sending me these", "STOP please"):
people who write it want no more surveys, and an opt-out is never to be missed. Anything else
(no number, two different numbers, decimals) is `unparseable_reply`.
"""

from __future__ import annotations

import re
import unicodedata

from stream.channels.decode import decode
from stream.channels.outcome import Accepted, OptedOut, Outcome, Reason, Rejected, TimeLimits
from stream.channels.scales import SCALES, answer_scores, check_score
from stream.models import SmsReply, SurveyResponse

# English and French opt-out words, accents folded ("Arrêtez" -> "arretez").
OPT_OUT_WORDS = frozenset(
    {
        "stop", "stopall", "unsubscribe", "optout",
        "arret", "arrete", "arretez", "arreter", "arretes",
        "desabonner", "desabonnez", "desabonnement", "desinscrire", "desinscrivez",
    }
)  # fmt: skip
NUMBER_WORDS: dict[str, int] = {
    # English
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    # French (accents are stripped before lookup: zéro -> zero)
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5,
    "sept": 7, "huit": 8, "neuf": 9, "dix": 10,
}  # fmt: skip

_WORDS = "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))  # longest first: "une" before "un"
_TERM = rf"\d+|(?<![a-z])(?:{_WORDS})(?![a-z])"
# "9/10", "9 out of 10", "8 sur 10", "neuf sur dix": a score and the scale's maximum.
_FRACTION = re.compile(rf"({_TERM})\s*(?:/|(?<![a-z])(?:out\s+of|sur)(?![a-z]))\s*({_TERM})")
# "je mets un 8": "un"/"une" before a number is the article, not the number one.
_ARTICLE = re.compile(rf"(?<![a-z])une?\s+(?={_TERM})")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# A minus sign (ASCII, U+2212 or an en dash) before a number, not between two numbers ("9-10").
_NEGATIVE = re.compile(r"(?:^|[^\w])[-\u2212\u2013]\s*\d")
_WORD = re.compile(r"[a-z]+")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def is_opt_out(body: str) -> bool:
    """The body starts with an opt-out word (any case, accents and punctuation ignored)."""
    text = _fold(body)
    first = _WORD.search(text)
    if first is None or first.group() not in OPT_OUT_WORDS:
        return False
    # only spaces and punctuation before it: "don't stop", "9 stop" are no opt-outs
    return not any(c.isalnum() for c in text[: first.start()])


def parse_reply(body: str, survey: str) -> int | Rejected:
    """The one score a free-text reply carries on `survey`'s scale."""
    text = _ARTICLE.sub(" ", _fold(body))
    high = SCALES[survey][1]
    values: set[int] = set()
    for numerator, denominator in _FRACTION.findall(text):
        if _term(denominator) != high:
            return Rejected(Reason.UNPARSEABLE_REPLY, f"fraction is not out of {high}")
        values.add(_term(numerator))
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


def _term(term: str) -> int:
    return int(term) if term.isdigit() else NUMBER_WORDS[term]


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
