"""Deterministic test traffic: responses with duplicates, revisions, late and mis-keyed messages,
dispatches and customer lifecycles, all relative to a given `now`.

`Population` says who answers: how many customers and agents, and which share of all answers
goes to one hot queue and one hot agent (the skewed traffic of the scale-out test and bench).
The default population gives exactly the traffic the tests were written against.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

CHANNELS = ("ivr", "sms", "email", "web")
QUEUES = ("billing", "sales", "support", None)
SPANS = (240, 3000, 82800, 561600)  # seconds back: inside 5m, 1h, 24h and 7d windows


@dataclass(frozen=True)
class Population:
    """Who answers. A `skew` share of all answers goes to `hot_queue` and `hot_agent`; the rest
    spread uniformly over the other queues (or none) and the other agents (or none)."""

    customers: int = 3000
    agents: int = 25
    skew: float = 0.0
    hot_queue: str = "billing"
    hot_agent: str = "agent-1"


@dataclass
class Traffic:
    responses: list[dict[str, Any]] = field(default_factory=list)  # every message, produce order
    response_messages: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    too_old: int = 0
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    dispatch_messages: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    lifecycle: list[dict[str, Any]] = field(default_factory=list)
    lifecycle_messages: list[tuple[bytes | None, bytes]] = field(default_factory=list)


def _iso(now: datetime, seconds_back: float) -> str:
    return (now - timedelta(seconds=seconds_back)).isoformat()


def _scores(rng: random.Random) -> dict[str, Any]:
    scores: dict[str, Any] = {}
    if rng.random() < 0.8:
        scores["nps"] = rng.choice([0, 3, 5, 6, 7, 8, 8, 9, 9, 10, 10, 10])
    if rng.random() < 0.6:
        scores["csat"] = rng.choice([1, 2, 3, 4, 4, 5, 5, 5])
    if rng.random() < 0.4:
        scores["ces"] = rng.randint(1, 7)
    if rng.random() < 0.2:
        scores["thumbs"] = rng.random() < 0.7
    return scores or {"nps": rng.randint(0, 10)}


def _response(
    rng: random.Random, rid: str, now: datetime, revision: int, who: Population
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "response_id": rid,
        "channel": rng.choice(CHANNELS),
        "occurred_at": _iso(now, rng.uniform(0, rng.choice(SPANS))),
        "scores": _scores(rng),
        "customer_id": f"cust-{rng.randint(1, who.customers)}",
        "comment": "Call me at +33 6 12 34 56 78",
    }
    if who.skew > 0:  # no draw otherwise: the default population keeps its exact traffic
        _skewed(rng, response, who)
    else:
        if (queue := rng.choice(QUEUES)) is not None:
            response["queue"] = queue
        if rng.random() < 0.7:
            response["agent_id"] = f"agent-{rng.randint(1, who.agents)}"
    if revision:
        response["revision"] = revision
    return response


def _skewed(rng: random.Random, response: dict[str, Any], who: Population) -> None:
    if rng.random() < who.skew:
        response["queue"], response["agent_id"] = who.hot_queue, who.hot_agent
        return
    if (queue := rng.choice([q for q in QUEUES if q != who.hot_queue])) is not None:
        response["queue"] = queue
    if rng.random() < 0.7 and who.agents > 1:
        agent = f"agent-{rng.randint(1, who.agents - 1)}"
        response["agent_id"] = agent if agent != who.hot_agent else f"agent-{who.agents}"


def make_traffic(
    now: datetime, responses: int = 10_000, seed: int = 7, who: Population | None = None
) -> Traffic:
    who = who or Population()
    rng = random.Random(seed)
    traffic = Traffic()
    messages: list[dict[str, Any]] = []
    for i in range(responses):
        rid = f"r-{seed}-{i}"
        versions = [_response(rng, rid, now, 0, who)]
        if rng.random() < 0.08:
            versions.append(_response(rng, rid, now, 1, who))
            if rng.random() < 0.3:
                versions.append(_response(rng, rid, now, 2, who))
        messages.extend(versions)
        for _ in range(rng.choice([0] * 14 + [1])):  # ~7% exact re-deliveries
            messages.append(rng.choice(versions))
    for i in range(150):
        late = _response(rng, f"old-{seed}-{i}", now, 0, who)
        late["occurred_at"] = _iso(now, 8.5 * 86400)
        messages.append(late)
    traffic.too_old = 150
    rng.shuffle(messages)
    traffic.responses = messages
    for message in messages:
        key = None if rng.random() < 0.03 else message["response_id"].encode()
        traffic.response_messages.append((key, orjson.dumps(message)))

    dispatches = []
    for i in range(int(responses * 1.3)):
        dispatch = {
            "dispatch_id": f"d-{seed}-{i}",
            "channel": rng.choice(CHANNELS),
            "occurred_at": _iso(now, rng.uniform(0, rng.choice(SPANS))),
        }
        if (queue := rng.choice(QUEUES)) is not None:
            dispatch["queue"] = queue
        dispatches.append(dispatch)
        if rng.random() < 0.04:
            dispatches.append(dispatch)
    rng.shuffle(dispatches)
    traffic.dispatches = dispatches
    traffic.dispatch_messages = [(d["dispatch_id"].encode(), orjson.dumps(d)) for d in dispatches]

    per_customer: list[list[dict[str, Any]]] = []
    for c in range(600):
        customer = f"cust-{seed}-{c}"
        activated = rng.uniform(0, 30 * 86400)
        events = [("activated", activated)]
        if rng.random() < 0.25:
            events.append(("cancelled", rng.uniform(0, activated)))
        if rng.random() < 0.05:
            events.append(events[-1])  # a re-delivered event
        per_customer.append(
            [
                {"event_id": f"e-{customer}-{j}", "customer_id": customer, "type": kind,
                 "occurred_at": _iso(now, back)}
                for j, (kind, back) in enumerate(events)
            ]
        )  # fmt: skip
    while per_customer:  # interleave customers, keeping each customer's own order
        events = rng.choice(per_customer)
        traffic.lifecycle.append(events.pop(0))
        if not events:
            per_customer.remove(events)
    traffic.lifecycle_messages = [
        (e["customer_id"].encode(), orjson.dumps(e)) for e in traffic.lifecycle
    ]
    return traffic
