"""Capped groups: queue and agent segments kept as members of one record per time bucket."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream.aggregation.buckets import apply_partial, window_vectors
from stream.aggregation.messages import BucketState, Entry, Partial
from stream.aggregation.routing import owner_partition
from stream.kpi import summary as s
from stream.kpi.segments import OTHER, group_of, member_segment, shard_of

NOW = 1_714_600_000.0
SRC = "cx.responses:0"


def entry(offset: int, segment: str) -> Entry:
    return Entry(offset, segment, NOW - 5, [s.N, 1])


def n_by_segment(states: dict[bytes, BucketState], window: str = "5m") -> dict[str, float]:
    return {seg: v[s.N] for (seg, w), v in window_vectors(states, NOW).items() if w == window}


def test_group_of_and_member_segment_round_trip() -> None:
    assert group_of("q|sms|billing") == ("q|sms|*", "billing")
    assert group_of("a|agent-7") == ("a|0|*", "agent-7")
    shard = shard_of("agent-7", 4)
    assert group_of("a|agent-7", 4) == (f"a|{shard}|*", "agent-7")
    assert group_of("q|sms|all") is None and group_of("churn") is None
    assert group_of("c|cust-1") is None
    assert member_segment("q|sms|*", "billing") == "q|sms|billing"
    assert member_segment("a|3|*", "agent-7") == "a|agent-7"


def test_a_group_and_its_members_have_one_owner() -> None:
    for partitions in (1, 4, 12):
        for queue in ("billing", "x" * 40, OTHER):
            assert owner_partition(f"q|ivr|{queue}", partitions) == owner_partition(
                "q|ivr|*", partitions
            )
        shard = shard_of("agent-1", partitions)
        assert owner_partition("a|agent-1", partitions) == shard
        assert owner_partition(f"a|{shard}|*", partitions) == shard
        assert owner_partition("c|cust-1", partitions) == shard_of("cust-1", partitions)


def test_agents_and_customers_spread_over_every_partition() -> None:
    for kind in ("a", "c"):
        owners = [owner_partition(f"{kind}|id-{i}", 4) for i in range(4000)]
        shares = [owners.count(p) / len(owners) for p in range(4)]
        assert max(shares) < 0.27, shares


def test_members_beyond_the_limit_count_as_other() -> None:
    states: dict[bytes, BucketState] = {}
    segments = ["q|ivr|a", "q|ivr|b", "q|ivr|c", "q|ivr|a", "q|ivr|d"]
    partial = Partial(SRC, [entry(i, seg) for i, seg in enumerate(segments)])
    apply_partial(states, partial, NOW, {"q": 2, "a": 2})
    assert n_by_segment(states) == {"q|ivr|a": 2, "q|ivr|b": 1, "q|ivr|other": 2}
    # Re-delivered: a no-op, although the record is full now.
    apply_partial(states, partial, NOW, {"q": 2, "a": 2})
    assert n_by_segment(states) == {"q|ivr|a": 2, "q|ivr|b": 1, "q|ivr|other": 2}


@given(
    st.lists(st.tuples(st.sampled_from("qa"), st.integers(0, 30)), max_size=120),
    st.integers(1, 6),
    st.integers(1, 10),
)
def test_caps_bound_members_and_lose_nothing(
    names: list[tuple[str, int]], limit: int, per_partial: int
) -> None:
    segments = [f"q|web|queue-{n}" if kind == "q" else f"a|agent-{n}" for kind, n in names]
    entries = [entry(i, seg) for i, seg in enumerate(segments)]
    states: dict[bytes, BucketState] = {}
    for start in range(0, len(entries), per_partial):
        partial = Partial(SRC, entries[start : start + per_partial])
        apply_partial(states, partial, NOW, {"q": limit, "a": limit})
        apply_partial(states, partial, NOW, {"q": limit, "a": limit})  # replayed
    counts = n_by_segment(states, "7d")
    for prefix in ("q|web|", "a|"):
        mine = {seg: n for seg, n in counts.items() if seg.startswith(prefix)}
        assert sum(mine.values()) == sum(seg.startswith(prefix) for seg in segments)
        assert len([seg for seg in mine if not seg.endswith(OTHER)]) <= limit
        # Who made it into the record keeps every one of its answers.
        for seg, n in mine.items():
            if not seg.endswith(OTHER):
                assert n == segments.count(seg)
