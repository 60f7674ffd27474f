"""Synthetic canonical responses for the benchmark, and the window keys they make live.

About 200 bytes each: channel, queue, agent, customer, NPS and CSAT, event times spread over
the last 6 days (inside the 7 d window, so every response counts everywhere it should).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from stream.aggregation.buckets import keys_for
from stream.kpi.segments import response_segments

CHANNELS = ("ivr", "sms", "email", "web")
QUEUES = ("billing", "sales", "support", "retention")
SPREAD_SECONDS = 6 * 86400


@dataclass(frozen=True)
class Mix:
    """Who answers: the key space of the per-agent and per-customer windows."""

    customers: int = 100_000
    agents: int = 50


def response(rng: random.Random, rid: str, occurred_at: datetime, mix: Mix) -> dict[str, object]:
    return {
        "response_id": rid,
        "channel": rng.choice(CHANNELS),
        "occurred_at": occurred_at.isoformat(),
        "scores": {"nps": rng.randint(0, 10), "csat": rng.randint(1, 5)},
        "queue": rng.choice(QUEUES),
        "agent_id": f"agent-{rng.randint(1, mix.agents)}",
        "customer_id": f"cust-{rng.randint(1, mix.customers)}",
    }


def responses(
    count: int, seed: int = 1, mix: Mix = Mix(), now: datetime | None = None
) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs; the same seed and mix give the same responses."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    out = []
    for i in range(count):
        rid = f"bench-{seed}-{i}"
        at = now - timedelta(seconds=rng.uniform(0, SPREAD_SECONDS))
        out.append((rid.encode(), orjson.dumps(response(rng, rid, at, mix))))
    return out


def live_keys(messages: list[tuple[bytes, bytes]], now: float) -> dict[str, int]:
    """Distinct (segment, window, bucket) keys the worker's stage 2 holds for `messages`.

    Uses the project's own segment and bucket functions, so it counts what the tables hold
    (buckets already out of their window at `now` are never written).
    """
    segment_keys: set[bytes] = set()
    customer_keys: set[bytes] = set()
    for _, value in messages:
        r = orjson.loads(value)
        t = datetime.fromisoformat(r["occurred_at"]).timestamp()
        for segment in response_segments(r["channel"], r["queue"], r["agent_id"]):
            segment_keys.update(keys_for(segment, t, now))
        customer_keys.update(keys_for(f"c|{r['customer_id']}", t, now))
    return {
        "segment_buckets": len(segment_keys),
        "customer_buckets": len(customer_keys),
        "total": len(segment_keys) + len(customer_keys),
    }
