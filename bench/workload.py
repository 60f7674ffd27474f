"""Synthetic canonical responses for the benchmarks and tests, and the window keys they make live.

`responses`: about 200 bytes each: channel, queue, agent, customer, NPS and CSAT, event times
spread over the last 6 days (inside the 7 d window, so every response counts everywhere it
should). `name_flood`: answers that each name a new agent and a new queue (the cardinality
attack of tests/reliability, bench/read_side.py, tests/integration/test_large_partials.py).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from stream.aggregation.buckets import keys_for
from stream.kpi.segments import response_segments

CHANNELS = ("ivr", "sms", "email", "web")
QUEUES = ("billing", "sales", "support", "retention")
SPREAD_SECONDS = 6 * 86400
# A flood's answers are at most this old: each is in every window, the 5 m one too, as long as
# the worker counts them within a minute of `now`.
FLOOD_SPREAD_SECONDS = 240


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


def name_flood(
    count: int,
    now: datetime,
    *,
    id_prefix: str = "flood",
    run: str = "",
    name_length: int | None = None,
    scrambled: bool = True,
) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs of `count` answers, each naming a new agent and a new queue.

    Answer i: response id (also the key) `<id_prefix>-<run>-<i>`, channel `CHANNELS[i % 4]`,
    CSAT `1 + i % 5`, no customer; queue `queue-<run>-<i>` and agent `agent-<run>-<i>`, or with
    `name_length`, `q<run>-<i:07d>` and `a<run>-<i:07d>` padded with "x" and "y" to that many
    characters (longer only if the number needs it). Without a `run`, its "<run>-" is left out.
    `scrambled` (the default) puts answer i `(i * 7919) % 240` seconds before `now`, with NPS
    `(i * 7) % 11`; otherwise `i % 240` seconds, with NPS `i % 11`. No randomness: the same
    arguments give the same bytes.
    """
    tag = f"{run}-" if run else ""
    time_step, nps_step = (7919, 7) if scrambled else (1, 1)
    out = []
    for i in range(count):
        rid = f"{id_prefix}-{tag}{i}"
        if name_length is None:
            queue, agent = f"queue-{tag}{i}", f"agent-{tag}{i}"
        else:
            queue = f"q{tag}{i:07d}".ljust(name_length, "x")
            agent = f"a{tag}{i:07d}".ljust(name_length, "y")
        value = {
            "response_id": rid,
            "channel": CHANNELS[i % 4],
            "occurred_at": (
                now - timedelta(seconds=(i * time_step) % FLOOD_SPREAD_SECONDS)
            ).isoformat(),
            "scores": {"nps": (i * nps_step) % 11, "csat": 1 + i % 5},
            "queue": queue,
            "agent_id": agent,
        }
        out.append((rid.encode(), orjson.dumps(value)))
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


def shaped(count: int, shape: str) -> list[tuple[bytes, bytes]]:
    """`count` bench responses: "spread" over six days, or "live" (event times in the last
    four minutes)."""
    if shape == "spread":
        return responses(count)
    # live: the same responses, with event times in the last 4 minutes
    now = datetime.now(UTC)
    out = []
    for i, (key, value) in enumerate(responses(count)):
        record = json.loads(value)
        record["occurred_at"] = (now - timedelta(seconds=(i * 7919) % 240)).isoformat()
        out.append((key, json.dumps(record).encode()))
    return out
