"""Simulated traffic is valid v1 input: it matches the topic schemas and the adapters accept it."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import orjson

from stream.channels import Accepted, OptedOut, TimeLimits, adapt_email, adapt_ivr, adapt_sms
from stream.pipeline.topics import TopicNames
from stream.settings import Settings
from stream.simulate import Simulator

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
NAMES = TopicNames.from_settings(Settings())
SCHEMA_OF = {
    NAMES.raw_ivr: "raw_ivr.v1.json",
    NAMES.raw_sms: "raw_sms.v1.json",
    NAMES.raw_email: "raw_email.v1.json",
    NAMES.dispatches: "dispatch.v1.json",
    NAMES.lifecycle: "lifecycle.v1.json",
}
ADAPTER_OF = {NAMES.raw_ivr: adapt_ivr, NAMES.raw_sms: adapt_sms, NAMES.raw_email: adapt_email}


def simulated(count: int, seed: int = 7) -> list[tuple[str, bytes, bytes]]:
    simulator = Simulator(NAMES, seed)
    now = datetime.now(UTC)
    return [m for _ in range(count) for m in simulator.messages(now)]


def test_every_message_matches_its_topic_schema() -> None:
    validators = {
        topic: jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text()))
        for topic, name in SCHEMA_OF.items()
    }
    messages = simulated(3000)
    assert {topic for topic, _, _ in messages} == set(SCHEMA_OF)
    for topic, _, value in messages:
        validators[topic].validate(orjson.loads(value))


def test_raw_answers_are_accepted_or_opt_outs() -> None:
    limits = TimeLimits(now=datetime.now(UTC))
    outcomes: Counter[str] = Counter()
    for topic, _, value in simulated(3000):
        if topic in ADAPTER_OF:
            outcome = ADAPTER_OF[topic](value, limits)
            assert isinstance(outcome, Accepted | OptedOut), (topic, outcome)
            outcomes[type(outcome).__name__] += 1
    assert outcomes["Accepted"] > 300 and outcomes["OptedOut"] > 0


def without_times(messages: list[tuple[str, bytes, bytes]]) -> list[tuple[str, bytes, dict]]:
    return [
        (topic, key, {f: x for f, x in orjson.loads(value).items() if not f.endswith("_at")})
        for topic, key, value in messages
    ]


def test_a_seed_reproduces_the_traffic() -> None:
    assert without_times(simulated(500, seed=3)) == without_times(simulated(500, seed=3))


def test_incidents_collapse_one_queue_or_agent() -> None:
    simulator = Simulator(NAMES, seed=1)
    seen = set()
    now = datetime.now(UTC)
    for _ in range(20000):
        list(simulator.messages(now))
        if simulator.incident is not None:
            seen.add(simulator.incident[:2])
    assert seen, "no incident in 20,000 surveys"
