"""Record batches of one partition and the router that hands them to their agents in offset
order, keeping their commit offsets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
    Set,
)
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from faust.types import TP

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Consecutive records of one partition, from the offset after the previous batch's."""

    tp: TP
    records: Sequence[Any]  # aiokafka ConsumerRecord: topic, partition, offset, key, value, ...
    generation: int
    # The offset this batch continues from: its first record's, or lower when the offsets in
    # between hold no record for a read_committed consumer (transaction markers, aborted
    # records).
    first: int | None = None

    @property
    def start(self) -> int:
        return int(self.records[0].offset) if self.first is None else self.first

    @property
    def end(self) -> int:
        return int(self.records[-1].offset) + 1


# Hands a batch to its agent's queue; False when it was not taken (a rebalance cleared it).
BatchHandler = Callable[[RecordBatch], Awaitable[bool]]


@dataclass
class BatchRouter:
    """Hands each batch topic's records on in offset order and keeps their commit offsets.

    Per partition: `next` is the offset an agent may receive next (from the committed offset
    found by Faust's seek in this generation), `done` the offset after the last batch an agent
    finished. The consumer reads committed data only, so offsets may be missing from what it
    returns (transaction markers, aborted records): a fetch made entirely after the last seek
    continues the partition, holes included. A fetch that overlapped a seek (Faust's or the
    router's, `BatchConsumer` counts them) may hold records from before the seek: it is
    dropped and its partitions sought back to `next`. Only finished batches of the current
    generation are ever committed.
    """

    app: Any
    handlers: dict[str, BatchHandler] = field(default_factory=dict)
    generation: int | None = None
    sought: int | None = None  # the generation of the last seek to committed offsets
    next: dict[TP, int] = field(default_factory=dict)
    done: dict[TP, int] = field(default_factory=dict)
    starts: dict[TP, int] = field(default_factory=dict)
    busy: int = 0  # batches an agent is working on now
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    # Topics whose offsets commit in their agents' transactions, never through Faust.
    transactional: set[str] = field(default_factory=set)

    def route(self, topic: str, handler: BatchHandler) -> None:
        self.handlers[topic] = handler

    @property
    def topics(self) -> set[str]:
        return set(self.handlers)

    async def take(self, consumer: Any, records: Any, stale: Set[TP] = frozenset()) -> None:
        """Hand on the batch topics' records of one fetch (removed from `records`).

        `stale`: partitions sought while the fetch was made (their records may be from
        before the seek: they are read again). Only while Faust's flow is on and no
        rebalance is under way: Faust clears the agents' queues when it revokes partitions
        and again each time recovery resumes the flow, so a batch queued then would vanish.
        Records fetched meanwhile are dropped and their partitions sought back (or read
        again by the generation's seek)."""
        mine = [tp for tp in records if tp.topic in self.handlers]
        if not mine:
            return
        taken = {tp: records.pop(tp) for tp in mine}
        generation = self.app.consumer_generation_id
        if self.sought != generation:
            return  # not yet sought: the generation's seek reads all of it again
        assigned = consumer.assignment()
        inbound = self.app.monitor.stream_inbound_time if self.app.monitor else {}
        pending = [tp for tp, batch in taken.items() if tp in assigned and batch]
        await self._read_again(consumer, [tp for tp in pending if tp in stale], generation)
        pending = [tp for tp in pending if tp not in stale]
        for index, tp in enumerate(pending):
            if not self._handing_on(consumer, generation):
                await self._read_again(consumer, pending[index:], generation)
                return
            first = self.next.setdefault(tp, self.starts.get(tp, 0))
            kept = self._continuing(taken[tp], first)
            if not kept:
                continue
            self.next[tp] = int(kept[-1].offset) + 1
            inbound[tp] = time.monotonic()  # Faust's "stream idle" check reads this
            if not await self.handlers[tp.topic](RecordBatch(tp, kept, generation, first)):
                self.next[tp] = first  # its agent's queue was cleared
                await self._read_again(consumer, pending[index:], generation)
                return

    @staticmethod
    def _continuing(batch: Sequence[Any], expected: int) -> list[Any]:
        """The records of a fresh fetch from `expected` on, in increasing offsets (anything
        below is a repeat)."""
        kept = []
        for record in batch:
            if record.offset >= expected:
                kept.append(record)
                expected = record.offset + 1
        return kept

    def _handing_on(self, consumer: Any, generation: int) -> bool:
        app = self.app
        return bool(
            consumer.flow_active
            and not app.rebalancing
            and app.consumer_generation_id == generation == self.sought
        )

    async def _read_again(self, consumer: Any, tps: Sequence[TP], generation: int) -> None:
        """Seek `tps` back to the offsets their agents expect next (in this generation)."""
        if self.app.consumer_generation_id != generation:
            return  # the next generation's seek reads them again
        assigned = consumer.assignment()
        for tp in tps:
            if tp in assigned:
                with contextlib.suppress(IllegalStateError):  # revoked meanwhile
                    await consumer.seek(tp, self.next.get(tp, self.starts.get(tp, 0)))

    async def on_seek(self, consumer: Any, committed: Mapping[TP, int | None]) -> None:
        """Faust sought the assigned partitions to their committed offsets.

        In a new generation every partition starts again from its committed offset (0 if
        none). Faust's seek skips partitions without a commit, and records fetched before
        it can still arrive (and be dropped) after it, so every assigned batch partition is
        sought to its next offset here, from which everything is read again and judged.
        """
        generation = self.app.consumer_generation_id
        if generation != self.generation:
            self.generation = generation
            self.next.clear()
            self.done.clear()
        self.starts = {tp: o for tp, o in committed.items() if o is not None and o > 0}
        self.sought = generation
        mine = [tp for tp in consumer.assignment() if tp.topic in self.handlers]
        await self._read_again(consumer, mine, generation)

    @contextlib.asynccontextmanager
    async def working(self, taken: Sequence[RecordBatch]) -> AsyncIterator[list[RecordBatch]]:
        """Around an agent's work on the batches it took: yields what to do, one batch per
        partition (consecutive batches of a partition merged); once the block ends without
        error their offsets may be committed.

        Left out: batches of an older generation (their partition may be another worker's
        now), and a batch that does not start where its partition's last finished batch
        ended (one before it was lost, e.g. cleared from the agent's queue): the partition is
        then sought back, so a commit never covers an offset no agent finished.
        """
        generation = self.app.consumer_generation_id
        merged: dict[TP, RecordBatch] = {}
        behind: dict[TP, int] = {}  # partitions to read again from their finished offset
        for batch in taken:
            tp = batch.tp
            if not (batch.generation == generation == self.generation) or tp in behind:
                continue
            ahead = merged.get(tp)
            expected = ahead.end if ahead is not None else self.position(tp)
            if batch.start != expected:
                behind[tp] = self.position(tp)
                merged.pop(tp, None)
                continue
            if ahead is None:
                merged[tp] = batch
            else:
                records = [*ahead.records, *batch.records]
                merged[tp] = RecordBatch(tp, records, generation, ahead.start)
        self.busy += 1
        self.idle.clear()
        try:
            yield list(merged.values())
            if self.app.consumer_generation_id == generation:
                for tp, batch in merged.items():
                    self.done[tp] = batch.end
        except Exception:
            # A failed take is read again now: later records may never come to show the hole.
            if self.app.consumer_generation_id == generation == self.generation:
                await self._seek_back({tp: self.position(tp) for tp in merged}, "failed")
            raise
        finally:
            self.busy -= 1
            if not self.busy:
                self.idle.set()
        await self._seek_back(behind, "a batch was lost before this one")

    async def _seek_back(self, offsets: Mapping[TP, int], why: str) -> None:
        consumer = started_consumer(self.app)
        for tp, offset in offsets.items():
            if consumer is not None and tp in consumer.assignment():
                self.next[tp] = offset
                log.info("%s: %s: reading again from %d", tp, why, offset)
                with contextlib.suppress(IllegalStateError):
                    await consumer.seek(tp, offset)

    def committable(self, tp: TP) -> int | None:
        """The offset Faust's commit may commit for `tp` (None: nothing)."""
        if self.generation != self.app.consumer_generation_id or tp.topic in self.transactional:
            return None
        return self.done.get(tp)

    def position(self, tp: TP) -> int:
        """The offset after what this worker has finished of `tp` (its committed start if
        it finished nothing yet in this generation)."""
        return self.done.get(tp, self.starts.get(tp, 0))

    async def wait_idle(self, timeout: float) -> None:
        if self.busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle.wait(), timeout)


def started_consumer(app: faust.App) -> Any | None:
    """The app's consumer once the worker has built it (`app.consumer` would build one)."""
    return app._consumer
