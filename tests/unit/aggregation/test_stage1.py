"""The stage-1 planner's pre-aggregation: sums per (segment, window, bucket), one entry per
message when the batch reaches back to the in-flight mark, and partials that stage 2 applies
to the same totals either way."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from stream.aggregation.batch_sums import ALL_TIME_TARGET, BatchSums
from stream.aggregation.buckets import KeyPlan, apply_partial, parse_key, window_vectors
from stream.aggregation.dedupe import decide_revision
from stream.aggregation.messages import (
    BucketState,
    Contribution,
    Entry,
    IdState,
    Partial,
    split_partial,
)
from stream.aggregation.stage1 import Parsed, PartialsBuilder, Stage1Plan, plan_batch
from stream.channels import TimeLimits
from stream.kpi import summary
from stream.kpi.segments import CHURN
from stream.kpi.windows import WINDOWS
from stream.models import Scores, SurveyResponse
from tests.unit.aggregation.test_followups import contribution

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
LIMITS = TimeLimits(now=NOW, max_future=timedelta(minutes=5), max_age=timedelta(days=8))
AGENTS = ["hot"] * 8 + ["a1", "a2"]  # one agent gets most answers
QUEUES = ("billing", "sales")


def answer(i: int) -> SurveyResponse:
    return SurveyResponse(
        response_id=f"r-{i}", channel="sms", occurred_at=NOW - timedelta(seconds=5 + i % 3),
        scores=Scores(nps=i % 11), queue=QUEUES[i % 2], agent_id=AGENTS[i % len(AGENTS)],
    )  # fmt: skip


def parse(raw: bytes, limits: TimeLimits) -> Parsed:
    r = answer(int(raw))
    new = contribution(r)
    return Parsed(r.response_id.encode(), lambda s, src, o: decide_revision(s, src, o, 0, new), r)


def plan(offsets: range, inflight_until: int = -1) -> Stage1Plan:
    return plan_batch(
        "t:0", 0, [(o, str(o).encode()) for o in offsets], parse, LIMITS,
        lambda keys: [None] * len(keys), lambda keys: [0] * len(keys), lambda segment: 0,
        inflight_until=inflight_until,
    )  # fmt: skip


def totals(plan: Stage1Plan) -> dict[tuple[str, str], list[float]]:
    states: dict[bytes, BucketState] = {}
    for partials in plan.partials.values():
        for partial in partials:
            apply_partial(states, partial, NOW.timestamp(), plan=KeyPlan(NOW.timestamp()))
    return window_vectors(states, NOW.timestamp())


def test_a_batch_sends_one_sum_per_segment_window_and_bucket() -> None:
    summed = plan(range(100, 200))
    entries = [e for partials in summed.partials.values() for p in partials for e in p.entries]
    assert summed.summed and {e.offset for e in entries} == {199}  # tagged with the last offset
    # all answers fall in one bucket of each window: one sum per segment and window
    targets = [(e.segment, e.window) for e in entries]
    assert len(targets) == len(set(targets))
    assert sorted(w for segment, w in targets if segment == "q|all|all") == [0, 1, 2, 3]
    assert sum(1 for segment, _ in targets if segment == "a|hot") == len(WINDOWS)
    # the same totals as one entry per message
    single = plan(range(100, 200), inflight_until=100)
    assert not single.summed
    assert len([e for ps in single.partials.values() for p in ps for e in p.entries]) == 500
    assert totals(summed) == totals(single)


def test_a_backfill_over_days_folds_into_the_buckets_of_the_long_windows() -> None:
    builder = PartialsBuilder(lambda segment: 0, "t:0", NOW.timestamp())
    single = PartialsBuilder(lambda segment: 0, "t:0")
    for offset in range(600):
        r = msgspec.structs.replace(answer(offset), occurred_at=NOW - timedelta(hours=offset / 4))
        decision = decide_revision(None, "t:0", offset, 0, contribution(r))
        builder.add_summed(decision.state)
        single.add(decision.entries)
    (records,) = builder.records(599).values()
    entries = [e for r in records for e in r.entries]
    # 150 h of answers, 4 an hour: 14 buckets of 12 h in the 7 d window, 25 of 1 h in 24 h
    # (one past the live range), 5 of 5 min in 1h, 1 in 5m: per segment, not per answer
    per_window = Counter(e.window for e in entries if e.segment == "q|all|all")
    assert per_window == {3: 14, 2: 25, 1: 5, 0: 1}
    assert totals(Stage1Plan(partials=builder.records(599))) == totals(
        Stage1Plan(partials=single.records(599))
    )


def test_sums_that_cancel_out_are_still_sent_to_mark_their_state() -> None:
    # a revision that moves an answer back where it was sums to zero in that bucket; the
    # zero sum carries the tag, so that a re-read sending one entry per message skips it
    builder = PartialsBuilder(lambda segment: 0, "t:0", NOW.timestamp())
    first = decide_revision(None, "t:0", 1, 0, contribution(answer(1)))
    assert first.state is not None
    builder.add_summed(first.state)
    builder.sums.add(first.state.current, -1)  # as a later revision in the batch would
    (records,) = builder.records(9).values()
    entries = [e for r in records for e in r.entries]
    assert entries and all(e.delta == [] and e.offset == 9 for e in entries)


def test_churn_sums_also_reach_the_all_time_totals() -> None:
    change = Contribution(NOW.timestamp() - 30 * 86400, [CHURN], [summary.ACTIVATIONS, 1])
    sums = BatchSums(NOW.timestamp())
    sums.add(change)
    sums.add(change)
    (entry,) = sums.entries(7)  # a month old: in no window's live bucket, but all-time
    assert (entry.segment, entry.window, entry.delta) == (CHURN, ALL_TIME_TARGET, [31, 2.0])


def test_a_batch_reaching_back_to_the_in_flight_mark_sends_one_entry_per_message() -> None:
    assert plan(range(10, 20), inflight_until=9).summed
    assert not plan(range(10, 20), inflight_until=10).summed
    assert not plan(range(10, 20), inflight_until=500).summed


def test_large_batches_split_their_sums_between_state_records_only() -> None:
    builder = PartialsBuilder(lambda segment: 0, "t:0", NOW.timestamp(), max_entries=3)
    single = PartialsBuilder(lambda segment: 0, "t:0")
    for offset in range(0, 60):
        decision = decide_revision(None, "t:0", offset, 0, contribution(answer(offset)))
        builder.add_summed(decision.state)
        single.add(decision.entries)
    (records,) = builder.records(59).values()
    assert len(records) > 1
    assert {e.offset for r in records for e in r.entries} == {59}
    # the members of one group record (sms queues) travel together, in one record
    for window in range(len(WINDOWS)):
        holding = [r for r in records if any(e.segment.startswith("q|sms|") and
                   e.segment != "q|sms|all" and e.window == window for e in r.entries)]  # fmt: skip
        assert len(holding) == 1
    # the same totals as one entry per message
    assert totals(Stage1Plan(partials=builder.records(59))) == totals(
        Stage1Plan(partials=single.records(59))
    )


def test_two_customers_split_apart_other_entries_of_one_offset_stay_together() -> None:
    customers = [Entry(9, f"c|{i}", 0.0, [33, 60, 34, 1], 3) for i in range(10)]
    queue = [Entry(9, f"q|sms|{name}", 0.0, [0, 1], 3) for name in ("a", "b", "c")]
    pieces = split_partial(Partial("t:0", customers + queue), max_entries=4)
    assert [len(p.entries) for p in pieces] == [4, 4, 5]  # the queues' sums stay together
    # One customer's sums in two buckets of one hour (both reach the hour's state).
    one = [Entry(9, "c|7", t, [33, 60, 34, 1], -1) for t in (0.0, 15.0, 30.0, 45.0, 60.0)]
    assert len(split_partial(Partial("t:0", one), max_entries=4)) == 1
    message = [Entry(9, "q|sms|a", 0.0, [0, 1], -1) for _ in range(6)]  # one message's entries
    assert len(split_partial(Partial("t:0", message), max_entries=4)) == 1


def test_a_customers_sums_land_in_every_window_and_travel_in_one_record() -> None:
    # c|x answers three times within one hour of the last five minutes: one sum per 15 s
    # bucket, each landing in every window, and all of them in one record however small.
    now = NOW.timestamp()
    times = [now - 200, now - 190, now - 100]
    builder = PartialsBuilder(lambda s: 0, "t:0", now, max_entries=1)
    for t in times:
        sparse = [summary.SCI_SUM, 60, summary.SCI_N, 1]
        builder.add_summed(IdState(0, "t:0", 0, Contribution(t, ["c|x", "q|all|all"], sparse)))
    records = builder.records(99)[0]
    customer = [r for r in records if any(e.segment == "c|x" for e in r.entries)]
    assert len(customer) == 1
    entries = customer[0].entries
    assert {e.window for e in entries} == {-1}
    assert sorted(e.t for e in entries) == sorted(15.0 * (t // 15) for t in set(times))
    states: dict[bytes, BucketState] = {}
    for record in records:
        apply_partial(states, record, now)
    for window in WINDOWS:
        keys = [k for k in states if k.startswith(b"c|x") and parse_key(k)[1] == window.name]
        assert sum(states[k].vector[1] for k in keys) == 3, window.name


def test_ids_of_another_partition_are_re_published_there_and_not_decided() -> None:
    homes = {f"r-{i}".encode(): i % 3 for i in range(100, 130)}  # partition 0 plans the batch
    plan = plan_batch(
        "t:0", 0, [(o, str(o).encode()) for o in range(100, 130)], parse, LIMITS,
        lambda keys: [None] * len(keys), lambda keys: [homes[k] for k in keys], lambda s: 0,
    )  # fmt: skip
    assert plan.misrouted == [
        (i - 100, f"r-{i}".encode(), i % 3) for i in range(100, 130) if i % 3
    ]  # fmt: skip
    assert sorted(plan.states) == sorted(k for k, home in homes.items() if home == 0)
    assert plan.outcomes == {"accepted": 10}


def test_a_malformed_sparse_delta_fails_loudly() -> None:
    sums = BatchSums(NOW.timestamp())
    sums.add(Contribution(NOW.timestamp(), ["q|all|all"], [1, 2.0, 3]))
    sums.add(Contribution(NOW.timestamp(), ["q|all|all"], [4, 5.0]))
    with pytest.raises(ValueError, match="odd number"):
        sums.entries(1)
