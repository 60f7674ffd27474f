"""The largest partial record a round can make fits the partials topic's record limit.

The sums of one round that reach one state record travel in one partial record, never split
(stream.aggregation.stage1.PartialsBuilder). That record is largest when every answer of a
round (ROUND_RECORDS) is a revision that moves an earlier answer from one new member of a group
to another in the same bucket: two entries per answer (the removal and the addition) in one
group bucket, with names of the longest label made of 4-byte UTF-8 characters and every score
present. If a change to the round size, the labels' length or the summary's slots made it
exceed PARTIAL_RECORD_MAX_BYTES / 1.5, takes could be refused for their size: this test fails
first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from stream.aggregation.messages import IdState
from stream.aggregation.stage1 import Stage1Plan, plan_batch
from stream.models import SurveyResponse
from stream.pipeline.batches import ROUND_RECORDS
from stream.pipeline.topics import PARTIAL_RECORD_MAX_BYTES
from stream.worker import app, engine

WIDE = "\U0001d52e"  # 4 bytes in UTF-8
LABEL_MAX = 64  # stream.models.types.Label


def longest_label(prefix: str, i: int) -> str:
    return f"{prefix}{i:05d}".ljust(LABEL_MAX, WIDE)


def answers(now: datetime, revision: int = 0) -> list[tuple[int, bytes]]:
    out = []
    for i in range(ROUND_RECORDS):
        response = {
            "response_id": f"size-{i}", "channel": "web", "revision": revision,
            "occurred_at": (now - timedelta(seconds=1)).isoformat(),
            "scores": {
                "nps": i % 11, "csat": 1 + i % 5, "ces": 1 + i % 7, "thumbs": bool(i % 2),
                "csi": {f"attr-{a}": {"perceived": 1 + a, "expected": 10 - a} for a in range(9)},
                "acsi": {"satisfaction": 9, "expectation": 7, "ideal": 8},
            },
            "queue": longest_label(f"q{revision}", i), "agent_id": longest_label(f"a{revision}", i),
            "customer_id": longest_label("c", i),
        }  # fmt: skip
        msgspec.convert(response, SurveyResponse)  # valid, as the worker will find it
        out.append((revision * ROUND_RECORDS + i, msgspec.json.encode(response)))
    return out


def test_the_largest_round_record_fits_the_partials_record_limit() -> None:
    limits = app.settings.time_limits()
    states: dict[bytes, IdState] = {}

    def plan(revision: int) -> Stage1Plan:
        planned = plan_batch(
            "responses:0", 0, answers(limits.now, revision), engine.parse_response, limits,
            lambda keys: [states.get(k) for k in keys], lambda keys: [0] * len(keys),
            engine.owner_of, shards=app.settings.partitions,
        )  # fmt: skip
        states.update(planned.states)
        return planned

    assert plan(0).outcomes == {"accepted": ROUND_RECORDS}
    revised = plan(1)
    assert revised.outcomes == {"revised": ROUND_RECORDS}
    records = [p for partials in revised.partials.values() for p in partials]
    # One group bucket's sums: a removal and an addition per answer, in one record.
    assert max(len(p.entries) for p in records) == 2 * ROUND_RECORDS
    largest = max(len(msgspec.msgpack.encode(p)) for p in records)
    assert largest > 3_000_000  # the case is as large as meant
    assert largest * 1.5 < PARTIAL_RECORD_MAX_BYTES, (largest, PARTIAL_RECORD_MAX_BYTES)
