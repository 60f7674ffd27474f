"""Stage 2: applying partials to bucket states once each, and reading windows back."""

from __future__ import annotations

import itertools

from stream.aggregation.buckets import (
    AFTER,
    ALL_TIME,
    apply_partial,
    bucket_key,
    expired,
    keys_for,
    parse_key,
    window_vectors,
)
from stream.aggregation.messages import BucketState, Entry, Partial
from stream.kpi import churn
from stream.kpi import summary as s
from stream.kpi.segments import CHURN
from stream.kpi.windows import BY_NAME, WINDOWS

NOW = 1_714_600_000.0
SRC = "cx.responses:1"
SEG = "q|sms|billing"


def test_bucket_key_round_trip() -> None:
    key = bucket_key("q|all|all", "7d", 39687)
    assert parse_key(key) == ("q|all|all", "7d", 39687)


def test_keys_for_live_buckets_only() -> None:
    # 2 hours ago: gone from 5m and 1h, inside 24h and 7d.
    keys = keys_for(SEG, NOW - 7200, NOW)
    assert sorted(parse_key(k)[1] for k in keys) == ["24h", "7d"]
    # Just now: every window; the churn segment also keeps an all-time total.
    assert len(keys_for(SEG, NOW, NOW)) == len(WINDOWS)
    churn_keys = keys_for(CHURN, NOW - 30 * 86400, NOW)
    assert churn_keys == [bucket_key(CHURN, ALL_TIME, 0)]


def test_partial_applies_once_and_revisions_apply_whole() -> None:
    states: dict[bytes, BucketState] = {}
    t = NOW - 60
    accepted = Partial(SRC, [Entry(10, SEG, t, [s.N, 1, s.NPS + 3, 1])])
    assert apply_partial(states, accepted, NOW)
    assert not apply_partial(states, accepted, NOW)  # re-sent: skipped everywhere
    # A revision's removal and addition share one offset; both apply.
    revised = Partial(
        SRC,
        [Entry(20, SEG, t, [s.N, -1, s.NPS + 3, -1]), Entry(20, SEG, t, [s.N, 1, s.NPS + 9, 1])],
    )
    apply_partial(states, revised, NOW)
    apply_partial(states, revised, NOW)
    apply_partial(states, accepted, NOW)  # an older partial re-delivered late
    for window in WINDOWS:
        vector = window_vectors(states, NOW)[(SEG, window.name)]
        assert (vector[s.N], vector[s.NPS + 3], vector[s.NPS + 9]) == (1, 0, 1)
    # Marks are per source: the same offset from another source partition is another message.
    apply_partial(states, Partial("cx.responses:2", [Entry(10, SEG, t, [s.N, 1])]), NOW)
    assert window_vectors(states, NOW)[(SEG, "5m")][s.N] == 2


def test_window_vectors_sum_contained_buckets() -> None:
    states: dict[bytes, BucketState] = {}
    ages = [10, 400, 5000, 90_000, 6 * 86400]
    entries = [Entry(i, SEG, NOW - age, [s.N, 1]) for i, age in enumerate(ages)]
    apply_partial(states, Partial(SRC, entries), NOW)
    vectors = window_vectors(states, NOW)
    counts = {w.name: vectors.get((SEG, w.name), s.initialize())[s.N] for w in WINDOWS}
    expected = {w.name: sum(w.contains(w.bucket(NOW - age), NOW) for age in ages) for w in WINDOWS}
    assert counts == expected
    assert counts["7d"] == 5
    # An hour later the 5-minute bucket has expired.
    later = NOW + 3600
    assert any(parse_key(k)[1] == "5m" for k in expired(states, later))
    assert window_vectors(states, later).get((SEG, "5m"), s.initialize())[s.N] == 0


def test_churn_window_and_all_time() -> None:
    states: dict[bytes, BucketState] = {}
    entries = [
        Entry(1, CHURN, NOW - 30 * 86400, [s.ACTIVATIONS, 1]),
        Entry(2, CHURN, NOW - 20 * 86400, [s.ACTIVATIONS, 1]),
        Entry(3, CHURN, NOW - 10 * 86400, [s.ACTIVATIONS, 1]),
        Entry(4, CHURN, NOW - 2 * 86400, [s.ACTIVATIONS, 1]),  # inside 7d
        Entry(5, CHURN, NOW - 3600, [s.CANCELLATIONS, 1]),  # inside 24h and 7d
    ]
    apply_partial(states, Partial("cx.lifecycle:0", entries), NOW)
    vectors = window_vectors(states, NOW)
    total = vectors[(CHURN, ALL_TIME)]
    assert (total[s.ACTIVATIONS], total[s.CANCELLATIONS]) == (4, 1)
    week = churn.churn(vectors[(CHURN, "7d")], total)
    assert week == churn.Churn(1 / 3, 1, 3)
    day = churn.churn(vectors[(CHURN, "24h")], total)
    assert day == churn.Churn(1 / 4, 1, 4)


def test_churn_ignores_events_after_now() -> None:
    states: dict[bytes, BucketState] = {}
    window = BY_NAME["5m"]
    ahead = (window.bucket(NOW) + 2) * window.width  # a future bucket, 15..45 s ahead
    entries = [
        Entry(1, CHURN, NOW - 2 * 86400, [s.ACTIVATIONS, 1]),
        Entry(2, CHURN, NOW - 2 * 86400, [s.ACTIVATIONS, 1]),
        Entry(3, CHURN, ahead, [s.ACTIVATIONS, 1]),  # not active at the window start
        Entry(4, CHURN, NOW - 1, [s.CANCELLATIONS, 1]),
    ]
    apply_partial(states, Partial("cx.lifecycle:0", entries), NOW)
    vectors = window_vectors(states, NOW)
    after = vectors[(CHURN, "5m" + AFTER)]
    result = churn.churn(vectors[(CHURN, "5m")], vectors[(CHURN, ALL_TIME)], after)
    # 2 customers active at the window start, 1 of them cancelled: 0.5.
    assert result == churn.Churn(0.5, 1, 2)


def test_a_large_partial_splits_at_offset_boundaries_and_applies_the_same() -> None:
    from stream.aggregation.messages import split_partial

    t = NOW - 10
    entries = []
    for offset in range(50):  # each message: a removal and an addition at one offset
        entries += [Entry(offset, SEG, t, [s.N, -1]), Entry(offset, SEG, t, [s.N, 1, s.NPS + 9, 1])]
    whole = Partial(SRC, entries)
    pieces = split_partial(whole, max_entries=7)
    assert [e for p in pieces for e in p.entries] == entries
    assert all(len(p.entries) <= 8 for p in pieces)
    for left, right in itertools.pairwise(pieces):
        assert left.entries[-1].offset < right.entries[0].offset  # never one offset in two
    one: dict = {}
    apply_partial(one, whole, NOW)
    split: dict = {}
    for piece in pieces:
        apply_partial(split, piece, NOW)
    assert split == one
