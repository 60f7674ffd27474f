"""The engine's group records (queues of a channel, agents of a shard) summed per window, as
arrays (stream.aggregation.group_sums), kept in step with the engine: the buckets a stage-2
batch changed are read again, and every bucket after a rebalance or a table recovery (which
write the stores without a batch). The read model's rows and the final step's parts share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from stream.aggregation.buckets import parse_key
from stream.aggregation.group_sums import MemberArrays, MemberBucket
from stream.aggregation.messages import BucketState
from stream.kpi.windows import BY_NAME, WINDOWS, Window
from stream.pipeline.app import CxApp
from stream.pipeline.health import table_recovery
from stream.pipeline.kpi_engine import KpiEngine


class GroupWindows:
    def __init__(self, app: CxApp, engine: KpiEngine) -> None:
        self.app = app
        self.engine = engine
        self.arrays = MemberArrays()
        self._stores: object = None  # what the cached buckets were read under
        self._edges: tuple[int, ...] = ()
        engine.listeners.append(self.mark)

    def mark(self, partition: int, keys: Iterable[bytes]) -> None:
        self.arrays.forget(keys)

    def window(self, group: str, window: Window, now: float) -> MemberBucket:
        """`group`'s members summed over `window` at `now`."""
        stores = (
            self.app.consumer_generation_id,
            frozenset(self.engine.owned_partitions()),
            table_recovery(self.app).done,
        )
        if stores != self._stores:
            self.arrays.clear()
            self._stores = stores
        edges = tuple(w.bucket(now) for w in WINDOWS)
        if edges != self._edges:
            self._edges = edges
            self.arrays.keep(lambda key: _live(key, now))
        return self.arrays.window(group, window, now, self._load)

    def _load(self, keys: list[bytes]) -> Sequence[BucketState | None]:
        return self.engine.buckets.get_many(0, keys)  # memory store: any partition


def _live(key: bytes, now: float) -> bool:
    _, window, bucket = parse_key(key)
    return BY_NAME[window].contains(bucket, now)
