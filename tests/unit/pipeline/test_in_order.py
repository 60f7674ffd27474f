"""InOrder: batch agents get each partition's messages in offset order from the committed
offset on, holes make the partition seek back, and only finished batches are committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from stream.pipeline.events import InOrder, _new_offset, _ReadOffsets

A = TP("t.responses", 0)
B = TP("t.responses", 1)


@dataclass
class FakeConsumer:
    assigned: set[TP]
    committed: dict[TP, int | None]
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    app: Any = None

    def assignment(self) -> set[TP]:
        return self.assigned

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


class FakeApp(SimpleNamespace):
    __hash__ = object.__hash__


def make(assigned: set[TP], committed: dict[TP, int | None]) -> tuple[InOrder, FakeConsumer]:
    consumer = FakeConsumer(assigned, committed)
    app = FakeApp(consumer=consumer, consumer_generation_id=1)
    consumer.app = app
    order = InOrder(app)  # type: ignore[arg-type]
    order.watch(A.topic)
    order.on_seek({tp: o for tp, o in committed.items() if o})  # as Faust's perform_seek
    return order, consumer


def events(tp: TP, *offsets: int) -> list[Any]:
    return [SimpleNamespace(message=SimpleNamespace(tp=tp, offset=o, acked=False)) for o in offsets]


def offsets(batch: list[Any]) -> list[tuple[int, int]]:
    return [(e.message.tp.partition, e.message.offset) for e in batch]


async def test_starts_at_the_committed_offset_and_drops_repeats() -> None:
    order, _ = make({A, B}, {A: 10, B: None})
    batch = events(A, 8, 9, 10, 11, 11) + events(B, 0, 1)
    kept = await order.admit(batch)
    assert offsets(kept) == [(0, 10), (0, 11), (1, 0), (1, 1)]
    dropped = [e for e in batch if e not in kept]
    assert all(e.message.acked for e in dropped)  # never recorded, never waited for
    assert offsets(await order.admit(events(A, 11, 12))) == [(0, 12)]


async def test_records_ahead_are_dropped_and_the_partition_sought_back() -> None:
    order, consumer = make({A, B}, {A: 100, B: 0})
    kept = await order.admit(events(A, 100, 101, 104, 105, 102) + events(B, 0))
    assert offsets(kept) == [(0, 100), (0, 101), (0, 102), (1, 0)]
    assert consumer.seeks == [(A, 103)]  # 104 and 105 were dropped: read them again
    # stale records ahead still arrive after the seek: dropped, and seek again
    assert offsets(await order.admit(events(A, 106))) == []
    assert consumer.seeks[-1] == (A, 103)
    assert offsets(await order.admit(events(A, 103, 104))) == [(0, 103), (0, 104)]
    assert len(consumer.seeks) == 2


async def test_no_seek_when_the_missing_offset_follows_in_the_batch() -> None:
    order, consumer = make({A}, {A: 7})
    # a stale record first, then the re-fetched ones from the seek
    assert offsets(await order.admit(events(A, 9, 7, 8, 9))) == [(0, 7), (0, 8), (0, 9)]
    assert consumer.seeks == []


def test_faust_read_offsets_are_none_for_watched_topics() -> None:
    other = TP("t.raw.sms", 0)
    offsets_ = _ReadOffsets({A.topic}, {A: 5, other: 6})
    offsets_[A] = 9
    assert offsets_[A] is None and offsets_.get(A) is None  # never drops nor gaps them
    assert offsets_[other] == 6 and offsets_[TP("t.raw.sms", 1)] is None


async def test_a_real_gap_is_accepted_after_repeated_seeks() -> None:
    order, consumer = make({A}, {A: 5})
    for _ in range(InOrder.GAP_CONFIRMATIONS):
        await order.admit(events(A, 9))
    assert consumer.seeks[-1] == (A, 9)
    assert offsets(await order.admit(events(A, 9, 10))) == [(0, 9), (0, 10)]


async def test_revoked_partitions_are_dropped() -> None:
    order, _ = make({A}, {A: 0, B: 0})
    batch = events(B, 0, 1) + events(A, 0)
    assert offsets(await order.admit(batch)) == [(0, 0)]
    assert batch[0].message.acked and batch[1].message.acked


async def test_only_finished_batches_commit_and_a_new_generation_starts_over() -> None:
    order, consumer = make({A}, {A: 3})
    faust_consumer = SimpleNamespace(
        app=consumer.app, _acked={A: [3, 4, 5, 6]}, _acked_index={A: {3, 4, 5, 6}}, _gap={}
    )

    async def stream_batches() -> Any:
        for batch in (events(A, 3, 4), events(A, 5, 6)):
            yield batch

    stream = SimpleNamespace(take_events=lambda size, within: stream_batches())
    seen = order.batches(stream, 10, 0.1)  # type: ignore[arg-type]
    first = await anext(seen)
    assert offsets(first) == [(0, 3), (0, 4)]
    assert _new_offset(faust_consumer, A) is None  # handling: nothing to commit yet
    second = await anext(seen)
    assert offsets(second) == [(0, 5), (0, 6)]
    assert _new_offset(faust_consumer, A) == 5  # the first batch is done
    assert faust_consumer._acked[A] == []  # Faust's own acknowledgements do not count
    consumer.app.consumer_generation_id = 2
    assert _new_offset(faust_consumer, A) is None


async def test_nothing_is_handed_on_in_a_new_generation_before_the_seek() -> None:
    order, consumer = make({A}, {A: 3})
    assert offsets(await order.admit(events(A, 3, 4))) == [(0, 3), (0, 4)]
    consumer.app.consumer_generation_id = 2
    early = events(A, 7, 8)
    assert offsets(await order.admit(early)) == []  # read again after the seek
    assert all(e.message.acked for e in early)
    order.on_seek({A: 5})
    assert offsets(await order.admit(events(A, 4, 5, 6))) == [(0, 5), (0, 6)]


async def test_after_the_seek_every_watched_partition_is_read_again_from_its_next_offset() -> None:
    # Faust's seek skips partitions without a committed offset, and records it re-fetched can
    # arrive before it returns: both were dropped, so InOrder seeks them itself.
    order, consumer = make({A, B, TP("t.other", 0)}, {A: 3, B: None})
    assert offsets(await order.admit(events(A, 3, 4))) == [(0, 3), (0, 4)]
    await order.reread()
    assert sorted(consumer.seeks) == [(A, 5), (B, 0)]  # unwatched topics left to Faust
