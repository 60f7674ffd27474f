"""Stage 2: apply entries to (segment, window, bucket) states, once each; read windows back."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, MutableMapping

from stream.aggregation.messages import BucketState, Entry, Partial
from stream.kpi import sci, summary
from stream.kpi.segments import (
    CHURN,
    CUSTOMER_PREFIX,
    OTHER,
    group_kind,
    group_of,
    is_customer,
    is_group,
    member_segment,
)
from stream.kpi.windows import WINDOWS, Window

SEP = "\x1f"
ALL_TIME = "all"  # the churn segment's all-time totals live in (churn, all, 0)
AFTER = "+after"  # (segment, window + AFTER): buckets after the window's end (future events)


# A customer's bucket keys start with its segment's prefix (the customers' table holds them).
CUSTOMER_KEYS = CUSTOMER_PREFIX.encode()


def bucket_key(segment: str, window: str, bucket: int) -> bytes:
    return f"{segment}{SEP}{window}{SEP}{bucket}".encode()


def parse_key(key: bytes) -> tuple[str, str, int]:
    segment, window, bucket = key.decode().split(SEP)
    return segment, window, int(bucket)


def live_buckets(t: float, now: float) -> list[tuple[str, int]]:
    """(window, bucket) of every window whose bucket for event time `t` is still live."""
    return [(w.name, b) for w in WINDOWS if w.live(b := w.bucket(t), now)]


def keys_for(
    segment: str, t: float, now: float, live: list[tuple[str, int]] | None = None
) -> list[bytes]:
    """The live buckets one entry lands in (expired buckets are never written again).

    `live`: `live_buckets(t, now)` when the caller has it already.
    """
    live = live_buckets(t, now) if live is None else live
    keys = [f"{segment}{SEP}{window}{SEP}{b}".encode() for window, b in live]
    if segment == CHURN:
        keys.append(bucket_key(segment, ALL_TIME, 0))
    return keys


def initial_vector(segment: str) -> list[float]:
    """Customers keep only [sum, n] of their normalised answers: there are many of them.
    Groups keep their members' vectors, none of their own."""
    if is_group(segment):
        return []
    return [0.0, 0.0] if is_customer(segment) else summary.initialize()


# Default caps: members one group record keeps per time bucket (see stream.kpi.segments).
DEFAULT_LIMITS = {"q": 200, "a": 1000}


class KeyPlan:
    """Per-batch caches of where an entry lands: its segment's group split, the live buckets
    of an event time, and the bucket keys (building keys is most of stage 2's work)."""

    def __init__(self, now: float, shards: int = 1) -> None:
        self.now = now
        self.shards = shards  # agents' group records: one per stage-2 partition
        self._live: dict[float, tuple[tuple[str, int], ...]] = {}
        self._kinds: dict[str, tuple[str, str | None, str]] = {}
        self._keys: dict[tuple[str, tuple[tuple[str, int], ...]], list[bytes]] = {}

    def segment(self, segment: str) -> tuple[str, str | None, str]:
        """(stored segment, member or None, kind: "g" group, "c" customer, "s" sums)."""
        kind = self._kinds.get(segment)
        if kind is None:
            grouped = group_of(segment, self.shards)
            if grouped:
                kind = (grouped[0], grouped[1], "g")
            else:
                kind = (segment, None, "c" if is_customer(segment) else "s")
            if len(self._kinds) > 200_000:
                self._kinds.clear()
            self._kinds[segment] = kind
        return kind

    def entry_keys(self, stored: str, entry: Entry) -> list[bytes]:
        """The keys an entry lands in: every live bucket of its event time, or the one
        bucket a batch's sum names (none once that bucket left its window)."""
        if entry.window < 0:
            return self.keys(stored, entry.t)
        if entry.window == len(WINDOWS):
            return [bucket_key(stored, ALL_TIME, 0)]
        window = WINDOWS[entry.window]
        bucket = window.bucket(entry.t)
        return [bucket_key(stored, window.name, bucket)] if window.live(bucket, self.now) else []

    def keys(self, stored: str, t: float) -> list[bytes]:
        live = self._live.get(t)
        if live is None:
            live = self._live[t] = tuple(live_buckets(t, self.now))
        cached = self._keys.get((stored, live))
        if cached is None:
            cached = keys_for(stored, t, self.now, list(live))
            if len(self._keys) > 200_000:
                self._keys.clear()
            self._keys[(stored, live)] = cached
        return cached


def apply_partial(
    states: MutableMapping[bytes, BucketState],
    partial: Partial,
    now: float,
    limits: Mapping[str, int] = DEFAULT_LIMITS,
    plan: KeyPlan | None = None,
) -> set[bytes]:
    """Add a partial's entries to `states` in place; return the keys that changed.

    An entry applies to a key only when its source offset is above that key's mark for the
    partial's source as it stood before this partial, so a re-sent entry is skipped while
    several entries of one source message (a revision's removal and addition) all apply.
    A member entry goes to its member's vector in the group record when the member is there
    already or the record has fewer than `limits[kind]` members, and to "other" otherwise.
    `plan`: the batch's KeyPlan at `now`, when the caller has one.
    """
    plan = plan or KeyPlan(now)
    src = partial.src
    marks_before: dict[bytes, int] = {}
    touched: set[bytes] = set()
    for entry in partial.entries:
        stored, member, kind = plan.segment(entry.segment)
        offset, delta = entry.offset, entry.delta
        for key in plan.entry_keys(stored, entry):
            state = states.get(key)
            if state is None:
                state = states[key] = BucketState(initial_vector(stored), {})
            mark = marks_before.get(key)
            if mark is None:
                mark = marks_before[key] = state.applied.get(src, -1)
            if offset <= mark:
                continue
            if kind == "g":
                assert member is not None
                add_to_member(state, member, limits[group_kind(stored)], delta)
            elif kind == "c":
                sci.add_to_customer(state.vector, delta)
            else:
                summary.add(state.vector, delta)
            if offset > state.applied.get(src, -1):
                state.applied[src] = offset
            touched.add(key)
    return touched


def add_to_member(state: BucketState, member: str, limit: int, delta: list[float]) -> None:
    members = state.members
    if member not in members:
        others = len(members) - (OTHER in members)
        if others >= limit:
            member = OTHER
        if member not in members:
            members[member] = summary.initialize()
    summary.add(members[member], delta)


def expired(keys: Iterable[bytes], now: float) -> list[bytes]:
    by_name = {w.name: w for w in WINDOWS}
    out = []
    for key in keys:
        try:
            _, window, bucket = parse_key(key)
        except ValueError:
            continue  # not a bucket key
        w: Window | None = by_name.get(window)
        if w is not None and not w.live(bucket, now):
            out.append(key)
    return out


def window_vectors(
    states: Mapping[bytes, BucketState] | Iterable[tuple[bytes, BucketState]], now: float
) -> dict[tuple[str, str], list[float]]:
    """Summed vectors per (segment, window) over the buckets inside each window at `now`.

    For the churn segment also (churn, window + AFTER): the buckets after the window's end,
    which its all-time totals include but no window does yet.
    """
    by_name = {w.name: w for w in WINDOWS}
    totals: dict[tuple[str, str], list[float]] = defaultdict(summary.initialize)
    items = states.items() if isinstance(states, Mapping) else states
    for key, state in items:
        segment, window, bucket = parse_key(key)
        if is_customer(segment):
            continue  # customers keep [sum, n] vectors: see customer_sums
        w = by_name.get(window)
        if is_group(segment):
            if w is not None and w.contains(bucket, now):
                for member, member_vector in state.members.items():
                    _add_into(totals[(member_segment(segment, member), window)], member_vector)
            continue
        if w is None:
            if window == ALL_TIME:
                totals[(segment, ALL_TIME)] = summary.merge(
                    totals[(segment, ALL_TIME)], state.vector
                )
            continue
        inside = w.contains(bucket, now)
        if inside or (segment == CHURN and bucket > w.bucket(now)):
            _add_into(totals[(segment, window if inside else window + AFTER)], state.vector)
    return dict(totals)


def _add_into(vector: list[float], other: list[float]) -> None:
    for i, value in enumerate(other):
        if value:
            vector[i] += value
