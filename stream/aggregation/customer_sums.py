"""The customers' SCI sums of one stage-2 partition, held as arrays for the read side.

The customers' buckets live in RocksDB, one key per (customer, window, bucket) and about
twenty per customer: counting the SCI bands by reading them back costs seconds for 100,000
customers. This index mirrors them in memory as columns instead:

  - every customer gets an integer code (a dict, one entry per customer);
  - every (window, bucket) keeps the changes of its customers' [sum, n] as chunks of three
    arrays (codes, sums, ns), folded into one chunk (`np.unique` + `np.bincount`) when they
    pile up; a bucket that left its window is dropped;
  - the bands of a window are a numpy pass over its buckets' chunks: the per-customer sums
    (`np.bincount` with weights), then the band of each customer with answers in exact
    integer arithmetic (stream.kpi.sci.band_counts).

It is fed the *changes* of the stored states (new minus old), so it agrees with the store
whatever wrote it: a stage-2 batch, a replayed delta record, a rebuild from the store's items.
Sums are integer sixtieths held in float64: exact below 2**53. A row takes 20 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from stream.kpi import sci
from stream.kpi.windows import WINDOWS

Codes = npt.NDArray[np.int32]
Values = npt.NDArray[np.float64]
# (customer segment, window name, bucket, change of the sum, change of the count)
CustomerChange = tuple[str, str, int, float, float]
# A bucket's chunks are folded into one when there are more than this many.
FOLD_AT = 16
# The codes of customers with no bucket left are dropped once there are this many codes (then
# at twice as many as were kept): customers come and go, the dict must not grow forever.
COMPACT_AT = 65_536
_WINDOW_INDEX = {w.name: i for i, w in enumerate(WINDOWS)}


@dataclass(slots=True)
class BucketColumns:
    """The [sum, n] changes of one (window, bucket), as chunks of parallel arrays."""

    chunks: list[tuple[Codes, Values, Values]] = field(default_factory=list)

    def add(self, codes: Codes, sums: Values, ns: Values) -> None:
        self.chunks.append((codes, sums, ns))
        if len(self.chunks) > FOLD_AT:
            self.chunks = [self.folded()]

    def folded(self) -> tuple[Codes, Values, Values]:
        """One chunk: a row per customer with a non-zero sum or count."""
        codes, sums, ns = (np.concatenate(column) for column in zip(*self.chunks, strict=True))
        unique, inverse = np.unique(codes, return_inverse=True)
        size = len(unique)
        summed = np.bincount(inverse, weights=sums, minlength=size).astype(np.float64, copy=False)
        counted = np.bincount(inverse, weights=ns, minlength=size).astype(np.float64, copy=False)
        kept = (summed != 0) | (counted != 0)
        return unique[kept], summed[kept], counted[kept]


class CustomerSums:
    """Per-customer [sum, n] of SCI answers per (window, bucket) of one partition."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.buckets: dict[tuple[int, int], BucketColumns] = {}
        self._compact_at = COMPACT_AT

    def add(self, changes: Iterable[CustomerChange]) -> None:
        """Add (customer segment, window name, bucket, sum change, count change) rows."""
        grouped: dict[tuple[int, int], tuple[list[int], list[float], list[float]]] = {}
        codes = self.codes
        for customer, window, bucket, d_sum, d_n in changes:
            if d_sum == 0 and d_n == 0:
                continue
            code = codes.get(customer)
            if code is None:
                code = codes[customer] = len(codes)
            index = _WINDOW_INDEX.get(window)
            if index is None:
                continue  # not a window's bucket
            columns = grouped.get((index, bucket))
            if columns is None:
                columns = grouped[(index, bucket)] = ([], [], [])
            columns[0].append(code)
            columns[1].append(d_sum)
            columns[2].append(d_n)
        for where, (c, s, n) in grouped.items():
            columns_of = self.buckets.get(where)
            if columns_of is None:
                columns_of = self.buckets[where] = BucketColumns()
            columns_of.add(
                np.asarray(c, np.int32), np.asarray(s, np.float64), np.asarray(n, np.float64)
            )

    def window_sums(self, window: int, now: float) -> tuple[Values, Values]:
        """Per customer code: the [sum, n] of its buckets inside WINDOWS[window] at `now`."""
        w = WINDOWS[window]
        parts = [
            chunk
            for (index, bucket), columns in self.buckets.items()
            if index == window and w.contains(bucket, now)
            for chunk in columns.chunks
        ]
        size = len(self.codes)
        if not parts:
            return np.zeros(size, np.float64), np.zeros(size, np.float64)
        codes, sums, ns = (np.concatenate(column) for column in zip(*parts, strict=True))
        summed = np.bincount(codes, weights=sums, minlength=size).astype(np.float64, copy=False)
        counted = np.bincount(codes, weights=ns, minlength=size).astype(np.float64, copy=False)
        return summed, counted

    def band_counts(self, now: float) -> dict[str, list[int]]:
        """Per window with customers: how many customers fall in each SCI band (sci.BANDS)."""
        out: dict[str, list[int]] = {}
        for index, w in enumerate(WINDOWS):
            sums, ns = self.window_sums(index, now)
            counts = sci.band_counts(sums, ns)
            if any(counts):
                out[w.name] = counts
        return out

    def expire(self, now: float) -> None:
        """Drop the buckets that left their window (they never count again): `now` is the
        clock's time, not a query's (a query about tomorrow must not drop today's)."""
        gone = [key for key in self.buckets if not WINDOWS[key[0]].live(key[1], now)]
        for key in gone:
            del self.buckets[key]
        if len(self.codes) >= self._compact_at:
            self.compact()
            self._compact_at = max(COMPACT_AT, 2 * len(self.codes))

    def compact(self) -> None:
        """Number again the customers that still have buckets; forget the others."""
        for columns in self.buckets.values():
            columns.chunks = [columns.folded()]
        chunks = [chunk for columns in self.buckets.values() for chunk in columns.chunks]
        live = np.unique(np.concatenate([c[0] for c in chunks])) if chunks else np.arange(0)
        renumber = np.full(len(self.codes), -1, np.int32)
        renumber[live] = np.arange(len(live), dtype=np.int32)
        names = list(self.codes)  # in code order: codes are handed out in insertion order
        self.codes = {names[old]: new for new, old in enumerate(live.tolist())}
        for columns in self.buckets.values():
            columns.chunks = [(renumber[c], s, n) for c, s, n in columns.chunks]
