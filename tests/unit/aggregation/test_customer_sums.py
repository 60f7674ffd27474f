"""The customers' SCI sums as arrays count the same bands as a customer-by-customer count."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.aggregation import customer_sums
from stream.aggregation.customer_sums import CustomerSums
from stream.kpi import sci
from stream.kpi.windows import WINDOWS

NOW = 1_714_600_000.0

# (customer, window index, buckets before the current one, sum change, count change)
changes = st.tuples(
    st.integers(0, 12),
    st.integers(0, len(WINDOWS) - 1),
    st.integers(-2, 30),
    st.integers(-60, 60),
    st.integers(-1, 3),
)


def expected_counts(rows: list[tuple[int, int, int, int, int]], now: float) -> dict[str, list[int]]:
    """The oracle: per window, sci.sci over every customer's summed buckets inside it."""
    totals: dict[str, dict[int, list[float]]] = {w.name: defaultdict(lambda: [0.0, 0.0])
                                                 for w in WINDOWS}  # fmt: skip
    for customer, index, back, d_sum, d_n in rows:
        w = WINDOWS[index]
        if w.contains(w.bucket(NOW) - back, now):
            totals[w.name][customer][0] += d_sum
            totals[w.name][customer][1] += d_n
    out = {}
    for name, by_customer in totals.items():
        result = sci.sci((total, n) for total, n in by_customer.values())
        if result is not None:
            out[name] = [result.customers[band] for band in sci.BANDS]
    return out


def as_change(row: tuple[int, int, int, int, int]) -> tuple[str, str, int, float, float]:
    customer, index, back, d_sum, d_n = row
    w = WINDOWS[index]
    return f"c|cust-{customer}", w.name, w.bucket(NOW) - back, float(d_sum), float(d_n)


@settings(max_examples=300)
@given(
    st.lists(changes, max_size=80),
    st.integers(1, 20),
    st.sampled_from([0.0, 20.0, 4000.0]),
    st.integers(0, 3),
)
def test_band_counts_equal_a_count_per_customer(
    rows: list[tuple[int, int, int, int, int]], chunk: int, later: float, compact_every: int
) -> None:
    # Counts stay non-negative in the store: keep each (customer, bucket)'s n >= 0.
    seen: dict[tuple[int, int, int], int] = defaultdict(int)
    kept = []
    for row in rows:
        key = row[:3]
        if seen[key] + row[4] >= 0:
            seen[key] += row[4]
            kept.append(row)
    sums = CustomerSums()
    for i, start in enumerate(range(0, len(kept), chunk)):  # folded past FOLD_AT chunks
        sums.add(as_change(row) for row in kept[start : start + chunk])
        if compact_every and i % compact_every == 0:
            sums.expire(NOW + later)  # (as band_counts does) then renumber who is left
            sums.compact()
    assert sums.band_counts(NOW + later) == expected_counts(kept, NOW + later)
    sums.expire(NOW + later)  # what left every window at that time counts nowhere any more
    assert sums.band_counts(NOW + later) == expected_counts(kept, NOW + later)


def test_a_bucket_folds_its_chunks_and_drops_customers_back_to_zero() -> None:
    sums = CustomerSums()
    w = WINDOWS[1]
    bucket = w.bucket(NOW)
    for _ in range(customer_sums.FOLD_AT + 1):
        sums.add([("c|a", w.name, bucket, 60.0, 1.0), ("c|b", w.name, bucket, 6.0, 1.0)])
    sums.add([("c|b", w.name, bucket, -6.0 * (customer_sums.FOLD_AT + 1),
               -1.0 * (customer_sums.FOLD_AT + 1))])  # fmt: skip
    columns = sums.buckets[(1, bucket)]
    assert len(columns.chunks) == 2  # folded once at FOLD_AT + 1 chunks, then one more
    codes, _, ns = columns.folded()
    assert codes.tolist() == [sums.codes["c|a"]] and ns.tolist() == [customer_sums.FOLD_AT + 1]
    assert sums.band_counts(NOW)["1h"] == [1, 0, 0]


def test_buckets_that_left_their_window_are_dropped() -> None:
    sums = CustomerSums()
    w = WINDOWS[0]
    sums.add([("c|a", w.name, w.bucket(NOW), 60.0, 1.0)])
    assert sums.band_counts(NOW) == {"5m": [1, 0, 0]}
    assert sums.band_counts(NOW + w.seconds + w.width) == {}
    assert sums.buckets != {}  # a query about a later time drops nothing
    sums.expire(NOW + w.seconds + w.width)
    assert sums.buckets == {}


def test_band_edges_are_exact() -> None:
    # 0.9 and 0.7 exactly (in sixtieths: 54 and 42 per answer) are secure and neutral.
    sums = np.array([54.0, 53.0, 42.0, 41.0, 0.0, 108.0])
    ns = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 2.0])
    assert sci.band_counts(sums, ns) == [2, 2, 1]


def test_customers_without_buckets_lose_their_codes() -> None:
    sums = CustomerSums()
    short, long_ = WINDOWS[0], WINDOWS[3]
    sums.add([(f"c|{i}", short.name, short.bucket(NOW), 54.0, 1.0) for i in range(5)])
    sums.add([("c|kept", long_.name, long_.bucket(NOW), 6.0, 1.0)])
    sums.add([("c|3", long_.name, long_.bucket(NOW), 60.0, 1.0)])
    later = NOW + short.seconds + short.width  # the 5m buckets are gone, the 7d ones not
    sums.expire(later)
    before = sums.band_counts(later)
    sums.compact()
    assert sorted(sums.codes) == ["c|3", "c|kept"]
    assert sums.band_counts(later) == before == {"7d": [1, 0, 1]}
    sums.add([("c|new", long_.name, long_.bucket(NOW), 60.0, 1.0)])
    assert sums.band_counts(later) == {"7d": [2, 0, 1]}
