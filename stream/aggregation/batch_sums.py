"""Stage 1's pre-aggregation of a batch, as arrays: its new contributions summed per
(segment, window, bucket).

Each accepted or revised message adds its contribution (and removes its previous one) to every
segment it belongs to, in every window whose bucket for its event time is live. Summed per
(segment, window, bucket) over the whole batch, a backfill spread over days folds as well as
live traffic does: the 7 d window has 14 buckets of 12 h, so a batch of 4,000 answers spread
over six days costs a queue's segment at most 14 entries, where sums per 15 s bucket (one
bucket of every window) folded almost nothing.

Per message only references to its event time, segments and sparse slots are appended to
lists (`add`); `entries` does the rest once per batch: one integer code per segment (a dict
over the flattened segments), then numpy operations: the dense slots (`np.bincount`), bucket
numbers per window, live masks, one int64 key per (segment, bucket), `np.unique` and a sorted
`np.add.reduceat` for the sums. A bucket is kept one bucket past the live range (stage 2, on
another clock, drops what is not live when it applies), and the churn segment's all-time
totals are one more target.

    sum[(s, w, b)] = sum over contributions c with s in c.segments and bucket_w(c.t) = b of
                     sign(c) * c.delta

A customer's segment (its SCI sums) is summed per bucket of the finest window instead, and
each sum lands in every window's bucket that holds it (`Entry.window` -1): a customer seldom
answers twice in a batch, so sums per window would send four entries per recent answer, not
one. (Answers live in the longest window only, a backfill's, are summed per bucket of that
window, as the other segments are: one entry each either way, and stage 2 finds one key
faster than it finds every window's.) Stage 2 then adds one tag's sums of a customer to one
state more than once (two answers a minute apart share the hour's bucket), so a customer's
sums travel in one record (stream/aggregation/stage1.py, `split_sums`).
"""

from __future__ import annotations

import math
from itertools import chain
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from stream.aggregation.messages import Contribution, Entry
from stream.kpi import summary
from stream.kpi.sci import CUSTOMER_SLOTS
from stream.kpi.segments import CHURN, is_customer
from stream.kpi.windows import LONGEST, WINDOWS

FINEST = min(WINDOWS, key=lambda w: w.width)
# A finest bucket lies inside one bucket of every window: a customer's sum per finest bucket
# then lands where each of its answers would.
assert all(w.width % FINEST.width == 0 for w in WINDOWS)
LONGEST_INDEX = WINDOWS.index(LONGEST)
SHORTER = [i for i in range(len(WINDOWS)) if i != LONGEST_INDEX]

ALL_TIME_TARGET = len(WINDOWS)  # Entry.window of the churn segment's all-time totals
NOT_CUSTOMER_SLOTS = np.array([i for i in range(summary.SIZE) if i not in CUSTOMER_SLOTS])
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class Names(NamedTuple):
    """A batch's segments by integer code, and which of them are customers'."""

    segments: list[str]
    customers: npt.NDArray[np.bool_]


class BatchSums:
    """The contributions of one batch (`add`), summed per (segment, window, bucket) at `now`
    (`entries`)."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.times: list[float] = []
        self.signs: list[float] = []
        self.segment_lists: list[list[str]] = []
        self.deltas: list[list[float]] = []  # sparse: [slot, value, slot, value, ...]

    def __len__(self) -> int:
        return len(self.times)

    def add(self, contribution: Contribution, sign: int = 1) -> None:
        self.times.append(contribution.t)
        self.signs.append(sign)
        self.segment_lists.append(contribution.segments)
        self.deltas.append(contribution.delta)

    def entries(self, offset: int) -> list[Entry]:
        """The sums as entries tagged with `offset`, one per (segment, window, bucket)."""
        if not self.times:
            return []
        codes_of: dict[str, int] = {}
        codes = np.fromiter(
            (
                codes_of.setdefault(s, len(codes_of))
                for s in chain.from_iterable(self.segment_lists)
            ),
            np.int64,
        )
        names = Names(list(codes_of), np.fromiter(map(is_customer, codes_of), bool, len(codes_of)))
        rows = np.repeat(np.arange(len(self.times)), [len(s) for s in self.segment_lists])
        times = np.asarray(self.times)
        deltas = self._dense_deltas()
        out: list[Entry] = []
        of_customer = names.customers[codes]
        # Per window: each row's bucket, and whether it is live (one bucket of margin).
        buckets = [np.floor(times / w.width).astype(np.int64)[rows] for w in WINDOWS]
        live = [b >= math.floor(self.now / w.width) - w.buckets
                for b, w in zip(buckets, WINDOWS, strict=True)]  # fmt: skip
        for index, window in enumerate(WINDOWS):
            mine = live[index] & ~of_customer
            out += self._sums(offset, index, window.width, codes[mine], buckets[index][mine],
                              deltas[rows[mine]], names)  # fmt: skip
        # A customer rarely answers twice in a batch: sums per window would be an entry per
        # answer and window. A recent answer's sum per (customer, finest bucket) lands in every
        # window's bucket holding it instead (window -1), as one message's entry does; an
        # answer live in the longest window only is summed per bucket of that window.
        recent = np.logical_or.reduce([live[i] for i in SHORTER]) & of_customer
        old = live[LONGEST_INDEX] & of_customer & ~recent
        finest = np.floor(times / FINEST.width).astype(np.int64)[rows]
        out += self._sums(offset, -1, FINEST.width, codes[recent], finest[recent],
                          deltas[rows[recent]], names)  # fmt: skip
        out += self._sums(offset, LONGEST_INDEX, LONGEST.width, codes[old],
                          buckets[LONGEST_INDEX][old], deltas[rows[old]], names)  # fmt: skip
        churn = codes_of.get(CHURN)
        if churn is not None:
            mine = codes == churn
            zero = np.zeros(int(mine.sum()), dtype=np.int64)
            out += self._sums(offset, ALL_TIME_TARGET, 0, codes[mine], zero, deltas[rows[mine]],
                              names)  # fmt: skip
        return out

    def _dense_deltas(self) -> Floats:
        """The signed contributions as one row of summary slots each."""
        lengths = np.fromiter(map(len, self.deltas), np.int64, len(self.deltas))
        if (lengths % 2).any():  # would shift every later value into the wrong slot
            raise ValueError("a sparse delta has an odd number of items")
        lengths //= 2
        flat = np.fromiter(chain.from_iterable(self.deltas), np.float64, 2 * int(lengths.sum()))
        rows = np.repeat(np.arange(len(self.deltas)), lengths)
        slots = flat[0::2].astype(np.int64)
        values = flat[1::2] * np.repeat(np.asarray(self.signs, dtype=np.float64), lengths)
        return (
            np.bincount(
                rows * summary.SIZE + slots,
                weights=values,
                minlength=len(self.deltas) * summary.SIZE,
            )
            .reshape(len(self.deltas), summary.SIZE)
            .astype(np.float64, copy=False)
        )

    def _sums(
        self, offset: int, window: int, width: int, codes: Ints, buckets: Ints, deltas: Floats,
        names: Names,
    ) -> list[Entry]:  # fmt: skip
        if not len(codes):
            return []
        low = int(buckets.min())
        span = int(buckets.max()) - low + 1
        keys, inverse = np.unique(codes * span + (buckets - low), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        starts = np.flatnonzero(np.diff(inverse[order], prepend=-1))
        sums = np.add.reduceat(deltas[order], starts, axis=0)
        # A customer's buckets keep only its SCI slots (stream.kpi.sci): send only those.
        customers = names.customers[keys // span]
        sums[np.ix_(customers, NOT_CUSTOMER_SLOTS)] = 0.0
        key_rows, slots = np.nonzero(sums)
        sparse = np.empty(2 * len(slots))
        sparse[0::2] = slots
        sparse[1::2] = sums[key_rows, slots]
        flat = sparse.tolist()
        cuts = np.searchsorted(key_rows, np.arange(len(keys) + 1)).tolist()
        segments = names.segments
        out = []
        for i, (code, bucket) in enumerate(
            zip((keys // span).tolist(), (keys % span + low).tolist(), strict=True)
        ):
            # A sum of zero is sent too: its tag marks the state, so that a re-read of the
            # batch, one entry per message, cannot apply a part of what summed to zero.
            delta = flat[2 * cuts[i] : 2 * cuts[i + 1]]
            out.append(Entry(offset, segments[code], float(bucket * width), delta, window))
        return out
