"""Simulated traffic is valid v1 input: it matches the topic schemas and the adapters accept it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import orjson

from stream.channels import (
    Accepted,
    OptedOut,
    Outcome,
    TimeLimits,
    adapt_canonical,
    adapt_email,
    adapt_ivr,
    adapt_sms,
)
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
    NAMES.responses: "survey_response.v1.json",
}
ADAPTER_OF: dict[str, Callable[[bytes, TimeLimits], Outcome]] = {
    NAMES.raw_ivr: adapt_ivr,
    NAMES.raw_sms: adapt_sms,
    NAMES.raw_email: adapt_email,
    NAMES.responses: adapt_canonical,
}
# The id fields of each topic's messages: none may repeat across runs.
ID_FIELDS = ("call_id", "message_id", "event_id", "dispatch_id", "response_id")


def simulated(count: int, seed: int = 7, run_id: str = "") -> list[tuple[str, bytes, bytes]]:
    simulator = Simulator(NAMES, seed, run_id=run_id)
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


def test_canonical_responses_carry_thumbs_csi_and_acsi() -> None:
    limits = TimeLimits(now=datetime.now(UTC))
    scored: Counter[str] = Counter()
    for topic, key, value in simulated(3000):
        if topic == NAMES.responses:
            outcome = adapt_canonical(value, limits)
            assert isinstance(outcome, Accepted), outcome
            assert outcome.response.response_id.encode() == key
            scores = outcome.response.scores
            scored.update(
                name for name in ("thumbs", "csi", "acsi") if getattr(scores, name) is not None
            )
    assert min(scored[name] for name in ("thumbs", "csi", "acsi")) > 50, scored


def without_times(messages: list[tuple[str, bytes, bytes]]) -> list[tuple[str, bytes, dict]]:
    return [
        (topic, key, {f: x for f, x in orjson.loads(value).items() if not f.endswith("_at")})
        for topic, key, value in messages
    ]


def test_a_seed_and_a_run_id_reproduce_the_traffic() -> None:
    first = without_times(simulated(500, seed=3, run_id="r1"))
    assert first == without_times(simulated(500, seed=3, run_id="r1"))


def ids(messages: list[tuple[str, bytes, bytes]]) -> set[str]:
    """Every generated id: message keys, id fields, and the customers."""
    found = set()
    for topic, key, value in messages:
        record = orjson.loads(value)
        found.add(f"{topic}/key/{key.decode()}")
        found.update(f"{field}/{record[field]}" for field in ID_FIELDS if field in record)
        if "customer_id" in record:
            found.add(f"customer/{record['customer_id']}")
    return found


def score_mix(messages: list[tuple[str, bytes, bytes]]) -> Counter[tuple[str, str]]:
    """How often each answer occurs per topic, ids and times left out."""
    mix: Counter[tuple[str, str]] = Counter()
    for topic, _, value in messages:
        record = orjson.loads(value)
        answer = record.get("digits") or record.get("body") or record.get("score")
        answer = answer or record.get("scores") or record.get("type") or record.get("channel")
        mix[(topic, orjson.dumps(answer, option=orjson.OPT_SORT_KEYS).decode())] += 1
    return mix


def test_two_runs_with_the_same_seed_have_disjoint_ids_and_the_same_score_mix() -> None:
    first, second = simulated(2000, seed=42), simulated(2000, seed=42)
    first_ids, second_ids = ids(first), ids(second)
    assert len(first_ids) > 2000 and len(second_ids) == len(first_ids)
    assert not first_ids & second_ids, sorted(first_ids & second_ids)[:5]
    assert score_mix(first) == score_mix(second)
    assert score_mix(first) != score_mix(simulated(2000, seed=43))


def test_incidents_collapse_one_queue_or_agent() -> None:
    simulator = Simulator(NAMES, seed=1)
    seen = set()
    now = datetime.now(UTC)
    for _ in range(20000):
        list(simulator.messages(now))
        if simulator.incident is not None:
            seen.add(simulator.incident[:2])
    assert seen, "no incident in 20,000 surveys"
