"""The final step: merged parts give the same exported agents and SCI as one owner would."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from stream.aggregation.group_sums import MemberBucket
from stream.aggregation.parts import (
    decode_part,
    encode_part,
    make_part,
    merge_agents,
    merge_sci,
)
from stream.exporter.collector import fold
from stream.kpi import report, sci
from stream.kpi import summary as s
from stream.kpi.rows import KpiRow
from stream.kpi.segments import OTHER, Segment, shard_of

NOW = 1_714_600_000.0
PARTITIONS = 4


def members_by_window(agent_vectors: dict[tuple[str, str], list[float]]) -> dict[str, MemberBucket]:
    """(agent segment, window) -> vector, as each window's members (what make_part takes)."""
    by_window: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for (segment, window), v in agent_vectors.items():
        by_window[window][Segment.parse(segment).agent_id] = v
    return {
        window: MemberBucket(list(vectors), np.array(list(vectors.values()), dtype=np.float64))
        for window, vectors in by_window.items()
    }


def vector(n: int, promoters: int) -> list[float]:
    v = s.initialize()
    v[s.N] = n
    v[s.NPS + 10] = promoters
    v[s.NPS + 0] = n - promoters
    return v


def rows(vectors: dict[tuple[str, str], list[float]]) -> list[KpiRow]:
    return [KpiRow(w, "a", report.kpis(v), v, agent_id=seg[2:]) for (seg, w), v in vectors.items()]


agents = st.dictionaries(
    st.sampled_from([f"agent-{i}" for i in range(40)] + [OTHER]),
    st.tuples(st.integers(1, 8), st.integers(0, 8)).map(lambda t: (t[0], min(t))),
    max_size=40,
)


@given(agents, st.integers(1, 6))
def test_merged_top_k_and_other_equal_one_owners(
    counts: dict[str, tuple[int, int]], top_k: int
) -> None:
    everyone = {(f"a|{a}", "1h"): vector(n, p) for a, (n, p) in counts.items()}
    by_partition: list[dict[tuple[str, str], list[float]]] = [{} for _ in range(PARTITIONS)]
    for (segment, window), v in everyone.items():
        # OTHER (beyond a partition's member cap) may exist on any partition: split it.
        if segment == f"a|{OTHER}":
            for p in range(PARTITIONS):
                by_partition[p][(segment, window)] = [x / PARTITIONS for x in v]
            continue
        by_partition[shard_of(segment[2:], PARTITIONS)][(segment, window)] = v
    parts = [
        decode_part(encode_part(make_part(p, NOW, members_by_window(by_partition[p]), {}, top_k)))
        for p in range(PARTITIONS)
    ]
    merged = fold(rows(merge_agents(parts)), top_k)
    single = fold(rows(everyone), top_k)
    assert list(merged) == list(single)
    # Each partition sends at most top_k agents and one "other" per window.
    assert all(len(part.agents.get("1h", [])) <= top_k + 1 for part in parts)


@given(st.lists(st.tuples(st.integers(0, 60 * 5), st.integers(1, 5)), max_size=60))
def test_merged_sci_equals_one_owners(customers: list[tuple[int, int]]) -> None:
    sums = [(float(total), float(n)) for total, n in customers]
    per_partition: list[list[tuple[float, float]]] = [[] for _ in range(PARTITIONS)]
    for i, (total, n) in enumerate(sums):
        per_partition[shard_of(f"cust-{i}", PARTITIONS)].append((total, n))
    counts = [sci.band_counts(*np.array(mine).reshape(-1, 2).T) for mine in per_partition]
    parts = [  # a part names the windows where it has customers
        make_part(p, NOW, {}, {"24h": mine} if any(mine) else {}, 3)
        for p, mine in enumerate(counts)
    ]
    merged = merge_sci(parts)
    single = sci.sci(sums)
    if single is None:
        assert merged == {}
    else:
        assert merged["24h"] == single
