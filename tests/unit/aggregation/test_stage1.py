"""The stage-1 planner's pre-aggregation: sums per (segment, 15 s bucket), one entry per
message when the batch reaches back to the in-flight mark, and partials that stage 2 applies
to the same totals either way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stream.aggregation.buckets import KeyPlan, apply_partial, window_vectors
from stream.aggregation.dedupe import decide_revision
from stream.aggregation.messages import BucketState
from stream.aggregation.stage1 import Parsed, PartialsBuilder, Stage1Plan, plan_batch
from stream.channels import TimeLimits
from stream.kpi.segments import response_segments
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
        lambda keys: [None] * len(keys), lambda key: 0, lambda segment: 0,
        inflight_until=inflight_until,
    )  # fmt: skip


def totals(plan: Stage1Plan) -> dict[tuple[str, str], list[float]]:
    states: dict[bytes, BucketState] = {}
    for partials in plan.partials.values():
        for partial in partials:
            apply_partial(states, partial, NOW.timestamp(), plan=KeyPlan(NOW.timestamp()))
    return window_vectors(states, NOW.timestamp())


def test_a_batch_sends_one_sum_per_segment_and_bucket() -> None:
    summed = plan(range(100, 200))
    entries = [e for partials in summed.partials.values() for p in partials for e in p.entries]
    assert summed.summed and {e.offset for e in entries} == {199}  # tagged with the last offset
    segments = [e.segment for e in entries]
    assert segments.count("q|all|all") == 1 and segments.count("a|hot") == 1
    assert len(entries) == len(set(segments))  # all answers fall in one 15 s bucket
    # the same totals as one entry per message
    single = plan(range(100, 200), inflight_until=100)
    assert not single.summed
    assert len([e for ps in single.partials.values() for p in ps for e in p.entries]) == 500
    assert totals(summed) == totals(single)


def test_a_batch_reaching_back_to_the_in_flight_mark_sends_one_entry_per_message() -> None:
    assert plan(range(10, 20), inflight_until=9).summed
    assert not plan(range(10, 20), inflight_until=10).summed
    assert not plan(range(10, 20), inflight_until=500).summed


def test_large_batches_sum_in_generations_of_bounded_records() -> None:
    builder = PartialsBuilder(lambda segment: 0, "t:0", max_entries=3)
    single = PartialsBuilder(lambda segment: 0, "t:0")
    for offset in range(0, 60):
        decision = decide_revision(None, "t:0", offset, 0, contribution(answer(offset)))
        builder.add_summed(decision.entries, offset)
        single.add(decision.entries)
    (records,) = builder.records(59).values()
    assert len(records) > 1
    message = len(response_segments("sms", "billing", "hot"))
    assert all(len(r.entries) < 3 + message for r in records)  # one message past the bound
    tags = [r.entries[0].offset for r in records]
    assert tags == sorted(set(tags)) and all(
        len({e.offset for e in r.entries}) == 1 for r in records
    )
    # the same totals as one entry per message
    assert totals(Stage1Plan(partials=builder.records(59))) == totals(
        Stage1Plan(partials=single.records(59))
    )
