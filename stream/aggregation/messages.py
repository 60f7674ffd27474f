"""Wire formats of the internal topics and tables (msgspec, array-like for compactness)."""

from __future__ import annotations

import zlib

import msgspec


class Entry(msgspec.Struct, array_like=True):
    """One delta of one source message for one segment at one event time."""

    offset: int
    segment: str
    t: float  # event time, Unix seconds
    delta: list[float]  # sparse: [slot, value, slot, value, ...]


class Partial(msgspec.Struct, array_like=True):
    """Entries of one source topic-partition, in offset order, bound for one stage-2 partition."""

    src: str
    entries: list[Entry]


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
    """Stage-2 state of one (segment, window, bucket): the summary vector and per-source marks."""

    vector: list[float]
    applied: dict[str, int]


SCI_OWNER = b"sci"


def owner_partition(segment: str, partitions: int) -> int:
    """The one partition that aggregates a segment (stable across processes and restarts).

    Every customer segment goes to one partition: the SCI counts customers by band over all
    customers, so one owner sees them all and exports cx_sci_* alone. (Spreading them would
    need a third stage that adds per-partition band counts.)
    """
    if segment.startswith("c|"):
        return zlib.crc32(SCI_OWNER) % partitions
    return zlib.crc32(segment.encode()) % partitions
