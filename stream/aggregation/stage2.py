"""Stage 2 over a batch, pure: which bucket states a batch of partials touches, and applying it.

The agent reads every state the batch touches at once (one multi-get per table and
partition), applies the partials in offset order, and writes each changed key once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping

from stream.aggregation.buckets import DEFAULT_LIMITS, apply_partial, keys_for
from stream.aggregation.messages import BucketState, Partial
from stream.kpi.segments import group_of


def keys_touched(partials: Iterable[Partial], now: float) -> set[bytes]:
    """Every bucket key an entry of `partials` may add to (live buckets only)."""
    keys: set[bytes] = set()
    for partial in partials:
        for entry in partial.entries:
            grouped = group_of(entry.segment)
            keys.update(keys_for(grouped[0] if grouped else entry.segment, entry.t, now))
    return keys


def apply_batch(
    states: MutableMapping[bytes, BucketState],
    partials: Iterable[Partial],
    now: float,
    limits: Mapping[str, int] = DEFAULT_LIMITS,
) -> set[bytes]:
    """Apply `partials` in order to `states` (missing keys are created); the changed keys."""
    changed: set[bytes] = set()
    for partial in partials:
        changed |= apply_partial(states, partial, now, limits)
    return changed


def copy_state(state: BucketState) -> BucketState:
    """A copy to change, so that a stored object changes only when the batch writes it back."""
    members = {member: list(vector) for member, vector in state.members.items()}
    return BucketState(list(state.vector), dict(state.applied), members)
