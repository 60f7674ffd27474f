"""Thousands of malformed messages on the four topics a worker decodes, mixed with valid ones.

The worker must keep running (process alive, /healthz 200 at the end), put every bad message
in cx.deadletter with its reason and exact original bytes (matched by source topic, partition
and offset), dead-letter nothing else, and count the valid ones exactly (every window and
segment equal to the batch computation). The generator is seeded (tests/reliability/hostile.py).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import msgspec
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from stream.channels import Reason
from stream.models import DeadLetter
from tests.integration.test_exporter import parse
from tests.integration.test_kpi_engine import fetch_rows
from tests.reliability.harness import LONG, SEED, settle, summary
from tests.reliability.hostile import Corpus, generate
from tests.support.kafka_io import read_exactly
from tests.support.traffic import Traffic
from tests.support.worker import Worker

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(1500 if LONG else 300)]
HOSTILE = 60_000 if LONG else 10_000
VALID = 6_000 if LONG else 1_500
OPT_OUTS = 50
Source = tuple[str, int, int]  # topic, partition, offset


async def produce_recorded(
    bootstrap: str, messages: Sequence[tuple[str, bytes | None, bytes | None]]
) -> list[Source]:
    """Send (topic, key, value) in order; where each one landed."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        futures = [await producer.send(t, value, key=key) for t, key, value in messages]
        done = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(m.topic, m.partition, m.offset) for m in done]


async def produce_corpus(
    bootstrap: str, prefix: str, corpus: Corpus, seed: int
) -> dict[Source, tuple[bytes, str]]:
    """Produce hostile and valid messages interleaved; source -> (original bytes, reason)."""
    items: list[tuple[str, bytes | None, bytes | None, str | None]] = [
        (prefix + h.topic, h.key, h.value, h.reason) for h in corpus.hostile
    ]
    items += [(prefix + v.topic, v.key, v.value, None) for v in corpus.valid]
    random.Random(seed).shuffle(items)
    sources = await produce_recorded(bootstrap, [(t, k, v) for t, k, v, _ in items])
    return {
        source: (value or b"", reason)
        for source, (_, _, value, reason) in zip(sources, items, strict=True)
        if reason is not None
    }


def letters_by_source(records: list[ConsumerRecord]) -> dict[Source, DeadLetter]:
    letters: dict[Source, DeadLetter] = {}
    for record in records:
        letter = msgspec.json.decode(record.value, type=DeadLetter)
        source = (letter.source.topic, letter.source.partition, letter.source.offset)
        assert source not in letters, f"dead-lettered twice: {source}"
        letters[source] = letter
    return letters


def check_letters(
    expected: dict[Source, tuple[bytes, str]], letters: dict[Source, DeadLetter]
) -> None:
    missing = set(expected) - set(letters)
    extra = set(letters) - set(expected)
    assert not missing, f"{len(missing)} bad messages not dead-lettered, e.g. {sorted(missing)[:3]}"
    assert not extra, (
        f"{len(extra)} messages dead-lettered that should not be, e.g. "
        f"{[(s, letters[s].reason, letters[s].original[:120]) for s in sorted(extra)[:3]]}"
    )
    wrong = [
        (source, reason, letters[source].reason, original[:120])
        for source, (original, reason) in expected.items()
        if letters[source].reason != reason
    ]
    assert not wrong, f"{len(wrong)} with another reason, e.g. {wrong[:3]}"
    altered = [s for s, (original, _) in expected.items() if letters[s].original != original]
    assert not altered, f"original bytes changed for {len(altered)}, e.g. {altered[:3]}"
    assert all(letters[s].original_size == len(original) for s, (original, _) in expected.items())


def check_counters(text: str, prefix: str, corpus: Corpus) -> None:
    samples = parse(text)

    def counter(name: str, **labels: str) -> float:
        return samples.get((name, frozenset(labels.items())), 0.0)

    for topic, n in Counter(h.topic for h in corpus.hostile).items():
        assert counter("cx_events_total", topic=prefix + topic, outcome="invalid") == n, topic
    for (topic, reason), n in Counter((h.topic, h.reason) for h in corpus.hostile).items():
        got = counter("cx_deadletters_total", topic=prefix + topic, reason=reason)
        assert got == n, (topic, reason, got, n)
    for topic, n in Counter(v.topic for v in corpus.valid if v.canonical is not None).items():
        if topic != "responses":
            assert counter("cx_events_total", topic=prefix + topic, outcome="accepted") == n
    opted = counter("cx_events_total", topic=prefix + "raw.sms", outcome="opted_out")
    assert opted == sum(1 for v in corpus.valid if v.canonical is None)
    accepted = counter("cx_events_total", topic=prefix + "responses", outcome="accepted")
    assert accepted == len(corpus.responses())  # raw-derived and direct, each id once


async def test_hostile_flood_is_dead_lettered_and_valid_input_counted_exactly(
    kafka_bootstrap: str, topic_prefix: str, make_worker: Callable[..., Worker]
) -> None:
    started = time.monotonic()
    corpus = generate(SEED, datetime.now(UTC), HOSTILE, VALID, OPT_OUTS)
    worker = make_worker("hostile").start(wait_for_partitions=4)
    expected = await produce_corpus(kafka_bootstrap, topic_prefix, corpus, SEED)

    records = await read_exactly(
        kafka_bootstrap, topic_prefix + "deadletter", len(expected), timeout=300
    )
    letters = letters_by_source(records)
    comparison = await settle([worker], Traffic(responses=corpus.responses()))
    assert worker.process is not None and worker.process.poll() is None, worker.log_tail()
    health = worker.health()

    reasons = Counter(letter.reason for letter in letters.values())
    summary(
        "hostile_input",
        seed=SEED,
        bad_inputs=len(expected),
        dead_lettered=len(letters),
        reasons=len(reasons),
        internal_error=reasons.get(Reason.INTERNAL_ERROR, 0),
        valid=len(corpus.responses()),
        opt_outs=OPT_OUTS,
        counted_7d=comparison.responses,
        lost=comparison.lost,
        doubled=comparison.doubled,
        worker_restarts=0,
        healthz=200 if health and health.get("status") == "ok" else health,
        seconds=round(time.monotonic() - started),
    )
    print("dead letters by reason:", dict(sorted(reasons.items())))
    check_letters(expected, letters)
    assert set(reasons) <= set(Reason.ALL) and Reason.INTERNAL_ERROR not in reasons
    assert len(reasons) == len(Reason.ALL) - 1  # every reason but internal_error exercised
    check_counters(worker.metrics(), topic_prefix, corpus)
    assert health is not None and health.get("status") == "ok", health


def sms_reply(message_id: str, body: str) -> bytes:
    return orjson.dumps(
        {"message_id": message_id, "received_at": datetime.now(UTC).isoformat(),
         "from": "+33698765432", "body": body, "survey": "nps"}
    )  # fmt: skip


def response_with_repeated_scores(rid: str, first: int, last: int) -> bytes:
    at = datetime.now(UTC).isoformat()
    return (
        f'{{"response_id": "{rid}", "channel": "web", "occurred_at": "{at}", '
        f'"scores": {{"nps": {first}, "nps": {last}}}}}'
    ).encode()


async def current(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every record of `topic` so far (returns after a second without new ones)."""
    return await read_exactly(bootstrap, topic, 0, timeout=10)


def web_responses_counted(worker: Worker) -> dict[str, float]:
    for row in fetch_rows(worker, time.time()):
        if (row["window"], row["kind"], row.get("channel"), row.get("queue")) == (
            "5m", "q", "web", "all",
        ):  # fmt: skip
            return {"n": row["vector"][0], **row["kpis"]}
    return {"n": 0}


async def test_documented_edge_cases_of_hostile_input(
    kafka_bootstrap: str, topic_prefix: str, make_worker: Callable[..., Worker]
) -> None:
    """Two cases where the documented rule and the adapters could part ways:

    * a negative SMS score is not on the survey's scale (contract: out-of-range scores are
      dead-lettered), so "-3" must not count as a 3, nor "-10" as a promoter;
    * docs/decisions.md, repeated JSON keys: every value must be valid ({"nps": 11, "nps": 9}
      is dead-lettered as out_of_range) and the last one counts ({"nps": 3, "nps": 9} is a 9).
    """
    worker = make_worker("edge").start(wait_for_partitions=4)
    negative = [(f"neg{i}".encode(), sms_reply(f"neg{i}", body))
                for i, body in enumerate(("-3", "-10", "- 3", "\u221210"))]  # fmt: skip
    repeated = [(b"dup1", response_with_repeated_scores("dup1", 11, 9)),
                (b"dup2", response_with_repeated_scores("dup2", -1, 10)),
                (b"dup3", response_with_repeated_scores("dup3", 3, 9))]  # fmt: skip
    await produce_recorded(
        kafka_bootstrap,
        [(topic_prefix + "raw.sms", k, v) for k, v in negative]
        + [(topic_prefix + "responses", k, v) for k, v in repeated],
    )
    deadline = time.monotonic() + 120
    while True:  # until each of the seven messages has an outcome (or the deadline passed)
        scores = {r.key.decode(): orjson.loads(r.value)["scores"]
                  for r in await current(kafka_bootstrap, topic_prefix + "responses")
                  if r.key and r.key.startswith(b"sms:")}  # fmt: skip
        letters = await current(kafka_bootstrap, topic_prefix + "deadletter")
        dead = {r.key.decode(): orjson.loads(r.value)["reason"] for r in letters if r.key}
        web = await asyncio.to_thread(web_responses_counted, worker)
        if len(scores) + len(dead) + web["n"] >= 7 or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    print(f"\nedge cases: accepted SMS {scores}, dead letters {dead}, web 5m {web}")
    problems = []
    if scores:
        problems.append(f"negative SMS replies counted as scores: {scores}")
    if dead.get("dup1") != "out_of_range" or dead.get("dup2") != "out_of_range":
        problems.append(f"repeated key with an out-of-range value not dead-lettered: {dead}")
    if "dup3" in dead or web.get("nps_responses") != 1 or web.get("nps_promoters") != 1:
        problems.append(f"repeated valid key: the last value (a 9) should count: web 5m {web}")
    assert not problems, "; ".join(problems)
    assert all(dead.get(f"neg{i}") == "out_of_range" for i in range(4)), dead
