"""BatchRouter: each partition's records reach an agent in offset order from the committed
offset, holes of a read_committed fetch are passed over, a fetch that overlapped a seek is read
again, and only finished batches are committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from stream.faustx import BatchRouter, RecordBatch

A = TP("t.responses", 0)
B = TP("t.responses", 1)
OTHER = TP("t.other", 0)


@dataclass
class Consumer:
    """The consumer surface the router uses (assignment, seek, flow)."""

    assigned: set[TP]
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    flow_active: bool = True

    def assignment(self) -> set[TP]:
        return self.assigned

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


def records(tp: TP, *offsets: int) -> list[Any]:
    return [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=o) for o in offsets]


async def make(
    assigned: set[TP], committed: dict[TP, int | None]
) -> tuple[BatchRouter, Consumer, list[RecordBatch]]:
    consumer = Consumer(assigned)
    app = SimpleNamespace(
        consumer_generation_id=1, monitor=None, _consumer=consumer, rebalancing=False
    )
    router = BatchRouter(app)
    received: list[RecordBatch] = []

    async def handler(batch: RecordBatch) -> bool:
        received.append(batch)
        return True

    router.route(A.topic, handler)
    await router.on_seek(consumer, committed)  # as Faust's seek after an assignment
    return router, consumer, received


def offsets(batches: list[RecordBatch]) -> list[tuple[int, list[int]]]:
    return [(b.tp.partition, [r.offset for r in b.records]) for b in batches]


async def take(
    router: BatchRouter, consumer: Consumer, *batches: list[Any], fresh: bool = True
) -> dict[TP, Any]:
    fetched: dict[TP, Any] = {}
    for batch in batches:
        tp = TP(batch[0].topic, batch[0].partition)
        fetched[tp] = batch
    await router.take(consumer, fetched, stale=set() if fresh else set(fetched))
    return fetched  # what Faust's own path still sees


async def test_starts_at_the_committed_offset_and_drops_repeats() -> None:
    router, consumer, got = await make({A, B}, {A: 10, B: None})
    assert sorted(consumer.seeks) == [(A, 10), (B, 0)]  # every partition read from its start
    await take(router, consumer, records(A, 8, 9, 10, 11, 11), records(B, 0, 1))
    assert offsets(got) == [(0, [10, 11]), (1, [0, 1])]


async def test_other_topics_stay_on_fausts_path() -> None:
    router, consumer, got = await make({A, OTHER}, {A: 0})
    left = await take(router, consumer, records(A, 0), records(OTHER, 5))
    assert list(left) == [OTHER] and offsets(got) == [(0, [0])]


async def test_holes_of_a_fresh_fetch_are_passed_over() -> None:
    # A read_committed consumer never gets transaction markers or aborted records.
    router, consumer, got = await make({A}, {A: 100})
    consumer.seeks.clear()
    await take(router, consumer, records(A, 101, 102, 105))
    await take(router, consumer, records(A, 107))
    assert offsets(got) == [(0, [101, 102, 105]), (0, [107])]
    assert [(b.start, b.end) for b in got] == [(100, 106), (106, 108)]
    assert consumer.seeks == []


async def test_a_fetch_that_overlapped_a_seek_is_read_again() -> None:
    router, consumer, got = await make({A, B}, {A: 100, B: 7})
    consumer.seeks.clear()
    await take(router, consumer, records(A, 100, 101), records(B, 7), fresh=False)
    assert got == [] and sorted(consumer.seeks) == [(A, 100), (B, 7)]
    await take(router, consumer, records(A, 100, 101), records(B, 7))
    assert offsets(got) == [(0, [100, 101]), (1, [7])]


async def test_a_batch_that_does_not_continue_the_finished_ones_is_read_again() -> None:
    router, consumer, got = await make({A}, {A: 3})
    await take(router, consumer, records(A, 3, 4))
    await take(router, consumer, records(A, 6, 7))  # 5 held a marker: continues at 5
    first, second = got
    async with router.working([first, second]) as todo:
        assert [(b.start, b.end) for b in todo] == [(3, 8)]
    assert router.committable(A) == 8
    lost = RecordBatch(A, records(A, 9), generation=1, first=9)  # 8 never reached the agent
    consumer.seeks.clear()
    async with router.working([lost]) as todo:
        assert todo == []
    assert consumer.seeks == [(A, 8)] and router.next[A] == 8


async def test_revoked_partitions_and_stopped_flow_hand_nothing_on() -> None:
    router, consumer, got = await make({A}, {A: 0, B: 0})
    await take(router, consumer, records(B, 0, 1))
    consumer.flow_active = False
    await take(router, consumer, records(A, 0))
    assert got == []


async def test_only_finished_batches_commit_and_a_new_generation_starts_over() -> None:
    router, consumer, got = await make({A}, {A: 3})
    await take(router, consumer, records(A, 3, 4))
    await take(router, consumer, records(A, 5, 6))
    first, second = got
    assert router.committable(A) is None
    async with router.working([first]) as todo:
        assert todo == [first]
        assert router.committable(A) is None  # in progress: nothing to commit yet
    assert router.committable(A) == 5
    consumer.seeks.clear()
    with pytest.raises(RuntimeError):
        async with router.working([second]):
            raise RuntimeError("the agent failed")
    assert router.committable(A) == 5  # a failed batch is never committed ...
    assert consumer.seeks == [(A, 5)] and router.next[A] == 5  # ... and is read again at once
    router.app.consumer_generation_id = 2
    assert router.committable(A) is None


async def test_a_batch_after_a_lost_one_is_not_done_and_the_partition_is_read_again() -> None:
    router, consumer, got = await make({A}, {A: 3})
    await take(router, consumer, records(A, 3, 4))
    await take(router, consumer, records(A, 5, 6))
    _lost, after = got
    consumer.seeks.clear()
    async with router.working([after]) as todo:
        assert todo == []  # 3-4 never finished: 5-6 must not be committed
    assert router.committable(A) is None and consumer.seeks == [(A, 3)]
    await take(router, consumer, records(A, 3, 4, 5))
    assert offsets(got)[-1] == (0, [3, 4, 5])


async def test_nothing_is_handed_on_in_a_new_generation_before_the_seek() -> None:
    router, consumer, got = await make({A}, {A: 3})
    router.app.consumer_generation_id = 2
    await take(router, consumer, records(A, 3, 4))
    assert got == []  # read again after the seek
    await router.on_seek(consumer, {A: 5})
    await take(router, consumer, records(A, 4, 5, 6))
    assert offsets(got) == [(0, [5, 6])]
    assert got[0].generation == 2


async def test_lag_position_is_the_finished_offset() -> None:
    router, consumer, got = await make({A}, {A: 3})
    assert router.position(A) == 3
    await take(router, consumer, records(A, 3, 4))
    async with router.working(got[:1]):
        pass
    assert router.position(A) == 5


async def test_consecutive_batches_of_a_partition_are_merged_and_done_together() -> None:
    router, consumer, got = await make({A, B}, {A: 3, B: 0})
    await take(router, consumer, records(A, 3, 4), records(B, 0))
    await take(router, consumer, records(A, 5))
    async with router.working(got) as todo:
        assert offsets(todo) == [(0, [3, 4, 5]), (1, [0])]
    assert (router.committable(A), router.committable(B)) == (6, 1)


async def test_a_take_that_fails_after_a_new_generation_seeks_nothing() -> None:
    router, consumer, got = await make({A}, {A: 3})
    await take(router, consumer, records(A, 3, 4))
    consumer.seeks.clear()
    with pytest.raises(RuntimeError):
        async with router.working(got):
            router.app.consumer_generation_id = 2  # a rebalance while the agent worked
            raise RuntimeError("fenced")
    assert consumer.seeks == []  # the new generation's seek decides


async def test_batches_of_an_older_generation_are_left_out() -> None:
    router, consumer, got = await make({A}, {A: 3})
    await take(router, consumer, records(A, 3, 4))
    router.app.consumer_generation_id = 2
    async with router.working(got) as todo:
        assert todo == []
    assert router.committable(A) is None


async def test_a_batch_its_agent_did_not_take_is_read_again() -> None:
    router, consumer, got = await make({A, B}, {A: 3, B: 0})

    async def cleared(batch: RecordBatch) -> bool:
        got.append(batch)
        return False  # a revocation cleared the agent's queue while the put waited

    router.route(A.topic, cleared)
    await take(router, consumer, records(A, 3, 4), records(B, 0))
    assert offsets(got) == [(0, [3, 4])]  # nothing more is handed on in that fetch
    router.route(A.topic, lambda batch: _keep(got, batch))
    await take(router, consumer, records(A, 3, 4, 5), records(B, 0))
    assert offsets(got)[1:] == [(0, [3, 4, 5]), (1, [0])]


async def test_a_fetch_that_meets_a_rebalance_hands_on_nothing_more() -> None:
    router, consumer, got = await make({A, B}, {A: 0, B: 0})
    consumer.seeks.clear()

    async def first(batch: RecordBatch) -> bool:
        got.append(batch)
        router.app.rebalancing = True  # a rebalance began meanwhile
        return True

    router.route(A.topic, first)
    await take(router, consumer, records(A, 0), records(B, 0, 1))
    assert offsets(got) == [(0, [0])]
    assert consumer.seeks == [(B, 0)]  # B's records were dropped: read them again


async def test_nothing_is_handed_on_while_recovery_may_still_clear_the_queues() -> None:
    router, consumer, got = await make({A}, {A: 7})
    consumer.seeks.clear()
    router.app.rebalancing = True  # sought, but Faust has not resumed the flow for good
    await take(router, consumer, records(A, 7, 8))
    assert got == [] and consumer.seeks == [(A, 7)]
    router.app.rebalancing = False
    await take(router, consumer, records(A, 7, 8))
    assert offsets(got) == [(0, [7, 8])]


async def _keep(got: list[RecordBatch], batch: RecordBatch) -> bool:
    got.append(batch)
    return True
