"""Follow-ups: detractors get a call-back unless too old; a revision out of detractor range
retracts it; the batch planner publishes one record per decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stream.aggregation.dedupe import decide_revision
from stream.aggregation.followups import detractor_score, followup_of
from stream.aggregation.messages import Contribution
from stream.aggregation.stage1 import Parsed, plan_batch
from stream.channels import TimeLimits
from stream.kpi import response as response_kpi
from stream.kpi.segments import response_segments
from stream.models import Scores, SurveyResponse
from stream.models.followup import Followup

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
HOUR = 3600.0
MAX_AGE = 48 * HOUR


def response(nps: int | None, revision: int = 0, age: float = 60.0) -> SurveyResponse:
    scores = Scores(nps=nps) if nps is not None else Scores(csat=4)
    return SurveyResponse(
        response_id="r-1", channel="sms", occurred_at=NOW - timedelta(seconds=age),
        scores=scores, queue="billing", revision=revision,
    )  # fmt: skip


def contribution(r: SurveyResponse) -> Contribution:
    return Contribution(
        r.occurred_at.timestamp(),
        response_segments(r.channel, r.queue, r.agent_id),
        response_kpi.contribution(r),
    )


def test_a_recent_detractor_gets_a_follow_up() -> None:
    followup = followup_of(response(3), None, NOW.timestamp(), MAX_AGE)
    assert followup == Followup("r-1", response(3).occurred_at.isoformat(), "sms", 3, 0,
                                queue="billing")  # fmt: skip
    assert followup_of(response(7), None, NOW.timestamp(), MAX_AGE) is None


def test_an_answer_older_than_the_horizon_gets_none() -> None:
    old = response(2, age=MAX_AGE + 1)
    assert followup_of(old, None, NOW.timestamp(), MAX_AGE) is None
    assert followup_of(response(2, age=MAX_AGE - 1), None, NOW.timestamp(), MAX_AGE)


def test_a_revision_out_of_detractor_range_retracts() -> None:
    before = contribution(response(4))
    assert detractor_score(before) == 4
    retraction = followup_of(response(8, revision=1), before, NOW.timestamp(), MAX_AGE)
    assert retraction is not None and retraction.retracted
    assert (retraction.nps, retraction.revision) == (8, 1)
    # no NPS in the revision: the retracted score is repeated
    no_nps = followup_of(response(None, revision=1), before, NOW.timestamp(), MAX_AGE)
    assert no_nps is not None and no_nps.retracted and no_nps.nps == 4
    # a promoter revised to a passive: nothing was asked, nothing to retract
    assert followup_of(response(8, 1), contribution(response(10)), NOW.timestamp(), MAX_AGE) is None


def test_the_planner_publishes_call_backs_and_retractions() -> None:
    answers = [response(2), response(9, revision=1), response(1, revision=2)]

    def parse(raw: bytes, limits: TimeLimits) -> Parsed:
        r = answers[int(raw)]
        new = contribution(r)
        return Parsed(b"r-1", lambda s, src, o: decide_revision(s, src, o, r.revision, new), r)

    limits = TimeLimits(now=NOW, max_future=timedelta(minutes=5), max_age=timedelta(days=8))
    plan = plan_batch(
        "t:0", 0, [(i, str(i).encode()) for i in range(3)], parse, limits,
        lambda keys: [None] * len(keys), lambda keys: [0] * len(keys), lambda segment: 0,
    )  # fmt: skip
    assert [(f.nps, f.revision, f.retracted) for f in plan.followups] == [
        (2, 0, False), (9, 1, True), (1, 2, False),
    ]  # fmt: skip
    assert list(plan.states) == [b"r-1"]  # one state write for the id
    assert plan.outcomes == {"accepted": 1, "revised": 2}
