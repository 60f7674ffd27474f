"""HTTP ingestion on a real worker: auth, size limit, bad bodies, and payloads through Kafka."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tests.support.kafka_io import read_exactly
from tests.support.worker import Worker

pytestmark = pytest.mark.kafka
TOKEN = "s3cret-token"


def post(worker: Worker, path: str, body: bytes, token: str | None = TOKEN) -> tuple[int, Any]:
    request = urllib.request.Request(f"{worker.url}{path}", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as failure:
        return failure.code, json.loads(failure.read() or b"{}")


def now() -> str:
    return datetime.now(UTC).isoformat()


async def test_ingestion_refuses_bad_requests(topic_prefix: str, make_worker) -> None:
    worker = make_worker(CX_INGEST_TOKEN=TOKEN, CX_INGEST_MAX_BYTES="2000").start(4)
    sms = orjson.dumps({"message_id": "m1", "received_at": now(), "from": "+33600000000",
                        "body": "9", "survey": "nps"})  # fmt: skip
    assert post(worker, "/ingest/sms", sms, token=None)[0] == 401
    assert post(worker, "/ingest/sms", sms, token="wrong")[0] == 401
    status, reply = post(worker, "/ingest/sms", b"[" + b" " * 3000 + b"]")
    assert (status, reply["reason"]) == (413, "too_large")
    status, reply = post(worker, "/ingest/sms", b'{"message_id": ')
    assert (status, reply["reason"]) == (400, "not_json")
    status, reply = post(worker, "/ingest/sms", b"[1, 2]")
    assert (status, reply["reason"]) == (400, "not_object")
    bad = orjson.dumps([orjson.loads(sms), {"message_id": "m2", "received_at": now(),
                        "from": "+33600000001", "body": "great", "survey": "nps"}])  # fmt: skip
    status, reply = post(worker, "/ingest/sms", bad)
    assert status == 422
    assert reply["items"] == [
        {"index": 1, "reason": "unparseable_reply", "detail": reply["items"][0]["detail"]}
    ]
    assert "+3360" not in json.dumps(reply)  # no personal data echoed
    assert post(worker, "/ingest/fax", sms)[0] == 404


async def test_ingestion_is_disabled_without_a_token(make_worker) -> None:
    worker = make_worker().start(4)
    status, reply = post(worker, "/ingest/responses", b"{}")
    assert (status, reply["reason"]) == (403, "disabled")


async def test_valid_payloads_reach_kafka(kafka_bootstrap: str, topic_prefix: str, make_worker):
    worker = make_worker(CX_INGEST_TOKEN=TOKEN).start(4)
    at = now()
    payloads = {
        "ivr": [{"call_id": "c1", "ended_at": at, "digits": {"1": "10"}}],
        "sms": [{"message_id": f"m{i}", "received_at": at, "from": "+33600000000",
                 "body": "neuf", "survey": "nps"} for i in range(3)],
        "email": {"event_id": "e1", "submitted_at": at, "survey": "csat", "score": "5"},
        "responses": [{"response_id": "web-1", "channel": "web", "occurred_at": at,
                       "scores": {"thumbs": True}}],
    }  # fmt: skip
    for channel, payload in payloads.items():
        status, reply = post(worker, f"/ingest/{channel}", orjson.dumps(payload))
        assert status == 202, reply
        assert reply["accepted"] == (len(payload) if isinstance(payload, list) else 1)
    responses = await read_exactly(kafka_bootstrap, topic_prefix + "responses", 6)
    keys = sorted(r.key for r in responses)
    assert keys == [b"email:e1", b"ivr:c1", b"sms:m0", b"sms:m1", b"sms:m2", b"web-1"]
    health = worker.health()
    assert health is not None and health["status"] == "ok" and health["brokers"] >= 1
