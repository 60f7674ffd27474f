"""Batch agents: an agent per topic that receives the topic's records one partition batch at
a time (stream.faustx routes them), never one Faust Event per message."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

import faust
from aiokafka.errors import KafkaError

from stream.faustx import BatchRouter, RecordBatch
from stream.pipeline.app import CxApp
from stream.pipeline.transactions import Fenced

log = logging.getLogger(__name__)

# Batches queued per agent while it works on one: fetching goes on meanwhile, and a full
# queue holds the fetch loop back (backpressure).
QUEUED_BATCHES = 4
# An agent takes at most this many partition batches at once (all partitions of a few
# fetches), or what came within the linger time: one round of sends and waits for all.
TAKE_BATCHES = 16


# Records of one partition handled in one synchronous stretch: a take merges up to
# TAKE_BATCHES fetches of a partition, and planning 80,000 records at once kept the event loop
# (and /metrics) busy for 5 s under a flood. About 0.3 s of work at most.
ROUND_RECORDS = 4000


def rounds(batches: list[RecordBatch], size: int = ROUND_RECORDS) -> list[list[RecordBatch]]:
    """`batches` cut into rounds: round i holds records [i*size, (i+1)*size) of each batch.

    A round is a complete unit for an agent (plan, send, wait, write), done in order, so each
    partition's records still go in offset order and every round starts where the previous
    one of its partition ended."""
    out: list[list[RecordBatch]] = []
    for batch in batches:
        records = batch.records
        for i, start in enumerate(range(0, len(records), size)):
            if i == len(out):
                out.append([])
            first = batch.first if i == 0 else None
            piece = records[start : start + size]
            out[i].append(RecordBatch(batch.tp, piece, batch.generation, first))
    return out


async def pass_turn() -> None:
    """Let the event loop run other tasks between two partition batches of a take.

    One worker runs every agent and the web server on one event loop; a take of up to
    TAKE_BATCHES full fetches is seconds of CPU in one stretch under a backlog, and a scrape
    or a probe waiting behind it would see a dead worker (a million-name flood kept /metrics
    from answering within 5 s). Yielding per batch bounds that wait by one batch's work.
    """
    await asyncio.sleep(0)


async def deliver(channel: faust.ChannelT[RecordBatch], batch: RecordBatch) -> bool:
    """Queue `batch` for the agent; False when the queue was cleared while it waited.

    On a revocation Faust clears the agents' queues (mode's ThrowableQueue.clear), which
    cancels every waiting put: the batch is dropped and read again from the committed offset
    after the rebalance. Only a cancellation of the fetch loop itself propagates.
    """
    try:
        await channel.send(value=batch)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        return False
    return True


def batch_agent(
    app: CxApp, topic: str, name: str, handle: Callable[[list[RecordBatch]], Awaitable[None]]
) -> None:
    """Subscribe to `topic` (without a Faust stream) and run `handle` in an agent on what it
    takes: one batch per partition, from whatever arrived within `CX_BATCH_LINGER_MS` (a
    small load then pays the per-batch sends and waits once per linger, not per message).
    The batches' offsets may commit once `handle` returned."""
    router: BatchRouter = app.batch_router
    channel: faust.ChannelT[RecordBatch] = app.channel(maxsize=QUEUED_BATCHES)

    router.route(topic, functools.partial(deliver, channel))
    app.topics.add(app.topics_by_name[topic])

    linger = app.settings.batch_linger_ms / 1000

    async def agent(stream: faust.StreamT[RecordBatch]) -> None:
        async for taken in stream.take(TAKE_BATCHES, within=linger):
            try:
                async with router.working(taken) as batches:
                    if batches:
                        await handle(batches)
            except Fenced as exc:
                # Another worker owns the partition now: nothing of this take counts, and its
                # offsets are not committed here. The group's next assignment says what to do.
                log.warning("%s: take dropped: %s", name, exc)
            except KafkaError as exc:
                # Aborted (a broker restart, a timeout): its partitions are read again from
                # the last finished offset, and replays are no-ops.
                log.warning("%s: take failed (%s); read again", name, type(exc).__name__)

    app.agent(channel, name=name)(agent)
