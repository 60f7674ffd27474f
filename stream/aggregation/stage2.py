"""Stage 2 over a batch, pure: which bucket states a batch of partials touches, and applying it.

The agent reads every state the batch touches at once (one multi-get per table and
partition), applies the partials in offset order, and writes each changed key once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping

from stream.aggregation.buckets import DEFAULT_LIMITS, KeyPlan, apply_partial
from stream.aggregation.messages import BucketState, Partial


def keys_touched(partials: Iterable[Partial], plan: KeyPlan) -> set[bytes]:
    """Every bucket key an entry of `partials` may add to (live buckets at `plan.now`)."""
    keys: set[bytes] = set()
    for partial in partials:
        for entry in partial.entries:
            keys.update(plan.entry_keys(plan.segment(entry.segment)[0], entry))
    return keys


def apply_batch(
    states: MutableMapping[bytes, BucketState],
    partials: Iterable[Partial],
    plan: KeyPlan,
    limits: Mapping[str, int] = DEFAULT_LIMITS,
) -> set[bytes]:
    """Apply `partials` in order to `states` (missing keys are created); the changed keys."""
    changed: set[bytes] = set()
    for partial in partials:
        changed |= apply_partial(states, partial, plan.now, limits, plan)
    return changed


def copy_state(state: BucketState) -> BucketState:
    """A copy to change, so that a stored object changes only when the batch writes it back."""
    members = {member: list(vector) for member, vector in state.members.items()}
    return BucketState(list(state.vector), dict(state.applied), members)
