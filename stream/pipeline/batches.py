"""Batch agents: an agent per topic that receives the topic's records one partition batch at
a time (stream.faustx routes them), never one Faust Event per message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import faust

from stream.faustx import BatchRouter, RecordBatch
from stream.pipeline.app import CxApp

# Batches queued per agent while it works on one: fetching goes on meanwhile, and a full
# queue holds the fetch loop back (backpressure).
QUEUED_BATCHES = 4


def batch_agent(
    app: CxApp, topic: str, name: str, handle: Callable[[RecordBatch], Awaitable[None]]
) -> None:
    """Subscribe to `topic` (without a Faust stream) and run `handle` on each of its batches
    in an agent. A batch's offsets may commit once `handle` returned for it."""
    router: BatchRouter = app.batch_router
    channel: faust.ChannelT[RecordBatch] = app.channel(maxsize=QUEUED_BATCHES)

    async def deliver(batch: RecordBatch) -> None:
        await channel.send(value=batch)

    router.route(topic, deliver)
    app.topics.add(app.topics_by_name[topic])

    async def agent(stream: faust.StreamT[RecordBatch]) -> None:
        async for batch in stream:
            async with router.working(batch) as current:
                if current:
                    await handle(batch)

    app.agent(channel, name=name)(agent)
