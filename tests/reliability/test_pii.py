"""Personal data and secrets never leave through logs, metrics or dead-letter explanations.

A worker logging at debug level (which includes every info record) gets raw IVR, SMS and email
messages full of phone numbers (`ani`, `from`), email addresses (`recipient`, `from`) and
free-text comments: valid ones, malformed ones (dead-lettered), and some through /ingest with
the bearer token. Afterwards none of those values, nor the token, may appear in the worker log,
the /metrics text (label values included), /kpi/all, the ingestion replies, or any dead-letter
record outside its `original` bytes, which must still be exactly what was sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.pipeline.topics import TopicNames
from stream.settings import Settings
from tests.integration.test_exporter import parse
from tests.reliability.test_security import VerboseWorker
from tests.support.kafka_io import produce, read_exactly

pytestmark = pytest.mark.kafka
TOKEN = f"ingest-{secrets.token_hex(12)}"


@dataclass
class Feed:
    """What is sent, and every personal value inside it."""

    raw: dict[str, list[bytes]] = field(default_factory=dict)
    malformed: list[bytes] = field(default_factory=list)
    ingested: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    personal: set[str] = field(default_factory=set)
    contact: set[str] = field(default_factory=set)  # ani / from / recipient: never carried over

    def phone(self, n: int) -> str:
        value = f"+3361{secrets.randbelow(10**7):07d}{n % 10}"
        self.personal.add(value)
        self.contact.add(value)
        return value

    def email(self, n: int) -> str:
        value = f"jane.doe.{n}.{secrets.token_hex(3)}@example.org"
        self.personal.add(value)
        self.contact.add(value)
        return value

    def comment(self, n: int) -> str:
        value = f"Agent was rude, I am Jane Roe {secrets.token_hex(4)}, ring me back {n}"
        self.personal.add(value)
        return value


def iso(seconds_ago: float = 30) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


def build_feed() -> Feed:
    feed = Feed(raw={"ivr": [], "sms": [], "email": []})
    for n in range(6):
        feed.raw["ivr"].append(orjson.dumps({
            "call_id": f"call-{n}", "ended_at": iso(), "digits": {"1": str(n + 4), "2": "4"},
            "ani": feed.phone(n), "queue": "billing",
        }))  # fmt: skip
        feed.raw["sms"].append(orjson.dumps({
            "message_id": f"sms-{n}", "received_at": iso(), "from": feed.phone(n),
            "body": f"{n + 5}/10", "survey": "nps",
        }))  # fmt: skip
        feed.raw["email"].append(orjson.dumps({
            "event_id": f"mail-{n}", "submitted_at": iso(), "survey": "csat", "score": "4",
            "recipient": feed.email(n), "comment": feed.comment(n),
        }))  # fmt: skip
    phone, email, comment = feed.phone(90), feed.email(91), feed.comment(92)
    feed.malformed = [
        # an SMS reply that cannot be read as a score, made of personal data
        orjson.dumps({"message_id": "bad-1", "received_at": iso(), "from": phone,
                      "body": f"call me on {phone} or {email}", "survey": "nps"}),
        # personal data where a score or a string should be
        orjson.dumps({"event_id": "bad-2", "submitted_at": iso(), "survey": "nps",
                      "score": email, "recipient": email, "comment": comment}),
        orjson.dumps({"message_id": "bad-3", "received_at": iso(), "from": [phone],
                      "body": "9", "survey": "nps"}),
        orjson.dumps({"call_id": "bad-4", "ended_at": phone, "digits": {"1": "9"}, "ani": phone}),
        orjson.dumps({"event_id": "bad-5", "submitted_at": iso(-7200), "survey": "nps",
                      "score": "9", "recipient": email, "comment": comment}),  # in the future
        orjson.dumps({"event_id": "bad-6", "submitted_at": iso(), "survey": "nps", "score": 9,
                      "recipient": email, "comment": comment * 40}),  # comment too long
        # not JSON, not UTF-8, not an object
        f"ani={phone}; from={email}; {comment}".encode(),
        b"\xff\xfe" + f"{phone} {email}".encode(),
        orjson.dumps([phone, email, comment]),
    ]  # fmt: skip
    at = iso()
    feed.ingested = {
        "sms": [{"message_id": f"in-sms-{n}", "received_at": at, "from": feed.phone(n + 20),
                 "body": "neuf", "survey": "nps"} for n in range(3)],
        "email": [{"event_id": f"in-mail-{n}", "submitted_at": at, "survey": "nps",
                   "score": 10, "recipient": feed.email(n + 20), "comment": feed.comment(n + 20)}
                  for n in range(3)],
        "ivr": [{"call_id": f"in-call-{n}", "ended_at": at, "digits": {"1": "7"},
                 "ani": feed.phone(n + 30)} for n in range(2)],
    }  # fmt: skip
    return feed


def post(url: str, body: bytes, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as failure:
        return failure.code, failure.read().decode()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return str(reply.read().decode())


async def wait_accepted(
    worker: VerboseWorker, topics: dict[str, int], timeout: float = 60
) -> dict[str, float]:
    """cx_events_total{outcome="accepted"} per raw topic, once each reached its expected count."""
    deadline = time.monotonic() + timeout
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        samples = parse(worker.metrics())
        seen = {topic: samples.get(accepted(topic), 0) for topic in topics}
        if all(seen[t] >= n for t, n in topics.items()):
            return seen
        await asyncio.sleep(0.5)
    return seen


def accepted(topic: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return ("cx_events_total", frozenset({("topic", topic), ("outcome", "accepted")}))


def leaks(text: str, values: set[str]) -> list[str]:
    return sorted(value for value in values if value in text)


async def test_personal_data_and_the_token_stay_out_of_logs_metrics_and_dead_letters(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    feed = build_feed()
    names = TopicNames.from_settings(Settings(topic_prefix=topic_prefix))
    worker = VerboseWorker(
        bootstrap=kafka_bootstrap, prefix=topic_prefix, data_dir=tmp_path / "w1",
        app_id=f"{topic_prefix}app", extra_env={"CX_INGEST_TOKEN": TOKEN}, loglevel="debug",
    )  # fmt: skip
    try:
        worker.start(wait_for_partitions=4, timeout=60)
        topic_of = {"ivr": names.raw_ivr, "sms": names.raw_sms, "email": names.raw_email}
        for channel, messages in feed.raw.items():
            await produce(kafka_bootstrap, topic_of[channel], [(None, m) for m in messages])
        # the malformed ones spread over the three raw topics
        for i, message in enumerate(feed.malformed):
            topic = list(topic_of.values())[i % 3]
            await produce(kafka_bootstrap, topic, [(f"bad-{i}".encode(), message)])

        replies = []
        for channel, items in feed.ingested.items():
            url = f"{worker.url}/ingest/{channel}"
            body = orjson.dumps(items)
            assert post(url, body, None)[0] == 401
            assert post(url, body, f"{TOKEN}x")[0] == 401
            status, reply = post(url, body, TOKEN)
            assert status == 202, reply
            replies.append(reply)
        # refused all-or-nothing: the reply explains why without repeating the values
        rejected = [*feed.ingested["sms"], orjson.loads(feed.malformed[0])]
        status, reply = post(f"{worker.url}/ingest/sms", orjson.dumps(rejected), TOKEN)
        assert status == 422
        replies.append(reply)

        expected = {topic_of[c]: len(feed.raw[c]) + len(feed.ingested[c]) for c in topic_of}
        counted = await wait_accepted(worker, expected)
        assert counted == expected, worker.log_tail()
        dead = await read_exactly(kafka_bootstrap, names.deadletter, len(feed.malformed), 60)
        metrics = worker.metrics()
        kpis = get(f"{worker.url}/kpi/all")
        total = sum(expected.values())
        normalised = await read_exactly(kafka_bootstrap, names.responses, total, 60)
    finally:
        worker.stop()
    log = worker.log()

    secret = {*feed.personal, TOKEN}
    assert "DEBUG" in log and len(log) > 10_000  # really a debug-level log
    assert leaks(log, secret) == []
    assert leaks(metrics, secret) == []
    label_values = {value for _, labels in parse(metrics) for _, value in labels}
    assert leaks(" ".join(label_values), secret) == []
    assert leaks(kpis, secret) == []
    assert leaks("\n".join(replies), secret) == []

    # every dead letter explains itself without personal data, and keeps the exact bytes
    assert len(dead) == len(feed.malformed)
    originals = []
    for record in dead:
        letter = json.loads(record.value)
        originals.append(base64.b64decode(letter.pop("original")))
        assert letter["reason"] and letter["detail"]
        assert leaks(json.dumps(letter), secret) == [], letter
    assert sorted(originals) == sorted(feed.malformed)

    # the normalised responses keep comments but no contact data (ani, from, recipient)
    for record in normalised:
        assert leaks(record.value.decode(), feed.contact) == []
