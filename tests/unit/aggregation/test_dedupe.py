"""Stage 1: exactly-once decisions per id (revisions, dispatches, customer lifecycle)."""

from __future__ import annotations

import pytest

from stream.aggregation.dedupe import (
    Decision,
    already_applied,
    decide_lifecycle,
    decide_once,
    decide_revision,
    transition_entries,
)
from stream.aggregation.messages import Contribution, Entry, IdState
from stream.kpi import summary as s
from stream.kpi.segments import CHURN, response_segments

SRC = "cx.responses:3"
OTHER_SRC = "cx.responses:4"
SEGMENTS = response_segments("sms", "billing", "agent-7")
OLD = Contribution(1_700_000_000.0, SEGMENTS, [s.N, 1, s.NPS + 3, 1, s.CSI_N, 1, s.CSI_SUM, -1.5])
NEW_SEGMENTS = response_segments("sms", "sales", None)
NEW = Contribution(1_700_000_100.0, NEW_SEGMENTS, [s.N, 1, s.NPS + 10, 1])


def plus(offset: int, c: Contribution) -> list[Entry]:
    return [Entry(offset, segment, c.t, list(c.delta)) for segment in c.segments]


def minus(offset: int, c: Contribution) -> list[Entry]:
    negated = [-x if i % 2 else x for i, x in enumerate(c.delta)]
    return [Entry(offset, segment, c.t, negated) for segment in c.segments]


# -- responses: decide_revision ------------------------------------------------------------------


def test_new_response_is_accepted_for_every_segment() -> None:
    decision = decide_revision(None, SRC, 41, 0, OLD)
    assert decision.outcome == "accepted"
    assert decision.entries == plus(41, OLD)
    assert {e.segment for e in decision.entries} == set(SEGMENTS)
    assert len(decision.entries) == 5  # (c,q), (c,all), (all,q), (all,all), agent
    assert decision.state == IdState(0, SRC, 41, OLD, None)


def test_new_response_with_a_revision_number_is_accepted() -> None:
    decision = decide_revision(None, SRC, 7, 2, OLD)
    assert decision.outcome == "accepted"
    assert decision.state == IdState(2, SRC, 7, OLD, None)


def test_higher_revision_removes_old_then_adds_new_at_one_offset() -> None:
    state = IdState(0, SRC, 41, OLD, None)
    decision = decide_revision(state, SRC, 55, 1, NEW)
    assert decision.outcome == "revised"
    assert decision.entries == minus(55, OLD) + plus(55, NEW)
    assert {e.offset for e in decision.entries} == {55}
    assert decision.state == IdState(1, SRC, 55, NEW, OLD)
    # The removal exactly cancels the earlier addition, slot by slot.
    for removal, addition in zip(decision.entries[:5], plus(41, OLD), strict=True):
        vector = s.add(s.add(s.initialize(), addition.delta), removal.delta)
        assert vector == s.initialize()


def test_revision_from_another_source_partition_is_decided_normally() -> None:
    state = IdState(0, SRC, 41, OLD, None)
    decision = decide_revision(state, OTHER_SRC, 3, 1, NEW)
    assert decision.outcome == "revised"
    assert decision.state == IdState(1, OTHER_SRC, 3, NEW, OLD)


def test_revision_of_a_revision_replaces_the_current_answer() -> None:
    state = IdState(1, SRC, 55, NEW, OLD)
    third = Contribution(1_700_000_200.0, NEW_SEGMENTS, [s.N, 1, s.NPS + 0, 1])
    decision = decide_revision(state, SRC, 60, 5, third)
    assert decision.outcome == "revised"
    assert decision.entries == minus(60, NEW) + plus(60, third)  # not OLD: it is gone already
    assert decision.state == IdState(5, SRC, 60, third, NEW)


@pytest.mark.parametrize("revision", [0, 1, 2])
def test_lower_or_equal_revision_is_a_duplicate(revision: int) -> None:
    state = IdState(2, SRC, 41, OLD, None)
    decision = decide_revision(state, SRC, 42, revision, NEW)
    assert decision == Decision("duplicate", [], None)


@pytest.mark.parametrize(
    "state",
    [IdState(0, SRC, 41, OLD, None), IdState(1, SRC, 41, NEW, OLD)],
    ids=["accepted", "revised"],
)
@pytest.mark.parametrize("revision", [0, 1, 7])
def test_replay_at_the_state_offset_resends_the_same_transition(
    state: IdState, revision: int
) -> None:
    decision = decide_revision(state, SRC, 41, revision, NEW)
    assert decision.outcome == "replayed"
    assert decision.state is None
    assert decision.entries == transition_entries(41, state)
    if state.previous is None:  # the replay of an acceptance re-sends what it sent
        assert decision.entries == plus(41, OLD)
    else:
        assert decision.entries == minus(41, OLD) + plus(41, NEW)


def test_replay_of_a_revision_resends_what_the_revision_sent() -> None:
    accepted = decide_revision(None, SRC, 10, 0, OLD)
    assert accepted.state is not None
    revised = decide_revision(accepted.state, SRC, 20, 1, NEW)
    assert revised.state is not None
    assert decide_revision(revised.state, SRC, 20, 1, NEW).entries == revised.entries


@pytest.mark.parametrize("offset", [0, 10, 40])
@pytest.mark.parametrize("revision", [0, 3])
def test_lower_offset_of_the_same_source_is_a_replay_without_entries(
    offset: int, revision: int
) -> None:
    state = IdState(1, SRC, 41, NEW, OLD)
    assert decide_revision(state, SRC, offset, revision, OLD) == Decision("replayed", [], None)


def test_lower_offset_of_another_source_is_not_a_replay() -> None:
    state = IdState(1, SRC, 41, NEW, OLD)
    assert decide_revision(state, OTHER_SRC, 5, 1, OLD).outcome == "duplicate"
    assert decide_revision(state, OTHER_SRC, 5, 2, OLD).outcome == "revised"


def test_already_applied() -> None:
    state = IdState(0, SRC, 41, OLD, None)
    assert already_applied(state, SRC, 41)
    assert already_applied(state, SRC, 0)
    assert not already_applied(state, SRC, 42)
    assert not already_applied(state, OTHER_SRC, 41)
    assert not already_applied(None, SRC, 41)


def test_response_without_segments_has_no_entries() -> None:
    bare = Contribution(1.0, [], [s.N, 1])
    decision = decide_revision(None, SRC, 1, 0, bare)
    assert decision.outcome == "accepted"
    assert decision.entries == []


# -- dispatches: decide_once ---------------------------------------------------------------------

DISPATCH = Contribution(1_700_000_000.0, response_segments("email", None, None), [s.DISPATCHES, 1])


def test_dispatch_counts_once() -> None:
    first = decide_once(None, "cx.dispatches:0", 5, DISPATCH)
    assert first.outcome == "accepted"
    assert first.entries == plus(5, DISPATCH)
    assert first.state == IdState(0, "cx.dispatches:0", 5, DISPATCH, None)
    later = Contribution(1_700_000_500.0, DISPATCH.segments, [s.DISPATCHES, 1])
    assert decide_once(first.state, "cx.dispatches:0", 9, later) == Decision("duplicate", [], None)
    assert decide_once(first.state, "cx.dispatches:1", 2, later).outcome == "duplicate"


def test_dispatch_replays() -> None:
    state = IdState(0, "cx.dispatches:0", 5, DISPATCH, None)
    replay = decide_once(state, "cx.dispatches:0", 5, DISPATCH)
    assert replay == Decision("replayed", plus(5, DISPATCH), None)
    assert decide_once(state, "cx.dispatches:0", 4, DISPATCH) == Decision("replayed", [], None)


# -- customers: decide_lifecycle -----------------------------------------------------------------

LC = "cx.lifecycle:2"
T = 1_700_000_000.0


def lifecycle_entry(offset: int, slot: int, t: float = T) -> list[Entry]:
    return [Entry(offset, CHURN, t, [slot, 1])]


def test_activation_of_an_unknown_customer() -> None:
    decision = decide_lifecycle(None, LC, 3, "activated", T, CHURN)
    assert decision.outcome == "accepted"
    assert decision.entries == lifecycle_entry(3, s.ACTIVATIONS)
    assert decision.state == IdState(1, LC, 3, Contribution(T, [CHURN], [s.ACTIVATIONS, 1]), None)


def test_cancellation_of_an_unknown_customer_is_a_duplicate() -> None:
    assert decide_lifecycle(None, LC, 3, "cancelled", T, CHURN) == Decision("duplicate", [], None)


def test_lifecycle_state_machine() -> None:
    state: IdState | None = None
    steps = [
        ("activated", "accepted", s.ACTIVATIONS),
        ("activated", "duplicate", None),  # already active
        ("cancelled", "accepted", s.CANCELLATIONS),
        ("cancelled", "duplicate", None),  # already inactive
        ("activated", "accepted", s.ACTIVATIONS),  # re-activation counts again
        ("cancelled", "accepted", s.CANCELLATIONS),
    ]
    active = False
    for offset, (event_type, outcome, slot) in enumerate(steps, start=10):
        t = T + offset
        decision = decide_lifecycle(state, LC, offset, event_type, t, CHURN)
        assert decision.outcome == outcome, (offset, event_type)
        if slot is None:
            assert decision.entries == []
            assert decision.state is None
            continue
        # Each change only adds to the totals: no removal of the previous change.
        assert decision.entries == lifecycle_entry(offset, slot, t)
        assert decision.state is not None
        assert decision.state.previous is None
        active = not active
        assert decision.state.revision == (1 if active else 0)
        state = decision.state


def test_lifecycle_replays() -> None:
    activated = decide_lifecycle(None, LC, 7, "activated", T, CHURN)
    assert activated.state is not None
    cancelled = decide_lifecycle(activated.state, LC, 9, "cancelled", T + 5, CHURN)
    assert cancelled.state is not None
    # Replay at the offset that set the state: the same change again.
    replay = decide_lifecycle(cancelled.state, LC, 9, "cancelled", T + 5, CHURN)
    assert replay == Decision("replayed", cancelled.entries, None)
    # Earlier messages of the same source: replays without entries, whatever their type.
    for event_type in ("activated", "cancelled"):
        earlier = decide_lifecycle(cancelled.state, LC, 7, event_type, T, CHURN)
        assert earlier == Decision("replayed", [], None)
    # A later activation is new.
    again = decide_lifecycle(cancelled.state, LC, 12, "activated", T + 9, CHURN)
    assert again.outcome == "accepted"
    assert again.entries == lifecycle_entry(12, s.ACTIVATIONS, T + 9)
