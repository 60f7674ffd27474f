"""A group's members as arrays: their summary vectors summed over a window's buckets.

A group record (stream.kpi.segments: the queues of a channel, the agents of a shard) keeps,
per time bucket, up to its cap of members, each with its own summary vector. The read side
needs each member's vector summed over the buckets inside a window, for every window:

    sums[m] = sum over the window's buckets b of members_b[m]     (absent member: 0)

`MemberArrays` turns each bucket's members into (names, matrix) once and keeps them until
told that the bucket changed (`forget`), so summing a window is one scatter-add per bucket,
whatever the number of members. Each member's sum is added in bucket order, as a loop over
the buckets would, so the floats are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from stream.aggregation.buckets import bucket_key, parse_key
from stream.aggregation.messages import BucketState
from stream.kpi import summary
from stream.kpi.segments import OTHER
from stream.kpi.windows import Window

Loader = Callable[[list[bytes]], Sequence[BucketState | None]]


@dataclass(frozen=True, slots=True)
class MemberBucket:
    """One group bucket's members: `names[i]` has the summary vector `matrix[i]`."""

    names: list[str]
    matrix: np.ndarray  # len(names) x summary.SIZE, float64


EMPTY = MemberBucket([], np.zeros((0, summary.SIZE)))


def member_bucket(state: BucketState | None) -> MemberBucket:
    if state is None or not state.members:
        return EMPTY
    # Stored vectors are in the current layout once decoded (stream.aggregation.messages).
    matrix = np.array(list(state.members.values()), dtype=np.float64)
    return MemberBucket(list(state.members), matrix.reshape(len(state.members), summary.SIZE))


def sum_buckets(buckets: Iterable[MemberBucket]) -> MemberBucket:
    """Each member's vectors summed over `buckets` (in their order); names in order of first
    appearance."""
    buckets = [b for b in buckets if b.names]
    index: dict[str, int] = {}
    codes = [np.array([index.setdefault(n, len(index)) for n in b.names]) for b in buckets]
    total = np.zeros((len(index), summary.SIZE))
    for code, bucket in zip(codes, buckets, strict=True):
        total[code] += bucket.matrix  # a member appears once per bucket: no lost updates
    return MemberBucket(list(index), total)


def ranked(members: MemberBucket, top_k: int) -> tuple[list[int], list[int]]:
    """(the top `top_k` members by responses, ties by name; the rest, "other" included), as
    indices into `members`: what a gauge exports by name, and what it folds into "other"."""
    names = members.names
    ranking = [i for i, name in enumerate(names) if name != OTHER]
    if ranking:
        responses = members.matrix[ranking, summary.N]
        # Object dtype: Python's order of str (numpy's "U" would drop trailing NULs).
        labels = np.array([names[i] for i in ranking], dtype=object)
        order = np.lexsort((labels, -responses))
        ranking = [ranking[i] for i in order]
    rest = ranking[top_k:] + [i for i, name in enumerate(names) if name == OTHER]
    return ranking[:top_k], rest


def window_keys(group: str, window: Window, now: float) -> list[bytes]:
    """The keys of `group`'s buckets inside `window` at `now`, oldest first."""
    current = window.bucket(now)
    return [bucket_key(group, window.name, b) for b in range(current - window.buckets + 1,
                                                              current + 1)]  # fmt: skip


class MemberArrays:
    """Group buckets as `MemberBucket`s, converted once and kept until they change, and each
    (group, window)'s sums, kept until one of its buckets changes or the window moves on (the
    read model's rows and the final step's parts both read every group's windows per build)."""

    def __init__(self) -> None:
        self._buckets: dict[bytes, MemberBucket] = {}
        self._sums: dict[tuple[str, str, int], MemberBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def forget(self, keys: Iterable[bytes]) -> None:
        """These buckets changed: read them again when next summed."""
        # Every bucket a kept sum covers is held here (absent ones as EMPTY): only keys held
        # here can make a sum stale.
        stale = {parse_key(k)[:2] for k in keys if self._buckets.pop(k, None) is not None}
        if stale and self._sums:
            self._sums = {k: v for k, v in self._sums.items() if k[:2] not in stale}

    def clear(self) -> None:
        self._buckets.clear()
        self._sums.clear()

    def keep(self, live: Callable[[bytes], bool]) -> None:
        """Drop the buckets for which `live(key)` is false (left every window)."""
        self._buckets = {k: b for k, b in self._buckets.items() if live(k)}
        self._sums.clear()

    def window(self, group: str, window: Window, now: float, load: Loader) -> MemberBucket:
        """`group`'s members summed over `window` at `now`; `load` reads bucket states.
        The result is shared: its arrays are read-only."""
        cached = (group, window.name, window.bucket(now))
        total = self._sums.get(cached)
        if total is not None:
            return total
        keys = window_keys(group, window, now)
        missing = [k for k in keys if k not in self._buckets]
        if missing:
            for key, state in zip(missing, load(missing), strict=True):
                self._buckets[key] = member_bucket(state)
        total = sum_buckets(self._buckets[k] for k in keys)
        total.matrix.flags.writeable = False
        self._sums[cached] = total
        return total
