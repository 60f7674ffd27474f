"""Stage 1's pre-aggregation of a batch, as arrays: its new contributions summed per
(segment, window, bucket).

Each accepted or revised message adds its contribution (and removes its previous one) to every
segment it belongs to, in every window whose bucket for its event time is live. Summed per
(segment, window, bucket) over the whole batch, a backfill spread over days folds as well as
live traffic does: the 7 d window has 14 buckets of 12 h, so a batch of 4,000 answers spread
over six days costs a queue's segment at most 14 entries, where sums per 15 s bucket (one
bucket of every window) folded almost nothing.

Per message only its event time, its segments' integer codes and its sparse slots are appended
to lists (`add`); `entries` does the rest as numpy operations: bucket numbers per window, live
masks, one int64 key per (segment, bucket), `np.unique` and a sorted `np.add.reduceat` for the
sums. A bucket is kept one bucket past the live range (stage 2, on another clock, drops what is
not live when it applies), and the churn segment's all-time totals are one more target.

    sum[(s, w, b)] = sum over contributions c with s in c.segments and bucket_w(c.t) = b of
                     sign(c) * c.delta
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from stream.aggregation.messages import Contribution, Entry
from stream.kpi import summary
from stream.kpi.sci import CUSTOMER_SLOTS
from stream.kpi.segments import CHURN, is_customer
from stream.kpi.windows import WINDOWS

ALL_TIME_TARGET = len(WINDOWS)  # Entry.window of the churn segment's all-time totals
NOT_CUSTOMER_SLOTS = np.array([i for i in range(summary.SIZE) if i not in CUSTOMER_SLOTS])
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class BatchSums:
    """The contributions of one batch (`add`), summed per (segment, window, bucket) at `now`
    (`entries`)."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.times: list[float] = []
        self.codes: dict[str, int] = {}  # segment -> its integer code in this batch
        self.segments: list[str] = []
        self.pair_rows: list[int] = []  # one (row, segment code) pair per segment of a row
        self.pair_codes: list[int] = []
        self.slot_index: list[float] = []  # row * SIZE + slot, one per sparse value
        self.slot_values: list[float] = []

    def __len__(self) -> int:
        return len(self.times)

    def add(self, contribution: Contribution, sign: int = 1) -> None:
        row = len(self.times)
        self.times.append(contribution.t)
        codes = self.codes
        for segment in contribution.segments:
            code = codes.get(segment)
            if code is None:
                code = codes[segment] = len(self.segments)
                self.segments.append(segment)
            self.pair_rows.append(row)
            self.pair_codes.append(code)
        delta = contribution.delta
        base = row * summary.SIZE
        self.slot_index += [base + slot for slot in delta[0::2]]
        values = delta[1::2]
        self.slot_values += values if sign == 1 else [-v for v in values]

    def entries(self, offset: int) -> list[Entry]:
        """The sums as entries tagged with `offset`, one per (segment, window, bucket)."""
        if not self.times:
            return []
        customers = np.fromiter(map(is_customer, self.segments), bool, len(self.segments))
        times = np.asarray(self.times)
        rows = np.asarray(self.pair_rows, dtype=np.int64)
        codes = np.asarray(self.pair_codes, dtype=np.int64)
        deltas = np.bincount(
            np.asarray(self.slot_index, dtype=np.int64), weights=self.slot_values,
            minlength=len(self.times) * summary.SIZE,
        ).reshape(len(self.times), summary.SIZE).astype(np.float64, copy=False)  # fmt: skip
        out: list[Entry] = []
        for index, window in enumerate(WINDOWS):
            buckets = np.floor(times / window.width).astype(np.int64)[rows]
            live = buckets >= math.floor(self.now / window.width) - window.buckets
            out += self._sums(offset, index, window.width, codes[live], buckets[live],
                              deltas[rows[live]], customers)  # fmt: skip
        churn = self.codes.get(CHURN)
        if churn is not None:
            mine = codes == churn
            zero = np.zeros(int(mine.sum()), dtype=np.int64)
            out += self._sums(offset, ALL_TIME_TARGET, 0, codes[mine], zero, deltas[rows[mine]],
                              customers)  # fmt: skip
        return out

    def _sums(
        self, offset: int, window: int, width: int, codes: Ints, buckets: Ints, deltas: Floats,
        customer_codes: npt.NDArray[np.bool_],
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
        customers = customer_codes[keys // span]
        sums[np.ix_(customers, NOT_CUSTOMER_SLOTS)] = 0.0
        key_rows, slots = np.nonzero(sums)
        sparse = np.empty(2 * len(slots))
        sparse[0::2] = slots
        sparse[1::2] = sums[key_rows, slots]
        flat = sparse.tolist()
        cuts = np.searchsorted(key_rows, np.arange(len(keys) + 1)).tolist()
        segments = self.segments
        out = []
        for i, (code, bucket) in enumerate(
            zip((keys // span).tolist(), (keys % span + low).tolist(), strict=True)
        ):
            # A sum of zero is sent too: its tag marks the state, so that a re-read of the
            # batch, one entry per message, cannot apply a part of what summed to zero.
            delta = flat[2 * cuts[i] : 2 * cuts[i + 1]]
            out.append(Entry(offset, segments[code], float(bucket * width), delta, window))
        return out
