"""Handing batches to an agent's queue: Faust's revocation clears the queues with mode's real
ThrowableQueue, which cancels waiting puts; that drops the batch without stopping the fetch
loop, while a cancellation of the fetch loop itself still propagates."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.types import TP
from mode.utils.queues import FlowControlEvent, ThrowableQueue

from stream.faustx import RecordBatch
from stream.pipeline.batches import deliver, rounds


class QueueChannel:
    """A channel whose send is a put on one real subscriber queue, as Faust's Channel does."""

    def __init__(self, queue: ThrowableQueue) -> None:
        self.queue = queue

    async def send(self, *, value: Any) -> None:
        await self.queue.put(value)


def batch(offset: int) -> RecordBatch:
    return RecordBatch(TP("t", 0), [offset], generation=1)


def flow_queue() -> tuple[FlowControlEvent, ThrowableQueue]:
    """A queue managed by an active flow-control event, as Faust's app.flow_control is."""
    flow_control = FlowControlEvent(initially_suspended=False)
    queue: ThrowableQueue = ThrowableQueue(flow_control=flow_control, maxsize=1)
    flow_control.manage_queue(queue)
    return flow_control, queue


async def full_channel() -> tuple[FlowControlEvent, QueueChannel]:
    flow_control, queue = flow_queue()
    await queue.put("queued")
    return flow_control, QueueChannel(queue)


async def test_a_cleared_queue_drops_the_batch_and_the_loop_goes_on() -> None:
    flow_control, channel = await full_channel()
    waiting = asyncio.create_task(deliver(channel, batch(1)))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    assert not waiting.done()  # backpressure: the put waits
    flow_control.clear()  # what Faust's revocation does (and every flow_control.resume())
    assert await waiting is False


async def test_a_delivered_batch_is_reported() -> None:
    _flow_control, queue = flow_queue()
    assert await deliver(QueueChannel(queue), batch(1)) is True  # type: ignore[arg-type]
    assert queue.qsize() == 1


async def test_cancelling_the_fetch_loop_still_cancels() -> None:
    _queue, channel = await full_channel()
    waiting = asyncio.create_task(deliver(channel, batch(1)))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


def test_rounds_cut_each_partitions_records_in_order() -> None:
    a = RecordBatch(TP("t", 0), list(range(10, 17)), generation=3)
    b = RecordBatch(TP("t", 1), list(range(100, 103)), generation=3)
    cut = rounds([a, b], size=3)
    assert [[(r.tp.partition, list(r.records)) for r in round_] for round_ in cut] == [
        [(0, [10, 11, 12]), (1, [100, 101, 102])],
        [(0, [13, 14, 15])],
        [(0, [16])],
    ]
    assert all(r.generation == 3 for round_ in cut for r in round_)
    assert rounds([a], size=100) == [[RecordBatch(a.tp, a.records, 3)]]
