"""Wire formats of the internal topics and tables (msgspec, array-like for compactness)."""

from __future__ import annotations

import msgspec

from stream.kpi import summary
from stream.kpi.segments import is_customer


class Entry(msgspec.Struct, array_like=True):
    """One delta for one segment at one event time: of one source message, or a batch's sum
    for one bucket (stream/aggregation/batch_sums.py). `window` -1: it lands in every window's
    live bucket of `t` (a message's entry, a customer's sum per bucket of the finest window);
    otherwise the index into WINDOWS of the one window it lands in, `t` the bucket's start
    (len(WINDOWS): the churn segment's all-time totals)."""

    offset: int
    segment: str
    t: float  # event time, Unix seconds
    delta: list[float]  # sparse: [slot, value, slot, value, ...]
    window: int = -1


class Partial(msgspec.Struct, array_like=True):
    """Entries of one source topic-partition, in offset order, bound for one stage-2 partition."""

    src: str
    entries: list[Entry]


# Entries per partial record: about 60 bytes each, so a record stays far below the broker's
# 1 MB message limit whatever the batch size.
MAX_ENTRIES = 4000


def split_partial(partial: Partial, max_entries: int = MAX_ENTRIES) -> list[Partial]:
    """`partial` as consecutive partials of at most `max_entries` entries (more when entries
    must stay `together`): stage 2 compares an entry with its key's mark as it stood before the
    partial, so a revision's removal and addition must travel together."""
    entries = partial.entries
    if len(entries) <= max_entries:
        return [partial]
    out: list[Partial] = []
    start = 0
    while start < len(entries):
        end = min(start + max_entries, len(entries))
        while end < len(entries) and together(entries[end - 1], entries[end]):
            end += 1
        out.append(Partial(partial.src, entries[start:end]))
        start = end
    return out


def together(first: Entry, second: Entry) -> bool:
    """Whether two consecutive entries must travel in one record: those of one tag (a source
    message's, or a batch's sums), except two customers', which reach states of their own.
    Stage 2 compares an entry with its key's mark as it stood before the record, so entries
    of one tag that reach one state (a revision's removal and addition, a group's members, a
    customer's sums in two buckets of one hour) must not be split apart."""
    if first.offset != second.offset:
        return False
    return not (
        first.segment != second.segment
        and is_customer(first.segment)
        and is_customer(second.segment)
    )


class Contribution(msgspec.Struct, array_like=True):
    t: float
    segments: list[str]
    delta: list[float]


class IdState(msgspec.Struct, array_like=True):
    """Stage-1 state of one id: what it contributes now, and the message that set it."""

    revision: int
    src: str
    offset: int
    current: Contribution | None
    previous: Contribution | None = None


class BucketState(msgspec.Struct, array_like=True):
    """Stage-2 state of one (segment, window, bucket): the summary vector and per-source marks.

    A group's record (segment "q|<channel>|*" or "a|<shard>|*") keeps its members' vectors in
    `members` instead, so that the choice of member or "other" and the marks that make a
    replayed entry a no-op are written together, atomically, in one changelog record.
    """

    vector: list[float]
    applied: dict[str, int]
    members: dict[str, list[float]] = msgspec.field(default_factory=dict)
    # The summary layout of the vectors (stream.kpi.summary); records from before layouts
    # were recorded are layout 1.
    layout: int = summary.LAYOUT

    def __post_init__(self) -> None:
        if self.layout != summary.LAYOUT:
            summary.upgrade(self.vector, self.layout)
            for vector in self.members.values():
                summary.upgrade(vector, self.layout)
            self.layout = summary.LAYOUT
