"""The engine's group records (queues of a channel, agents of a shard) summed per window, as
arrays (stream.aggregation.group_sums), kept in step with the engine: the buckets a stage-2
batch changed are read again; every bucket after a rebalance, or once the store was written
without a take (changelog batches applied by recovery, counted per partition by the table).
The read model's rows and the final step's parts share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from stream.aggregation.buckets import parse_key
from stream.aggregation.group_sums import (
    MemberArrays,
    MemberBucket,
    member_bucket,
    sum_buckets,
    window_keys,
)
from stream.aggregation.messages import BucketState
from stream.kpi.windows import BY_NAME, WINDOWS, Window
from stream.pipeline.app import CxApp
from stream.pipeline.health import table_recovery
from stream.pipeline.kpi_engine import KpiEngine

Loader = Callable[[list[bytes]], Sequence[BucketState | None]]


class GroupWindows:
    def __init__(self, load: Loader, stores: Callable[[], object]) -> None:
        """`load`: committed bucket states by key; `stores`: what the store's contents are
        read under (the cache starts again when it changes)."""
        self.load = load
        self.stores = stores
        self.arrays = MemberArrays()
        self._stores: object = None
        self._edges: tuple[int, ...] = ()

    @classmethod
    def of(cls, app: CxApp, engine: KpiEngine) -> GroupWindows:
        def stores() -> object:
            owned = sorted(engine.owned_partitions())
            replayed = engine.buckets.replayed
            return (app.consumer_generation_id, tuple(owned), table_recovery(app).done,
                    tuple(replayed[p] for p in owned))  # fmt: skip

        def load(keys: list[bytes]) -> Sequence[BucketState | None]:
            return engine.buckets.get_many(0, keys, staged=False)  # memory store: any partition

        groups = cls(load, stores)
        engine.listeners.append(groups.mark)
        return groups

    def mark(self, partition: int, keys: Iterable[bytes]) -> None:
        """Keys a stage-2 take committed: read them again."""
        self.arrays.forget(keys)

    def window(self, group: str, window: Window, now: float, fresh: bool = False) -> MemberBucket:
        """`group`'s members summed over `window` at `now` (`fresh`: read from the store,
        leaving the cache as it is, e.g. for a request's `?at=`)."""
        if fresh:
            states = self.load(window_keys(group, window, now))
            return sum_buckets(member_bucket(state) for state in states)
        stores = self.stores()
        if stores != self._stores:
            self.arrays.clear()
            self._stores = stores
        edges = tuple(w.bucket(now) for w in WINDOWS)
        if edges != self._edges:
            self._edges = edges
            self.arrays.keep(lambda key: _live(key, now))
        return self.arrays.window(group, window, now, self.load)


def _live(key: bytes, now: float) -> bool:
    _, window, bucket = parse_key(key)
    return BY_NAME[window].contains(bucket, now)
