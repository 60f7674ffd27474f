"""Group members as arrays: the window sums, the cache's contract and the ranking, against the
walk over the bucket states that the read side did before (window_vectors, the fold)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.aggregation.buckets import bucket_key, window_vectors
from stream.aggregation.group_sums import MemberArrays, member_bucket, ranked, sum_buckets
from stream.aggregation.messages import BucketState
from stream.exporter.collector import fold, fold_members
from stream.kpi import report, summary
from stream.kpi.rows import KpiRow
from stream.kpi.segments import OTHER, member_segment
from stream.kpi.windows import BY_NAME, WINDOWS

NOW = 1_750_000_000.0
GROUP = "q|sms|*"
NAMES = ["billing", "claims", "sales", "é-queue", "ann", "ann\x00", "", OTHER]

# A member's vector: a few slots, integer counts and fractional sums (CSI), as answers give.
vectors = st.lists(st.sampled_from([0, 1, 2, 5, 0.25, 1 / 3]), min_size=summary.SIZE,
                   max_size=summary.SIZE)  # fmt: skip
buckets = st.dictionaries(st.sampled_from(NAMES), vectors, max_size=5)
# (window, bucket offset back from now's bucket, its members): some outside the window
states = st.lists(
    st.tuples(st.sampled_from([w.name for w in WINDOWS]), st.integers(0, 25), buckets),
    max_size=12,
)


def build(spec: list[tuple[str, int, dict[str, list[float]]]]) -> dict[bytes, BucketState]:
    out = {}
    for window, back, members in spec:
        bucket = BY_NAME[window].bucket(NOW) - back
        out[bucket_key(GROUP, window, bucket)] = BucketState([], {}, dict(members))
    return out


@settings(max_examples=150, deadline=None)
@given(states)
def test_window_sums_equal_the_walk_over_the_states(spec) -> None:
    states = build(spec)
    arrays = MemberArrays()
    expected = window_vectors(sorted(states.items()), NOW)  # in bucket order, as the reader
    for window in WINDOWS:
        sums = arrays.window(GROUP, window, NOW, lambda keys: [states.get(k) for k in keys])
        got = dict(zip(sums.names, sums.matrix.tolist(), strict=True))
        want = {segment: vector for (segment, w), vector in expected.items() if w == window.name}
        assert {member_segment(GROUP, m): v for m, v in got.items()} == want


def test_a_bucket_is_read_again_only_once_forgotten() -> None:
    window = BY_NAME["5m"]
    key = bucket_key(GROUP, "5m", window.bucket(NOW))
    states = {key: BucketState([], {}, {"billing": [1] * summary.SIZE})}
    reads: list[list[bytes]] = []

    def load(keys: list[bytes]) -> list[BucketState | None]:
        reads.append(keys)
        return [states.get(k) for k in keys]

    arrays = MemberArrays()
    assert arrays.window(GROUP, window, NOW, load).matrix[0, 0] == 1
    states[key].members["billing"] = [3] * summary.SIZE
    assert arrays.window(GROUP, window, NOW, load).matrix[0, 0] == 1  # cached
    arrays.forget([key])
    assert arrays.window(GROUP, window, NOW, load).matrix[0, 0] == 3
    assert [len(r) for r in reads] == [window.buckets, 1]
    arrays.keep(lambda k: k != key)
    assert len(arrays) == window.buckets - 1


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(NAMES), vectors, max_size=5), st.integers(0, 5))
def test_ranking_and_fold_equal_the_fold_of_rows(members, top_k) -> None:
    bucket = member_bucket(BucketState([], {}, members))
    rows = [KpiRow("1h", "q", None, list(v), channel="sms", queue=m) for m, v in members.items()]
    assert list(fold_members(bucket, top_k)) == sorted_fold(rows, top_k)
    assert list(fold(rows, top_k)) == sorted_fold(rows, top_k)
    top, rest = ranked(bucket, top_k)
    assert sorted(top + rest) == list(range(len(members)))
    assert OTHER not in [bucket.names[i] for i in top]


def test_sum_buckets_keeps_first_appearance_order_and_adds_in_bucket_order() -> None:
    first = member_bucket(BucketState([], {}, {"b": [0.1] * summary.SIZE}))
    second = member_bucket(
        BucketState([], {}, {"a": [1] * summary.SIZE, "b": [0.2] * summary.SIZE})
    )
    total = sum_buckets([first, second])
    assert total.names == ["b", "a"]
    assert total.matrix[0, 0] == 0.1 + 0.2 and total.matrix[1, 0] == 1


def sorted_fold(rows: list[KpiRow], top_k: int) -> list[tuple[str, dict[str, float]]]:
    """The fold's definition over rows, by a sort: the top_k by responses then name, then the
    rest and "other" merged (summary.merge_all) as "other"."""
    ranking = sorted(
        (r for r in rows if r.label != OTHER), key=lambda r: (-r.vector[summary.N], r.label)
    )
    out = [(row.label, row.kpis) for row in ranking[:top_k]]
    rest = ranking[top_k:] + [r for r in rows if r.label == OTHER]
    if rest:
        out.append((OTHER, report.kpis(summary.merge_all(r.vector for r in rest))))
    return out


def test_window_sums_are_kept_until_one_of_their_buckets_changes() -> None:
    window = BY_NAME["1h"]
    key = bucket_key(GROUP, "1h", window.bucket(NOW))
    states = {key: BucketState([], {}, {"billing": [1] * summary.SIZE})}
    loads: list[int] = []

    def load(keys: list[bytes]) -> list[BucketState | None]:
        loads.append(len(keys))
        return [states.get(k) for k in keys]

    arrays = MemberArrays()
    first = arrays.window(GROUP, window, NOW, load)
    assert arrays.window(GROUP, window, NOW, load) is first
    assert not first.matrix.flags.writeable  # shared by every reader of the build
    arrays.forget([bucket_key(GROUP, "5m", BY_NAME["5m"].bucket(NOW)), b"c|x\x1f1h\x1f1"])
    assert arrays.window(GROUP, window, NOW, load) is first  # not one of its buckets
    states[key].members["billing"] = [2] * summary.SIZE
    arrays.forget([key])
    assert arrays.window(GROUP, window, NOW, load).matrix[0, 0] == 2
    assert loads == [window.buckets, 1]
