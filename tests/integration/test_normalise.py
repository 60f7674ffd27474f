"""Raw IVR/SMS/email through a real worker and broker: canonical out, bad input dead-lettered."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import msgspec
import orjson
import pytest

from stream.models import DeadLetter, SurveyResponse
from tests.support.kafka_io import produce, read_exactly

pytestmark = pytest.mark.kafka

NOW = datetime.now(UTC)
AT = NOW.isoformat()


def ivr(call_id: str, **digits: str) -> bytes:
    return orjson.dumps(
        {
            "call_id": call_id,
            "ended_at": AT,
            "digits": digits,
            "ani": "+33612345678",
            "queue": "billing",
        }
    )


def sms(message_id: str, body: str, survey: str = "nps", **extra: str) -> bytes:
    return orjson.dumps(
        {
            "message_id": message_id,
            "received_at": AT,
            "from": "+33698765432",
            "body": body,
            "survey": survey,
            **extra,
        }
    )


def email(event_id: str, score: object, survey: str = "csat", **extra: object) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "submitted_at": AT,
            "survey": survey,
            "score": score,
            "recipient": "jane.doe@example.com",
            **extra,
        }
    )


VALID = {
    "raw.ivr": [
        (b"c1", ivr("c1", **{"1": "9", "2": "4"})),
        (b"c2", ivr("c2", **{"1": "10#", "3": "*"})),
    ],
    "raw.sms": [
        (b"m1", sms("m1", "9/10")),
        (b"m2", sms("m2", "neuf !", dispatch_id="d2")),
        (b"m3", sms("m3", "I'd say 4", survey="csat")),
    ],
    "raw.email": [(b"e1", email("e1", "5")), (b"e2", email("e2", 3, dispatch_id="d9"))],
}
OPTED_OUT = [(b"m4", sms("m4", "STOP"))]
BAD = {
    "raw.ivr": [(b"c3", ivr("c3", **{"1": "12"})), (b"c4", b"\xff\xfe not utf-8")],
    "raw.sms": [(b"m5", sms("m5", "great service")), (b"m6", b'{"message_id": ')],
    "raw.email": [
        (b"e3", email("e3", 9)),
        (
            b"e4",
            orjson.dumps(
                {
                    "event_id": "e4",
                    "submitted_at": (NOW + timedelta(hours=1)).isoformat(),
                    "survey": "nps",
                    "score": 9,
                }
            ),
        ),
    ],
}
EXPECTED_IDS = {
    "ivr:c1": {"nps": 9, "csat": 4},
    "ivr:c2": {"nps": 10},
    "sms:m1": {"nps": 9},
    "sms:d2": {"nps": 9},
    "sms:m3": {"csat": 4},
    "email:e1": {"csat": 5},
    "email:d9": {"csat": 3},
}
EXPECTED_REASONS = {
    b"c3": "out_of_range",
    b"c4": "not_utf8",
    b"m5": "unparseable_reply",
    b"m6": "not_json",
    b"e3": "out_of_range",
    b"e4": "future_timestamp",
}


async def test_raw_channels_are_normalised_and_bad_input_dead_lettered(
    kafka_bootstrap: str, topic_prefix: str, make_worker
) -> None:
    worker = make_worker().start(wait_for_partitions=4)
    for name, messages in VALID.items():
        await produce(kafka_bootstrap, topic_prefix + name, messages + BAD[name])
    await produce(kafka_bootstrap, topic_prefix + "raw.sms", OPTED_OUT)

    responses = await read_exactly(kafka_bootstrap, topic_prefix + "responses", len(EXPECTED_IDS))
    decoded = {r.key.decode(): msgspec.json.decode(r.value, type=SurveyResponse) for r in responses}
    assert len(responses) == len(EXPECTED_IDS)
    assert {rid: msgspec.to_builtins(r.scores) for rid, r in decoded.items()} == EXPECTED_IDS
    assert decoded["ivr:c1"].queue == "billing"
    assert all(b"+336" not in r.value and b"@example.com" not in r.value for r in responses)

    dead = await read_exactly(kafka_bootstrap, topic_prefix + "deadletter", len(EXPECTED_REASONS))
    letters = {r.key: msgspec.json.decode(r.value, type=DeadLetter) for r in dead}
    assert {key: letter.reason for key, letter in letters.items()} == EXPECTED_REASONS
    originals = {key: value for batch in BAD.values() for key, value in batch}
    for key, letter in letters.items():
        assert letter.original == originals[key]  # the exact bytes, nothing lost
        assert letter.source.topic.startswith(topic_prefix + "raw.")
        assert letter.source.offset >= 0 and 0 <= letter.source.partition < 4
        assert b"+336" not in letter.detail.encode() and b"@" not in letter.detail.encode()
    raw = orjson.loads(dead[0].value)
    assert base64.b64decode(raw["original"]) == letters[dead[0].key].original

    text = worker.metrics()
    p = topic_prefix
    for line in (
        f'cx_events_total{{outcome="accepted",topic="{p}raw.ivr"}} 2.0',
        f'cx_events_total{{outcome="invalid",topic="{p}raw.ivr"}} 2.0',
        f'cx_events_total{{outcome="accepted",topic="{p}raw.sms"}} 3.0',
        f'cx_events_total{{outcome="opted_out",topic="{p}raw.sms"}} 1.0',
        f'cx_events_total{{outcome="invalid",topic="{p}raw.email"}} 2.0',
        f'cx_events_total{{outcome="accepted",topic="{p}responses"}} 7.0',
    ):
        assert line in text, f"{line!r} missing from /metrics:\n{text}"


async def test_poison_messages_do_not_stop_the_worker(
    kafka_bootstrap: str, topic_prefix: str, make_worker
) -> None:
    worker = make_worker().start(wait_for_partitions=4)
    poison = [b"", b"null", b"[]" * 1, b"[" * 60_000, b'{"a": NaN}', b"\x00" * 1000, b"x" * 70_000]
    bad = [(f"p{i}".encode(), value) for i, value in enumerate(poison)]
    good = [(b"after", sms("after", "10"))]
    await produce(kafka_bootstrap, topic_prefix + "raw.sms", bad + good)
    dead = await read_exactly(kafka_bootstrap, topic_prefix + "deadletter", len(bad))
    assert sorted(r.key for r in dead) == sorted(key for key, _ in bad)
    by_key = {r.key: msgspec.json.decode(r.value, type=DeadLetter) for r in dead}
    assert by_key[b"p6"].reason == "oversized"
    assert all(by_key[key].original == value for key, value in bad)
    responses = await read_exactly(kafka_bootstrap, topic_prefix + "responses", 1)
    assert [r.key for r in responses] == [b"sms:after"]
    assert worker.process is not None and worker.process.poll() is None
