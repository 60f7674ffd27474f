"""Exactly-once across both stages, simulated without Kafka.

The protocol (stream/aggregation/__init__.py, stream/pipeline/kpi_engine.py) promises:
  * stage 1 sends a batch's partials (one Partial per (source, destination) with the batch's
    entries in offset order) and waits until they are delivered, and only then writes the ids'
    new states; a crash can lose any of a batch's partials only while no state of it is written;
  * the states of a batch are durable before the batch's offsets are committed; a crash may lose
    any state write that is not covered by a commit;
  * after a crash stage 1 restarts from the last committed offset with the durable states and
    re-processes the same source messages (same src, same offsets);
  * stage 2 receives every delivered Partial of a destination in delivery order, duplicates
    included, and keeps its bucket states.
Under those rules the windows must hold exactly the winning revision of every response.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.aggregation.buckets import KeyPlan, apply_partial, parse_key, window_vectors
from stream.aggregation.dedupe import decide_revision
from stream.aggregation.messages import (
    BucketState,
    Contribution,
    IdState,
    Partial,
)
from stream.aggregation.routing import owner_partition
from stream.aggregation.stage1 import Parsed, plan_batch
from stream.channels import TimeLimits
from stream.kpi import report, sci
from stream.kpi import response as response_kpi
from stream.kpi import summary as s
from stream.kpi.segments import is_customer, response_segments
from stream.kpi.windows import BY_NAME, WINDOWS
from stream.models import Acsi, Scores, SurveyResponse

NOW = 1_714_600_000.0
LIMITS = TimeLimits(now=datetime.fromtimestamp(NOW, UTC), max_future=timedelta(minutes=5),
                    max_age=timedelta(days=8))  # fmt: skip
DESTINATIONS = 4
SOURCES = 2
POOL = [f"r{i}" for i in range(6)]
MAX_CRASHES = 4
ALL = "q|all|all"
FLOAT_SLOTS = frozenset({s.CSI_SUM, s.ACSI_SUM})
Draw = Callable[[st.SearchStrategy[Any]], Any]


@dataclass(frozen=True)
class Answer:
    """The content of one (response_id, revision): identical wherever it is sent."""

    response: SurveyResponse
    contribution: Contribution


@dataclass
class Stage2:
    """All stage-2 partitions: bucket states and the log of every delivered Partial."""

    states: dict[bytes, BucketState] = field(default_factory=dict)
    delivered: dict[int, list[Partial]] = field(default_factory=lambda: defaultdict(list))
    order: list[Partial] = field(default_factory=list)  # every delivery, all destinations

    def deliver(self, destination: int, partial: Partial) -> None:
        self.delivered[destination].append(partial)
        self.order.append(partial)
        # Agents' group records are sharded like the destinations (as the engine does).
        apply_partial(self.states, partial, NOW, plan=KeyPlan(NOW, DESTINATIONS))


scores = (
    st.fixed_dictionaries(
        {},
        optional={
            "nps": st.integers(0, 10),
            "csat": st.integers(1, 5),
            "ces": st.integers(1, 7),
            "thumbs": st.booleans(),
            "acsi": st.builds(Acsi, *[st.integers(1, 10)] * 3),
        },
    )
    .filter(bool)
    .map(lambda fields: Scores(**fields))  # type: ignore[arg-type]
)
# Mostly anywhere in the last 6 days (inside 7d), sometimes in the last minutes (5m, 1h).
ages = st.one_of(st.integers(0, 6 * 86400), st.integers(0, 900)).map(float)


def segments_of(r: SurveyResponse) -> list[str]:
    return response_segments(r.channel, r.queue, r.agent_id, r.customer_id)


@st.composite
def answers(draw: st.DrawFn, response_id: str, revision: int) -> Answer:
    t = NOW - draw(ages)
    response = SurveyResponse(
        response_id=response_id,
        channel=draw(st.sampled_from(["ivr", "sms", "email", "web"])),
        occurred_at=datetime.fromtimestamp(t, UTC),
        scores=draw(scores),
        queue=draw(st.sampled_from([None, "billing", "sales"])),
        agent_id=draw(st.sampled_from([None, "a1", "a2"])),
        customer_id=draw(st.sampled_from([None, "k1", "k2"])),
        revision=revision,
    )
    contribution = Contribution(
        t,
        segments_of(response),
        response_kpi.contribution(response),
    )
    return Answer(response, contribution)


@st.composite
def traffic(draw: st.DrawFn) -> tuple[list[tuple[str, int]], dict[tuple[str, int], Answer]]:
    events = draw(
        st.lists(st.tuples(st.sampled_from(POOL), st.integers(0, 2)), min_size=1, max_size=40)
    )
    contents = {key: draw(answers(*key)) for key in sorted(set(events))}
    return events, contents


def source_of(response_id: str) -> int:
    """Every message of an id is on one source partition (the engine re-routes mis-keyed ones)."""
    return POOL.index(response_id) % SOURCES


def parsed(log: Sequence[Answer], raw: bytes, limits: TimeLimits) -> Parsed:
    """Message `raw` (its offset) of a source's log, as the engine's parser gives it."""
    answer = log[int(raw)]
    r = answer.response
    return Parsed(
        r.response_id.encode(),
        lambda state, src, offset: decide_revision(state, src, offset, r.revision,
                                                   answer.contribution),
        r,
    )  # fmt: skip


def run_stage1(
    src: str,
    log: Sequence[Answer],
    stage2: Stage2,
    draw: Draw,
) -> int:
    """Process one source partition to its end, crashing at random; return the crash count."""
    committed = 0  # next offset to read after a restart
    kept_states: dict[str, IdState] = {}  # durable for good: committed, or survived a crash
    unconfirmed: list[tuple[str, IdState]] = []  # state writes since, in write order
    durable: dict[str, IdState] = {}  # the table as this run of stage 1 sees it
    position = 0
    crashes = 0
    inflight = -1  # the in-flight mark

    def restart() -> None:
        nonlocal durable, kept_states, unconfirmed, position, crashes
        crashes += 1
        # Any write not covered by a commit may be lost; the others survive, in write order.
        kept = draw(st.lists(st.booleans(), min_size=len(unconfirmed), max_size=len(unconfirmed)))
        for (response_id, state), keep in zip(unconfirmed, kept, strict=True):
            if keep:
                kept_states[response_id] = state
        durable = dict(kept_states)
        unconfirmed = []
        position = committed

    while position < len(log):
        size = draw(st.integers(1, 6))
        batch = list(enumerate(log))[position : position + size]
        # The real planner (stream.aggregation.stage1.plan_batch): new decisions summed per
        # (segment, window, bucket), unless the batch reaches back into the in-flight range.
        # Tiny records: partials split (between offsets, or between state records) all the time.
        plan = plan_batch(
            src, 0, [(offset, str(offset).encode()) for offset, _ in batch],
            functools.partial(parsed, log), LIMITS,
            lambda keys: [durable.get(key.decode()) for key in keys], lambda keys: [0] * len(keys),
            lambda segment: owner_partition(segment, DESTINATIONS), inflight_until=inflight,
            shards=DESTINATIONS, max_entries=draw(st.integers(1, 8)),
        )  # fmt: skip
        pending = {key.decode(): state for key, state in plan.states.items()}
        records = plan.partials
        if records:  # confirmed before any partial goes out: survives crashes
            inflight = max(inflight, batch[-1][0])
        partials = [(dest, partial) for dest, items in records.items() for partial in items]

        crash = "none"
        if crashes < MAX_CRASHES:
            crash = draw(st.sampled_from(["none", "none", "none", "partials", "states"]))
        if crash == "partials":
            # Crash while sending: some partials of the batch are delivered, no state written.
            # Kafka keeps a partition's records in order (one produce batch in flight per
            # partition), so each destination gets a prefix of what was sent to it.
            delivered = draw(
                st.lists(st.booleans(), min_size=len(partials), max_size=len(partials))
            )
            cut: set[int] = set()
            for (dest, partial), ok in zip(partials, delivered, strict=True):
                if ok and dest not in cut:
                    stage2.deliver(dest, partial)
                else:
                    cut.add(dest)
            restart()
            continue
        for dest, partial in partials:
            stage2.deliver(dest, partial)
        for response_id, state in pending.items():
            durable[response_id] = state
            unconfirmed.append((response_id, state))
        if crash == "states":
            # Crash while (or after) writing the states, before the offsets commit.
            restart()
            continue
        position += len(batch)
        if draw(st.booleans()):
            committed = position
            kept_states = dict(durable)
            unconfirmed = []
    return crashes


def expected_vectors(
    events: Sequence[tuple[str, int]], contents: Mapping[tuple[str, int], Answer]
) -> dict[tuple[str, str], list[float]]:
    """Independent batch computation: the highest revision of each id, in every window."""
    winners: dict[str, int] = {}
    for response_id, revision in events:
        winners[response_id] = max(revision, winners.get(response_id, -1))
    totals: dict[tuple[str, str], list[float]] = defaultdict(s.initialize)
    customers: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for response_id, revision in winners.items():
        r = contents[(response_id, revision)].response
        t = r.occurred_at.timestamp()
        sparse = response_kpi.contribution(r)
        for segment in segments_of(r):
            for window in WINDOWS:
                if window.contains(window.bucket(t), NOW):
                    if is_customer(segment):
                        sci.add_to_customer(customers[(segment, window.name)], sparse)
                    else:
                        s.add(totals[(segment, window.name)], sparse)
    return {**totals, **customers}


def customer_vectors(states: Mapping[bytes, BucketState]) -> dict[tuple[str, str], list[float]]:
    """The customers' [sum, n] per (customer, window) at NOW, from stage 2's states."""
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for key, state in states.items():
        segment, window, bucket = parse_key(key)
        if is_customer(segment) and BY_NAME[window].contains(bucket, NOW):
            total = totals[(segment, window)]
            total[0] += state.vector[0]
            total[1] += state.vector[1]
    return totals


def assert_same_vector(actual: Sequence[float], expected: Sequence[float], where: object) -> None:
    for slot, (a, b) in enumerate(zip(actual, expected, strict=True)):
        if slot in FLOAT_SLOTS:
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (where, slot, a, b)
        else:
            assert a == b, (where, slot, a, b)


def simulate(
    events: Sequence[tuple[str, int]],
    contents: Mapping[tuple[str, int], Answer],
    draw: Draw,
) -> tuple[Stage2, int]:
    logs: list[list[Answer]] = [[] for _ in range(SOURCES)]
    for key in events:
        logs[source_of(key[0])].append(contents[key])
    stage2 = Stage2()
    crashes = 0
    for partition, log in enumerate(logs):
        crashes += run_stage1(f"cx.responses:{partition}", log, stage2, draw)
    # Stage 2 may also consume a partial again (e.g. after a rebalance, with its states kept).
    for dest, partials in list(stage2.delivered.items()):
        again = draw(st.lists(st.booleans(), min_size=len(partials), max_size=len(partials)))
        for partial, redeliver in zip(list(partials), again, strict=True):
            if redeliver:
                stage2.deliver(dest, partial)
    return stage2, crashes


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(traffic(), st.data())
def test_windows_hold_exactly_the_winning_revisions(
    generated: tuple[list[tuple[str, int]], dict[tuple[str, int], Answer]],
    data: st.DataObject,
) -> None:
    events, contents = generated
    stage2, _ = simulate(events, contents, data.draw)
    actual = window_vectors(stage2.states, NOW) | customer_vectors(stage2.states)
    expected = expected_vectors(events, contents)

    # The all-channels/all-queues 7-day window: every response counts there.
    assert_same_vector(actual[(ALL, "7d")], expected[(ALL, "7d")], (ALL, "7d"))
    assert actual[(ALL, "7d")][s.N] == len({response_id for response_id, _ in events})
    one_pass = report.kpis(expected[(ALL, "7d")])
    streamed = report.kpis(actual[(ALL, "7d")])
    assert streamed.keys() == one_pass.keys()
    for key, value in one_pass.items():
        assert math.isclose(streamed[key], value, rel_tol=1e-9, abs_tol=1e-9), key
    # Every other segment and window too, customers included (their [sum, n] of SCI
    # answers); those that lost all answers hold zeros.
    for where in expected.keys() | actual.keys():
        zero = [0.0, 0.0] if is_customer(where[0]) else s.initialize()
        assert_same_vector(actual.get(where, zero), expected.get(where, zero), where)


class Scripted:
    """A `draw` that replays fixed choices, for a readable deterministic scenario."""

    def __init__(self, choices: Sequence[object]) -> None:
        self.choices = list(choices)

    def __call__(self, strategy: st.SearchStrategy[Any]) -> Any:
        return self.choices.pop(0)


def fixed_answer(response_id: str, revision: int, nps: int) -> Answer:
    t = NOW - 3600
    response = SurveyResponse(
        response_id=response_id,
        channel="sms",
        occurred_at=datetime.fromtimestamp(t, UTC),
        scores=Scores(nps=nps),
        queue="billing",
        revision=revision,
    )
    segments = response_segments("sms", "billing", None)
    return Answer(response, Contribution(t, segments, response_kpi.contribution(response)))


@pytest.mark.parametrize("state_survives", [False, True])
def test_replayed_batch_is_applied_once(state_survives: bool) -> None:
    """r0 rev 0 then rev 1 in one batch; a crash after the partials were delivered, before the
    commit; the batch is processed again and its partials reach stage 2 a second time."""
    log = [fixed_answer("r0", 0, nps=0), fixed_answer("r0", 1, nps=10)]
    script = Scripted(
        [
            2,  # one batch of both messages
            8,  # partials of up to 8 entries
            "states",  # crash once its partials are delivered and its state is written
            [state_survives],  # the batch's single state write (r0 at offset 1) kept or lost
            2,  # the same batch again
            8,
            "none",
            True,  # commit
        ]
    )
    stage2 = Stage2()
    assert run_stage1("cx.responses:0", log, stage2, script) == 1
    assert not script.choices
    sent = stage2.order
    assert len(sent) == 2 * len(stage2.delivered)  # each destination got its partial twice
    if state_survives:  # the replay re-sends only the transition of offset 1
        assert {e.offset for p in sent[len(sent) // 2 :] for e in p.entries} <= {1}
    vector = window_vectors(stage2.states, NOW)[(ALL, "7d")]
    assert vector[s.N] == 1
    assert vector[s.NPS + 10] == 1
    assert vector[s.NPS + 0] == 0
