"""A seeded generator of hostile input for the four topics a worker decodes (raw IVR, SMS, email
and canonical responses), each message with the dead-letter reason the contract, the README and
docs/decisions.md give it, mixed with valid messages (and their canonical form, for the batch
KPIs) and SMS opt-outs.

Every hostile message has exactly one defect, applied to an otherwise valid message, so its
reason is unambiguous.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from tests.support.traffic import QUEUES, SPANS

TOPICS = ("raw.ivr", "raw.sms", "raw.email", "responses")
MAX_BYTES = 65536  # CX_MAX_MESSAGE_BYTES default
IVR_KEYS = {"nps": "1", "csat": "2", "ces": "3"}  # CX_IVR_QUESTIONS default
SCORE_FIELD = {"raw.ivr": None, "raw.sms": "body", "raw.email": "score", "responses": None}
REQUIRED = {
    "raw.ivr": ("call_id", "ended_at", "digits"),
    "raw.sms": ("message_id", "received_at", "from", "body", "survey"),
    "raw.email": ("event_id", "submitted_at", "survey", "score"),
    "responses": ("response_id", "channel", "occurred_at", "scores"),
}
TIME_FIELD = {
    "raw.ivr": "ended_at",
    "raw.sms": "received_at",
    "raw.email": "submitted_at",
    "responses": "occurred_at",
}
ID_FIELD = {
    "raw.ivr": "call_id",
    "raw.sms": "message_id",
    "raw.email": "event_id",
    "responses": "response_id",
}
BAD_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xc0\xaf")


@dataclass(frozen=True)
class Hostile:
    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone
    reason: str
    kind: str  # the defect, for the figures


@dataclass(frozen=True)
class Valid:
    topic: str
    key: bytes | None
    value: bytes
    canonical: dict[str, Any] | None  # None: an SMS opt-out (counted, not a response)


@dataclass
class Corpus:
    hostile: list[Hostile] = field(default_factory=list)
    valid: list[Valid] = field(default_factory=list)

    def responses(self) -> list[dict[str, Any]]:
        return [v.canonical for v in self.valid if v.canonical is not None]


# -- valid messages ---------------------------------------------------------------------------
class Maker:
    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        self.serial = 0

    def ident(self, topic: str) -> str:
        self.serial += 1
        return f"h{topic[-3:]}-{self.serial}"

    def when(self) -> str:
        return (
            self.now - timedelta(seconds=self.rng.uniform(0, self.rng.choice(SPANS)))
        ).isoformat()

    def labels(self) -> dict[str, str]:
        out: dict[str, str] = {"customer_id": f"hc-{self.rng.randint(1, 400)}"}
        if (queue := self.rng.choice(QUEUES)) is not None:
            out["queue"] = queue
        if self.rng.random() < 0.6:
            out["agent_id"] = f"agent-{self.rng.randint(1, 12)}"
        return out

    def survey(self) -> tuple[str, int]:
        kind = self.rng.choice(("nps", "nps", "csat", "ces"))
        low, high = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}[kind]
        return kind, self.rng.randint(low, high)

    def canonical(self, rid: str, channel: str, at: str, scores: dict[str, Any],
                  labels: dict[str, str]) -> dict[str, Any]:  # fmt: skip
        return {"response_id": rid, "channel": channel, "occurred_at": at, "scores": scores,
                **labels}  # fmt: skip

    def valid(self, topic: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """A valid raw message of `topic` and the canonical response it must become."""
        raw: dict[str, Any]
        rid, at, labels = self.ident(topic), self.when(), self.labels()
        if topic == "raw.ivr":
            answers = dict([self.survey() for _ in range(self.rng.randint(1, 3))])
            digits = {IVR_KEYS[k]: str(v) + self.rng.choice(("", "#")) for k, v in answers.items()}
            raw = {"call_id": rid, "ended_at": at, "digits": digits, "ani": "+33612345678",
                   **labels}  # fmt: skip
            return raw, self.canonical(f"ivr:{rid}", "ivr", at, answers, labels)
        if topic == "raw.sms":
            kind, score = self.survey()
            body = self.rng.choice(("{}", "{} !", "I'd say {}", "{}/" + str({"nps": 10, "csat": 5,
                                    "ces": 7}[kind]))).format(score)  # fmt: skip
            raw = {"message_id": rid, "received_at": at, "from": "+33698765432", "body": body,
                   "survey": kind, **labels}  # fmt: skip
            return raw, self.canonical(f"sms:{rid}", "sms", at, {kind: score}, labels)
        if topic == "raw.email":
            kind, score = self.survey()
            value: int | str = score if self.rng.random() < 0.5 else f" {score} "
            raw = {"event_id": rid, "submitted_at": at, "survey": kind, "score": value,
                   "recipient": "jane.doe@example.com", **labels}  # fmt: skip
            return raw, self.canonical(f"email:{rid}", "email", at, {kind: score}, labels)
        scores = dict([self.survey() for _ in range(self.rng.randint(1, 3))])
        if self.rng.random() < 0.2:
            scores["thumbs"] = self.rng.random() < 0.6
        channel = self.rng.choice(("ivr", "sms", "email", "web"))
        response = self.canonical(rid, channel, at, scores, labels)
        return response, response


def key_of(topic: str, raw: dict[str, Any], rng: random.Random) -> bytes | None:
    if rng.random() < 0.05:
        return None
    value = raw.get(ID_FIELD[topic])
    return value.encode() if isinstance(value, str) else b"k"


# -- defects: (topic, raw valid message, rng) -> (bytes | None, reason) ------------------------
Defect = Callable[[str, dict[str, Any], random.Random, "Maker"], tuple[bytes | None, str]]


def _dumps(raw: dict[str, Any]) -> bytes:
    return orjson.dumps(raw)


def _with_token(raw: dict[str, Any], path: tuple[str, ...], token: bytes) -> bytes:
    """`raw` serialised with the value at `path` replaced by the raw JSON `token`."""
    marker = "@@TOKEN@@"
    copy = orjson.loads(orjson.dumps(raw))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = marker
    return _dumps(copy).replace(f'"{marker}"'.encode(), token)


def _number_path(topic: str, raw: dict[str, Any]) -> tuple[str, ...]:
    if topic == "raw.ivr":
        return ("digits", next(iter(raw["digits"])))
    if topic == "responses":
        return ("scores", next(iter(raw["scores"])))
    return (SCORE_FIELD[topic] or "",)


def bad_utf8(topic: str, raw: dict[str, Any], rng: random.Random, m: Maker) -> tuple[bytes, str]:
    field_name = ID_FIELD[topic]
    text = _dumps(raw)
    original = f'"{raw[field_name]}"'.encode()
    broken = original[:-1] + rng.choice(BAD_UTF8) + b'"'
    return text.replace(original, broken, 1), "not_utf8"


def binary(topic: str, raw: dict[str, Any], rng: random.Random, m: Maker) -> tuple[bytes, str]:
    return b"\xfe\xff" + rng.randbytes(rng.randint(0, 3000)), "not_utf8"


def nul_bytes(topic: str, raw: dict[str, Any], rng: random.Random, m: Maker) -> tuple[bytes, str]:
    return b"\x00" * rng.randint(1, 2000), "not_json"


def empty(topic: str, raw: dict[str, Any], rng: random.Random, m: Maker) -> tuple[bytes, str]:
    return b"", "not_json"


def tombstone(topic: str, raw: dict[str, Any], rng: random.Random, m: Maker) -> tuple[None, str]:
    return None, "not_json"


def truncated(topic: str, raw: dict[str, Any], rng: random.Random, m: Maker) -> tuple[bytes, str]:
    text = _dumps(raw)
    return text[: rng.randint(1, len(text) - 1)], "not_json"


def not_object(topic: str, raw: dict[str, Any], rng: random.Random, m: Maker) -> tuple[bytes, str]:
    choices = [b"null", b"[]", b"[1, 2]", b"42", b"-0.5", b'"text"', b"true",
               orjson.dumps([raw]), orjson.dumps(str(raw))]  # fmt: skip
    return rng.choice(choices), "not_object"


def nan_infinity(
    topic: str, raw: dict[str, Any], rng: random.Random, m: Maker
) -> tuple[bytes, str]:
    token = rng.choice((b"NaN", b"Infinity", b"-Infinity", b"nan", b"inf"))
    return _with_token(raw, _number_path(topic, raw), token), "not_json"


def deep_nesting(
    topic: str, raw: dict[str, Any], rng: random.Random, m: Maker
) -> tuple[bytes, str]:
    if rng.random() < 0.5:  # both kinds stay under the size limit, so the depth is the defect
        depth = rng.randint(1024, 30_000)
        nested = b"[" * depth + b"]" * depth
    else:
        depth = rng.randint(1024, 10_000)
        nested = b'{"a":' * depth + b"1" + b"}" * depth
    return _with_token(raw, ("extra",), nested), "not_json"


def oversized(topic: str, raw: dict[str, Any], rng: random.Random, m: Maker) -> tuple[bytes, str]:
    return _dumps({**raw, "padding": "x" * rng.randint(MAX_BYTES, MAX_BYTES + 20_000)}), "oversized"


def missing(topic: str, raw: dict[str, Any], rng: random.Random, m: Maker) -> tuple[bytes, str]:
    drop = rng.choice(REQUIRED[topic])
    return _dumps({k: v for k, v in raw.items() if k != drop}), "missing_field"


def too_old(topic: str, raw: dict[str, Any], rng: random.Random, m: Maker) -> tuple[bytes, str]:
    back = rng.choice(("1970-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00",
                       (m.now - timedelta(days=rng.uniform(7.1, 3650))).isoformat()))  # fmt: skip
    return _dumps({**raw, TIME_FIELD[topic]: back}), "too_old"


def future(topic: str, raw: dict[str, Any], rng: random.Random, m: Maker) -> tuple[bytes, str]:
    later = m.now + timedelta(seconds=rng.uniform(1800, 10**9))
    ahead = rng.choice(("9999-12-31T23:59:59Z", later.isoformat()))
    return _dumps({**raw, TIME_FIELD[topic]: ahead}), "future_timestamp"


def bad_timestamp(
    topic: str, raw: dict[str, Any], rng: random.Random, m: Maker
) -> tuple[bytes, str]:
    text = rng.choice(("yesterday", "2024-13-45T00:00:00Z", "2024-01-01T00:00:00",
                       "10000-01-01T00:00:00Z", "2024-01-01T00:00:00+25:00", ""))  # fmt: skip
    return _dumps({**raw, TIME_FIELD[topic]: text}), "invalid_value"


def huge_number(topic: str, raw: dict[str, Any], rng: random.Random, m: Maker) -> tuple[bytes, str]:
    return _with_token(raw, _number_path(topic, raw), b"1e400"), "invalid_value"


def duplicate_keys_bad(
    topic: str, raw: dict[str, Any], rng: random.Random, m: Maker
) -> tuple[bytes, str]:
    """A repeated key whose last value is invalid: the last one wins, so it is rejected."""
    path = _number_path(topic, raw)
    first = orjson.dumps(_get(raw, path))
    last, reason = {
        "raw.ivr": (b'"12"', "out_of_range"),
        "raw.sms": (b'"great service"', "unparseable_reply"),
        "raw.email": (b"11", "out_of_range"),
        "responses": (b"11", "out_of_range"),
    }[topic]
    name = orjson.dumps(path[-1])
    return _with_token(raw, path, first + b"," + name + b":" + last), reason


def _get(raw: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = raw
    for part in path:
        value = value[part]
    return value


@dataclass(frozen=True)
class RawJson:
    """A JSON value orjson cannot write (an integer beyond 64 bits), spliced in as text."""

    text: bytes


WRONG_TYPES: dict[str, list[tuple[tuple[str, ...], Any]]] = {
    "raw.ivr": [(("call_id",), 5), (("call_id",), None), (("digits",), ["9"]), (("digits",), "9"),
                (("digits", "1"), 9), (("ended_at",), 1_700_000_000), (("queue",), 7),
                (("agent_id",), True), (("digits", "1"), {"a": 1})],
    "raw.sms": [(("body",), 5), (("from",), 33612345678), (("survey",), 1), (("message_id",), []),
                (("received_at",), None), (("queue",), {"q": 1})],
    "raw.email": [(("score",), [9]), (("score",), 9.5), (("score",), True), (("event_id",), 12),
                  (("survey",), None), (("comment",), 5)],
    "responses": [(("scores",), "9"), (("scores", "nps"), "9"), (("scores", "thumbs"), "yes"),
                  (("revision",), "1"), (("channel",), 3), (("occurred_at",), 1.7e9),
                  (("customer_id",), 42), (("scores", "nps"), 9.0), (("scores", "nps"), True)],
}  # fmt: skip
OUT_OF_RANGE: dict[str, list[tuple[tuple[str, ...], Any]]] = {
    "raw.ivr": [(("digits",), {"1": "11"}), (("digits",), {"1": "12"}), (("digits",), {"2": "6"}),
                (("digits",), {"2": "0"}), (("digits",), {"3": "8"}), (("digits",), {"1": "99#"}),
                (("call_id",), "c" * 121), (("queue",), "q" * 65), (("digits",), {"1": "9" * 17})],
    "raw.sms": [(("body", "survey"), ("11", "nps")), (("body", "survey"), ("42 !", "nps")),
                (("body", "survey"), ("6", "csat")), (("body", "survey"), ("0", "csat")),
                (("body", "survey"), ("8", "ces")), (("body",), "x" * 1601),
                (("message_id",), "")],
    "raw.email": [(("score", "survey"), (11, "nps")), (("score", "survey"), (-3, "nps")),
                  (("score", "survey"), ("11", "nps")), (("score", "survey"), (6, "csat")),
                  (("score", "survey"), (0, "ces")), (("comment",), "c" * 2001),
                  (("score",), RawJson(b"1" + b"0" * 30))],
    "responses": [(("scores",), {"nps": 11}), (("scores",), {"nps": -1}),
                  (("scores",), {"csat": 0}), (("scores",), {"csat": 6}),
                  (("scores",), {"ces": 8}), (("revision",), -1),
                  (("scores",), RawJson(b'{"nps": 1' + b"0" * 30 + b"}")), (("response_id",), ""),
                  (("response_id",), "r" * 129), (("comment",), "c" * 60_000),
                  (("scores",), {"csi": {"speed": {"perceived": 0, "expected": 3}}}),
                  (("scores",), {"acsi": {"satisfaction": 11, "expectation": 5, "ideal": 5}})],
}  # fmt: skip
INVALID_VALUE: dict[str, list[tuple[tuple[str, ...], Any]]] = {
    "raw.ivr": [(("digits",), {"1": "abc"}), (("digits",), {"1": "-1"}), (("digits",), {"1": "9*"}),
                (("digits",), {"1": "٩"})],
    "raw.sms": [(("survey",), "nps2"), (("survey",), "NPS")],
    "raw.email": [(("score",), "nine"), (("score",), "-3"), (("score",), "9.5"),
                  (("score",), "NaN"), (("survey",), "rating")],
    "responses": [(("channel",), "fax"), (("scores",), {}), (("scores",), {"nps": None})],
}  # fmt: skip
OTHER: dict[str, list[tuple[tuple[str, ...], Any, str]]] = {
    "raw.ivr": [(("digits",), {}, "no_answer"), (("digits",), {"1": "*", "2": "#", "3": ""},
                "no_answer"), (("digits",), {"9": "5"}, "no_answer"),
                (("digits",), {"1": "timeout"}, "no_answer")],
    "raw.sms": [(("body",), "great service", "unparseable_reply"),
                (("body",), "8 or 9", "unparseable_reply"), (("body",), "7.5", "unparseable_reply"),
                (("body",), "", "unparseable_reply"),
                (("body",), "¯\\_(ツ)_/¯", "unparseable_reply"),
                (("body", "survey"), ("9/5", "nps"), "unparseable_reply")],
}  # fmt: skip


def _set(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    copy = orjson.loads(orjson.dumps(raw))
    if len(path) == 2 and path[0] in ("body", "score"):  # (score field, survey) pairs
        copy[path[0]], copy[path[1]] = value
        return copy
    target = copy
    for part in path[:-1]:
        target = target[part]
    if value is _MISSING:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return copy


_MISSING = object()


def _table_defect(table: dict[str, list[tuple[tuple[str, ...], Any]]], reason: str) -> Defect:
    def defect(topic: str, raw: dict[str, Any], rng: random.Random, m: Maker) -> tuple[bytes, str]:
        path, value = rng.choice(table[topic])
        if isinstance(value, RawJson):
            return _with_token(raw, path, value.text), reason
        return _dumps(_set(raw, path, value)), reason

    defect.__name__ = reason
    return defect


def other_reasons(
    topic: str, raw: dict[str, Any], rng: random.Random, m: Maker
) -> tuple[bytes, str]:
    path, value, reason = rng.choice(OTHER[topic])
    return _dumps(_set(raw, path, value)), reason


GENERIC: list[Defect] = [bad_utf8, binary, nul_bytes, empty, tombstone, truncated, not_object,
                         nan_infinity, deep_nesting, oversized, missing, too_old, future,
                         bad_timestamp, huge_number, duplicate_keys_bad,
                         _table_defect(WRONG_TYPES, "wrong_type"),
                         _table_defect(OUT_OF_RANGE, "out_of_range"),
                         _table_defect(INVALID_VALUE, "invalid_value")]  # fmt: skip


def defects_for(topic: str) -> list[Defect]:
    return [*GENERIC, other_reasons] if topic in OTHER else list(GENERIC)


def defect_name(defect: Defect) -> str:
    return getattr(defect, "__name__", "defect")


HEAVY = {"oversized", "deep_nesting", "binary", "nul_bytes"}  # large messages: picked less often


def pick_defect(topic: str, rng: random.Random) -> Defect:
    defects = defects_for(topic)
    weights = [0.25 if defect_name(d) in HEAVY else 1.0 for d in defects]
    return rng.choices(defects, weights)[0]


# -- valid messages with a repeated key: the last one wins -------------------------------------
def duplicate_keys_valid(topic: str, raw: dict[str, Any], canonical: dict[str, Any]) -> bytes:
    """`raw` with its score given twice, the real one last (the last one wins, so it counts as
    `canonical` says). The first value has the field's type; on the raw channels it is not a
    usable answer, on cx.responses it is another score in range (see test_hostile_input)."""
    path = _number_path(topic, raw)
    if topic == "responses":
        first = orjson.dumps(other_score(path[-1], _get(raw, path)))
    else:
        first = {"raw.ivr": b'"12"', "raw.sms": b'"great service"', "raw.email": b"11"}[topic]
    name = orjson.dumps(path[-1])
    real = orjson.dumps(_get(raw, path))
    return _with_token(raw, path, first + b"," + name + b":" + real)


def other_score(kind: str, score: int) -> int:
    """Another score on `kind`'s scale."""
    low, high = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}[kind]
    return low + (score - low + 1) % (high - low + 1)


def generate(seed: int, now: datetime, hostile: int, valid: int, opt_outs: int) -> Corpus:
    rng = random.Random(seed)
    maker = Maker(rng, now)
    corpus = Corpus()
    for _ in range(hostile):
        topic = rng.choice(TOPICS)
        raw, _canonical = maker.valid(topic)
        defect = pick_defect(topic, rng)
        value, reason = defect(topic, raw, rng, maker)
        key = key_of(topic, raw, rng)
        if value is None and key is None:  # Kafka needs a key or a value
            key = b"tombstone"
        corpus.hostile.append(Hostile(topic, key, value, reason,
                                      defect_name(defect)))  # fmt: skip
    for i in range(valid):
        topic = rng.choice(TOPICS)
        raw, canonical = maker.valid(topic)
        body = duplicate_keys_valid(topic, raw, canonical) if i % 10 == 0 else _dumps(raw)
        corpus.valid.append(Valid(topic, key_of(topic, raw, rng), body, canonical))
    for _ in range(opt_outs):
        raw, _canonical = maker.valid("raw.sms")
        raw["body"] = rng.choice(("STOP", "stop please", "Arrêt", "UNSUBSCRIBE"))
        corpus.valid.append(Valid("raw.sms", key_of("raw.sms", raw, rng), _dumps(raw), None))
    return corpus
