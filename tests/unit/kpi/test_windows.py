"""Rolling windows built from tumbling buckets: membership, liveness and edges."""

from __future__ import annotations

import pytest

from stream.kpi.windows import BY_NAME, LONGEST, WINDOWS, Window

SPECS = [
    ("5m", 300, 15, 20),
    ("1h", 3600, 300, 12),
    ("24h", 86400, 3600, 24),
    ("7d", 604800, 43200, 14),
]
NOWS = [1_700_000_000.0, 1_700_000_123.456, 1_714_564_800.0, 1_714_608_000.0 - 0.001]


def test_the_four_windows() -> None:
    assert [(w.name, w.seconds, w.width, w.buckets) for w in WINDOWS] == SPECS
    assert LONGEST is BY_NAME["7d"]


@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: w.name)
def test_width_at_most_a_twelfth_and_divides_the_window(window: Window) -> None:
    assert window.width * 12 <= window.seconds
    assert window.seconds % window.width == 0


@pytest.mark.parametrize("now", NOWS)
@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: w.name)
def test_bucket_boundaries(window: Window, now: float) -> None:
    current = window.bucket(now)
    assert current * window.width <= now < (current + 1) * window.width
    edge = current * window.width
    assert window.bucket(edge) == current  # a bucket's start belongs to it
    assert window.bucket(edge - 1e-6) == current - 1
    assert window.bucket(-1) == -1  # floor, not truncation


@pytest.mark.parametrize("now", NOWS)
@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: w.name)
def test_membership(window: Window, now: float) -> None:
    k, g = window.buckets, window.width
    current = window.bucket(now)
    # An event in the current bucket (even just now) counts.
    assert window.contains(window.bucket(now), now)
    assert window.contains(window.bucket(current * g), now)
    # Exactly (k-1) buckets back: the oldest bucket of the window.
    oldest = window.bucket(now - (k - 1) * g)
    assert oldest == current - (k - 1)
    assert window.contains(oldest, now)
    assert window.live(oldest, now)
    # k buckets back: expired, neither contained nor live.
    gone = window.bucket(now - k * g)
    assert gone == current - k
    assert not window.contains(gone, now)
    assert not window.live(gone, now)
    # A future bucket is live (kept for later) but not contained.
    for ahead in (1, 2):
        assert window.live(current + ahead, now)
        assert not window.contains(current + ahead, now)
    # Every bucket from oldest to current is contained: exactly k of them.
    assert sum(window.contains(b, now) for b in range(current - 2 * k, current + 3)) == k


@pytest.mark.parametrize("now", NOWS)
@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: w.name)
def test_start_is_the_first_edge(window: Window, now: float) -> None:
    k, g = window.buckets, window.width
    start = window.start(now)
    current = window.bucket(now)
    assert start == (current - k + 1) * g
    assert start % g == 0
    assert window.contains(window.bucket(start), now)
    assert not window.contains(window.bucket(start - 1e-3), now)
    # The window spans between (k-1)*g and k*g seconds of history.
    assert (k - 1) * g <= now - start < k * g


@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: w.name)
def test_window_slides_one_bucket_at_a_time(window: Window) -> None:
    g = window.width
    now = 1_700_000_000.0 - (1_700_000_000.0 % g)  # exactly on a bucket edge
    event = window.bucket(now - window.seconds + g)  # the oldest bucket at `now`
    assert window.contains(event, now)
    assert window.contains(event, now + g - 1e-3)
    assert not window.contains(event, now + g)
    assert not window.live(event, now + g)
