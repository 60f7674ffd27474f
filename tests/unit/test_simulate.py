"""Simulated traffic is valid v1 input: it matches the topic schemas and the adapters accept it."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import product, repeat
from pathlib import Path

import jsonschema
import orjson
import pytest

from monitoring.config import load
from stream.backfill import Message, history
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
from stream.demo import SEED
from stream.kpi.intervals import nps_adjusted_wald
from stream.kpi.windows import BY_NAME
from stream.pipeline.topics import TopicNames
from stream.settings import Settings
from stream.simulate import (
    DEGRADED,
    DEGRADED_QUEUE,
    PROFILES,
    QUEUES,
    Simulator,
    degradation_from,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
NAMES = TopicNames.from_settings(Settings())
CONFIG = load()  # monitoring/config.yml: the thresholds of the alerts
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


def answers(
    simulator: Simulator, times: Iterator[datetime], messages: Iterator[Message] | None = None
) -> Iterator[tuple[float, str, str, int | None, int | None]]:
    """(event time, channel, queue, NPS, CSAT) of every answer the adapters accept, from
    `messages`, else from one survey of `simulator` per time of `times`."""
    if messages is None:
        messages = (m for at in times for m in simulator.messages(at))
    limits = TimeLimits(now=datetime.now(UTC) + timedelta(days=1), max_age=timedelta(days=9999))
    for topic, _, value in messages:
        if topic in ADAPTER_OF:
            outcome = ADAPTER_OF[topic](value, limits)
            if isinstance(outcome, Accepted):
                r = outcome.response
                yield r.occurred_at.timestamp(), r.channel, r.queue, r.scores.nps, r.scores.csat


@dataclass
class Tally:
    """NPS and CSAT counts of one segment."""

    n: int = 0
    promoters: int = 0
    detractors: int = 0
    csat_n: int = 0
    top_box: int = 0

    def add(self, nps: int | None, csat: int | None) -> None:
        if nps is not None:
            self.n += 1
            self.promoters += nps >= 9
            self.detractors += nps <= 6
        if csat is not None:
            self.csat_n += 1
            self.top_box += csat == 5

    @property
    def nps(self) -> float:
        return 100 * (self.promoters - self.detractors) / self.n

    @property
    def top_box_ratio(self) -> float:
        return self.top_box / self.csat_n


def tallies(rows: Iterable[tuple[float, str, str, int | None, int | None]]) -> dict[str, Tally]:
    """Per queue, every channel."""
    found: dict[str, Tally] = defaultdict(Tally)
    for _, _, queue, nps, csat in rows:
        found[queue].add(nps, csat)
    return found


def test_queues_sit_at_their_levels_and_the_degraded_queue_below_target() -> None:
    now = datetime.now(UTC)
    steady = tallies(answers(Simulator(NAMES, seed=42), repeat(now, 60_000)))
    assert set(steady) == set(QUEUES)
    for queue in set(QUEUES) - {"escalations"}:
        tally = steady[queue]
        assert tally.n > 400 and tally.csat_n > 200, (queue, tally)
        assert tally.nps >= CONFIG.nps.target + 5, (queue, tally.nps)
        assert tally.top_box_ratio >= CONFIG.csat.target + 0.04, (queue, tally.top_box_ratio)
    # escalations: below both targets, on few answers
    assert steady["escalations"].nps < CONFIG.nps.target
    assert steady["escalations"].n < steady["retention"].n / 20
    always = Simulator(NAMES, seed=42, degradation=(now - timedelta(days=1), now + timedelta(1)))
    degraded = tallies(answers(always, repeat(now, 60_000)))
    assert degraded[DEGRADED_QUEUE].nps < CONFIG.nps.target - 50, degraded[DEGRADED_QUEUE]
    assert degraded[DEGRADED_QUEUE].top_box_ratio < CONFIG.csat.target - 0.2
    for queue in set(QUEUES) - {DEGRADED_QUEUE, "escalations"}:  # the others as they were
        assert degraded[queue].nps >= CONFIG.nps.target + 5, (queue, degraded[queue])


def test_the_degradation_follows_event_times() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    start, end = degradation_from(now)
    assert start < now < end
    simulator = Simulator(NAMES, seed=1, degradation=(start, end))
    assert simulator.profile(DEGRADED_QUEUE, start) == DEGRADED
    assert simulator.profile(DEGRADED_QUEUE, end) == PROFILES[DEGRADED_QUEUE]
    assert simulator.profile(DEGRADED_QUEUE, start - timedelta(seconds=1)) != DEGRADED
    assert all(simulator.profile(q, now) == PROFILES[q] for q in QUEUES if q != DEGRADED_QUEUE)


# --- the demo's story, evaluated as monitoring/config.yml's alerts would ------------------------

Alert = tuple[str, str, str]  # (alert, channel, queue)


def alerts_at(
    rows: list[tuple[float, str, str, int | None, int | None]], at: float
) -> tuple[set[Alert], dict[str, Tally]]:
    """The KPI alerts whose condition holds at `at` (NpsBelowTarget, CsatBelowTarget on channel
    all, NpsSignificantDrop on every (channel, queue), rollups "all" included, with the minimum
    n), as the worker's windows and the generated rules define them; and each queue's tally of
    the target alerts' window."""
    windows = (BY_NAME[CONFIG.nps.window], BY_NAME[CONFIG.nps_drop.baseline])
    assert CONFIG.nps.window == CONFIG.csat.window == CONFIG.nps_drop.window
    counts: dict[tuple[str, str, str], Tally] = defaultdict(Tally)
    for t, channel, queue, nps, csat in rows:
        if t > at:  # not sent yet
            continue
        for window in windows:
            if window.contains(window.bucket(t), at):
                for segment in product((channel, "all"), (queue, "all")):
                    counts[(window.name, *segment)].add(nps, csat)
    fired, minimum = set(), CONFIG.min_responses
    recent, baseline = (w.name for w in windows)
    for (window, channel, queue), tally in counts.items():
        if window != recent:
            continue
        if channel == "all" and tally.n >= minimum and tally.nps < CONFIG.nps.target:
            fired.add(("NpsBelowTarget", channel, queue))
        low_csat = tally.csat_n >= minimum and tally.top_box_ratio < CONFIG.csat.target
        if channel == "all" and low_csat:
            fired.add(("CsatBelowTarget", channel, queue))
        older = counts[(baseline, channel, queue)]
        if tally.n >= minimum and older.n >= minimum:
            upper = nps_adjusted_wald(tally.promoters, tally.detractors, tally.n)[1]
            if upper < older.nps:
                fired.add(("NpsSignificantDrop", channel, queue))
    queues = {queue: t for (w, c, queue), t in counts.items() if w == recent and c == "all"}
    return fired, queues


@pytest.mark.parametrize("second", [7, 170])  # where the 5-minute buckets of 1h start
def test_the_demo_story_alerts_on_the_degraded_queue_only(second: int) -> None:
    assert CONFIG.csat.ratio == "top_box"
    now = datetime(2026, 3, 2, 12, 1, tzinfo=UTC) + timedelta(seconds=second)
    rate, minutes = 50, 12  # the demo's rate, surveys per second
    simulator = Simulator(NAMES, SEED, degradation=degradation_from(now))
    rows = list(answers(simulator, iter(()), history(simulator, now)))
    live = (now + timedelta(seconds=i / rate) for i in range(minutes * 60 * rate))
    rows += answers(simulator, live)
    holding: dict[Alert, int] = {}  # since which evaluation an alert's condition holds
    others: set[Alert] = set()
    for step in range(minutes * 4 + 1):  # every 15 s
        fired, queues = alerts_at(rows, now.timestamp() + 15 * step)
        others |= {alert for alert in fired if alert[2] != DEGRADED_QUEUE}
        holding = {alert: holding.get(alert, step) for alert in fired}
        small = queues.get("escalations", Tally())  # under the minimum n: never alerted
        assert small.n < CONFIG.min_responses and small.csat_n < CONFIG.min_responses
    assert others == set(), "alerts on steady queues or rollups: noise, not a story"
    degraded = {(name, queue) for name, _, queue in holding}
    assert {("NpsBelowTarget", DEGRADED_QUEUE), ("CsatBelowTarget", DEGRADED_QUEUE),
            ("NpsSignificantDrop", DEGRADED_QUEUE)} <= degraded, holding  # fmt: skip
    # each has held since the first 5 minutes, without interruption
    assert (
        max(min(s for (n, _, _), s in holding.items() if n == name) for name, _ in degraded) <= 20
    )
