"""Stage 1: exactly-once decisions per id (response, dispatch, customer lifecycle)."""

from __future__ import annotations

from typing import NamedTuple

from stream.aggregation.messages import Contribution, Entry, IdState
from stream.kpi import summary


class Decision(NamedTuple):  # one per message: a tuple is the cheapest immutable record
    outcome: str  # accepted | revised | duplicate | replayed
    replayed: list[Entry]  # a replay's entries; [] for every other outcome
    state: IdState | None  # the state to store, None when unchanged
    offset: int = -1  # the message's, for accepted and revised decisions

    @property
    def entries(self) -> list[Entry]:
        """The entries one message sends: an accepted or revised decision's transition, built
        only when asked (a summed batch adds the state's contributions instead)."""
        if self.state is not None and self.outcome in ("accepted", "revised"):
            return transition_entries(self.offset, self.state)
        return self.replayed


def _entries(offset: int, contribution: Contribution | None, sign: int) -> list[Entry]:
    if contribution is None:
        return []
    delta = contribution.delta
    if sign != 1:
        delta = [x * sign if i % 2 else x for i, x in enumerate(delta)]
    # One delta list shared by the segments' entries: nothing changes an entry's delta.
    return [Entry(offset, seg, contribution.t, delta) for seg in contribution.segments]


def transition_entries(offset: int, state: IdState) -> list[Entry]:
    """The entries that take the totals from `state.previous` to `state.current`."""
    return _entries(offset, state.previous, -1) + _entries(offset, state.current, 1)


def already_applied(state: IdState | None, src: str, offset: int) -> bool:
    """True for a re-delivered message of the source that set `state`, at or before it.

    Offsets of one source only grow, so a message at or below the offset that set the state
    was processed before (a replay after a crash). At the offset itself the message re-sends
    its entries (their first sending may be lost); below it, its entries are already in Kafka,
    sent before the state that followed them was written.
    """
    return state is not None and state.src == src and offset <= state.offset


def replay(state: IdState, offset: int) -> Decision:
    entries = transition_entries(offset, state) if offset == state.offset else []
    return Decision("replayed", entries, None)


def decide_revision(
    state: IdState | None, src: str, offset: int, revision: int, new: Contribution
) -> Decision:
    """Responses: the highest revision wins; lower or equal revisions are duplicates."""
    if state is not None and already_applied(state, src, offset):
        return replay(state, offset)
    if state is None:
        fresh = IdState(revision, src, offset, new, None)
        return Decision("accepted", [], fresh, offset)
    if revision <= state.revision:
        return Decision("duplicate", [], None)
    revised = IdState(revision, src, offset, new, state.current)
    return Decision("revised", [], revised, offset)


def decide_once(state: IdState | None, src: str, offset: int, new: Contribution) -> Decision:
    """Dispatches: an id counts once, whatever it carries later."""
    if state is not None and already_applied(state, src, offset):
        return replay(state, offset)
    if state is not None:
        return Decision("duplicate", [], None)
    fresh = IdState(0, src, offset, new, None)
    return Decision("accepted", [], fresh, offset)


def decide_lifecycle(
    state: IdState | None, src: str, offset: int, event_type: str, t: float, segment: str
) -> Decision:
    """Customers: activated while inactive counts an activation, cancelled while active counts
    a cancellation; anything else changes nothing (a duplicate). `revision` 1 means active."""
    if state is not None and already_applied(state, src, offset):
        return replay(state, offset)
    active = state is not None and state.revision == 1
    if event_type == "activated" and not active:
        slot = summary.ACTIVATIONS
    elif event_type == "cancelled" and active:
        slot = summary.CANCELLATIONS
    else:
        return Decision("duplicate", [], None)
    change = Contribution(t, [segment], [slot, 1])
    # `previous` None: each lifecycle change adds to the totals, nothing is replaced.
    new_state = IdState(0 if active else 1, src, offset, change, None)
    return Decision("accepted", [], new_state, offset)
