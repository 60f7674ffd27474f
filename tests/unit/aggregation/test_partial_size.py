"""The largest partial record a round can make fits the partials topic's record limit.

The sums of one round that reach one group record travel in one partial record, never split
(stream.aggregation.stage1.PartialsBuilder). That record is largest when every answer of a
round (ROUND_RECORDS) names a new member of one group, with names of the longest label made of
4-byte UTF-8 characters and every score present. If a change to the round size, the labels'
length or the summary's slots made it exceed PARTIAL_RECORD_MAX_BYTES, takes would be refused
for their size: this test fails first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from stream.aggregation.messages import MAX_ENTRIES
from stream.aggregation.stage1 import plan_batch
from stream.models import SurveyResponse
from stream.pipeline.batches import ROUND_RECORDS
from stream.pipeline.topics import PARTIAL_RECORD_MAX_BYTES
from stream.worker import app, engine

WIDE = "\U0001d52e"  # 4 bytes in UTF-8
LABEL_MAX = 64  # stream.models.types.Label


def longest_label(prefix: str, i: int) -> str:
    return f"{prefix}{i:05d}".ljust(LABEL_MAX, WIDE)


def answers(now: datetime) -> list[tuple[int, bytes]]:
    out = []
    for i in range(ROUND_RECORDS):
        response = {
            "response_id": f"size-{i}", "channel": "web",
            "occurred_at": (now - timedelta(seconds=1)).isoformat(),
            "scores": {
                "nps": i % 11, "csat": 1 + i % 5, "ces": 1 + i % 7, "thumbs": bool(i % 2),
                "csi": {f"attr-{a}": {"perceived": 1 + a, "expected": 10 - a} for a in range(9)},
                "acsi": {"satisfaction": 9, "expectation": 7, "ideal": 8},
            },
            "queue": longest_label("q", i), "agent_id": longest_label("a", i),
            "customer_id": longest_label("c", i),
        }  # fmt: skip
        msgspec.convert(response, SurveyResponse)  # valid, as the worker will find it
        out.append((i, msgspec.json.encode(response)))
    return out


def test_the_largest_round_record_fits_the_partials_record_limit() -> None:
    limits = app.settings.time_limits()
    partitions = app.settings.partitions
    plan = plan_batch(
        "responses:0", 0, answers(limits.now), engine.parse_response, limits,
        lambda keys: [None] * len(keys), lambda keys: [0] * len(keys), engine.owner_of,
        shards=partitions,
    )  # fmt: skip
    assert plan.outcomes == {"accepted": ROUND_RECORDS}
    records = [p for partials in plan.partials.values() for p in partials]
    # One group bucket's sums (a record of their own) and chunks never past MAX_ENTRIES.
    assert max(len(p.entries) for p in records) == MAX_ENTRIES == ROUND_RECORDS
    largest = max(len(msgspec.msgpack.encode(p)) for p in records)
    assert largest > 1_000_000  # the case is as large as meant: over Kafka's default
    assert largest * 1.5 < PARTIAL_RECORD_MAX_BYTES, (largest, PARTIAL_RECORD_MAX_BYTES)
