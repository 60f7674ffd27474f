"""GroupWindows: what it reads again, and when it starts over."""

from __future__ import annotations

from stream.aggregation.buckets import bucket_key
from stream.aggregation.messages import BucketState
from stream.kpi import summary
from stream.kpi.windows import BY_NAME
from stream.pipeline.group_windows import GroupWindows

NOW = 1_750_000_000.0
GROUP = "a|0|*"
WINDOW = BY_NAME["5m"]
KEY = bucket_key(GROUP, "5m", WINDOW.bucket(NOW))


def state(n: int) -> BucketState:
    return BucketState([], {}, {"ann": [n] * summary.SIZE})


def responses(groups: GroupWindows, fresh: bool = False) -> float:
    return float(groups.window(GROUP, WINDOW, NOW, fresh).matrix[0, summary.N])


def test_a_written_bucket_is_read_again_when_marked_and_all_when_the_stores_change() -> None:
    store = {KEY: state(1)}
    token = [0]
    groups = GroupWindows(lambda keys: [store.get(k) for k in keys], lambda: token[0])
    assert responses(groups) == 1
    store[KEY] = state(2)  # a take wrote it ...
    assert responses(groups) == 1  # ... not committed yet: not reported
    groups.mark(0, [KEY])  # committed
    assert responses(groups) == 2
    store[KEY] = state(3)  # recovery wrote it: no take reported it ...
    token[0] += 1  # ... but the table counted a changelog batch
    assert responses(groups) == 3


def test_a_fresh_read_leaves_the_cache_as_it_was() -> None:
    store = {KEY: state(1)}
    groups = GroupWindows(lambda keys: [store.get(k) for k in keys], lambda: 0)
    assert responses(groups) == 1
    cached = len(groups.arrays)
    store[KEY] = state(5)
    assert responses(groups, fresh=True) == 5
    assert len(groups.arrays) == cached and responses(groups) == 1
