"""How batch agents receive their events: in offset order, and what of them may be committed.

Which event a table write belongs to: Faust routes a table write to the changelog partition of
the "current event", a context variable that it sets while a stream yields one event at a time.
Batch agents set it themselves for each event before touching a table. They must not use
Stream's `_set_current_event`: that also rewrites `stream.current_event`, which `take_events`
reads to pair buffered values with their events, and batches then repeat one event and lose
another.

In order: around a rebalance Faust can hand an agent a partition's messages with a hole in
them, and then commit past the hole (see `InOrder`).
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, cast

import faust
from aiokafka.errors import IllegalStateError
from faust.streams import _current_event
from faust.transport.consumer import Consumer
from faust.types import TP

log = logging.getLogger(__name__)


def use_event(event: faust.EventT) -> None:
    _current_event.set(weakref.ref(event))


class InOrder:
    """Hands each input partition's messages to the batch agents strictly in offset order,
    from the group's committed offset on, and alone decides the offsets committed for them.

    Faust (0.15.3) can lose messages around a rebalance, three ways (the first one found in
    the rebalance test's logs, the other two in Faust's code; see docs/design.md):
    * after a seek (recovery seeks every partition to its committed offset once the agents
      already run), records fetched before the seek still arrive. The first one, far ahead
      of the new read offset, makes Faust's fetch loop record the offsets in between as a
      "gap" (committed as if acknowledged) and move its read offset past them, so the
      re-fetched messages of that range are dropped and never reach an agent;
    * a message a stream skips (flow stopped during a rebalance, or from an old generation)
      is acknowledged as if processed;
    * its gap check ignores a partition without a committed offset, and lets one missing
      offset through after a committed one.
    So here nothing is handed on in a new generation until Faust has sought the partitions to
    their committed offsets, after which InOrder seeks each one to its next offset itself
    (`reread`: Faust's seek skips partitions without a commit, and records it re-fetched can
    arrive before it returns; either way they were dropped), Faust's fetch loop keeps no
    read offset for these topics (`_ReadOffsets`: it neither drops nor "gaps" their records),
    and a message is handed on only if it is the partition's next offset, from the committed
    one: earlier ones (repeats) are dropped, later ones too, and if any of those lies at or
    after the partition's next offset at the end of the batch, the partition is sought back
    to it. The offset committed for a
    partition is the one after the last message of a batch the agent has finished, whatever
    Faust recorded as acknowledged. Dropped messages are marked acknowledged without being
    recorded: Faust's wait for in-flight messages must not wait for them.
    """

    GAP_CONFIRMATIONS = 5  # the same hole after this many seeks is a real one (compaction)

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.topics: set[str] = set()
        self.generation: int | None = None
        self.next: dict[TP, int] = {}  # the offset an agent may receive next
        self.done: dict[TP, int] = {}  # the offset after the last finished batch's messages
        self.holes: dict[TP, tuple[int, int, int]] = {}  # (missing, found instead, times)
        self.starts: dict[TP, int] = {}  # committed offsets found by the last seek
        self.sought: int | None = None  # the generation of that seek
        _ORDERS[app] = self

    def watch(self, topic: str) -> None:
        self.topics.add(topic)

    async def batches(
        self, stream: faust.StreamT[bytes], size: int, within: float
    ) -> AsyncIterator[list[faust.EventT]]:
        """Events in offset order per partition, in batches of at most `size`, waiting at
        most `within` seconds for one to fill (a batch may be empty after filtering).

        A batch's offsets may be committed only once the caller asks for the next batch,
        that is after it has handled this one.
        """
        async for taken in cast(faust.Stream[bytes], stream).take_events(size, within):
            generation = self.app.consumer_generation_id
            batch = await self.admit(list(taken))
            yield batch
            if self.app.consumer_generation_id == generation == self.generation:
                for event in batch:
                    self.done[event.message.tp] = event.message.offset + 1

    async def admit(self, batch: list[faust.EventT]) -> list[faust.EventT]:
        """The batch without repeats and without records ahead of their partition's next
        offset (seeking back to it when some of those were dropped)."""
        consumer = self.app.consumer
        if self.sought != self.app.consumer_generation_id:
            # A new assignment, not yet sought to the committed offsets: whatever arrives now
            # is read again after the seek.
            for event in batch:
                event.message.acked = True
            return []
        assigned = consumer.assignment()
        kept: list[faust.EventT] = []
        ahead: dict[TP, int] = {}  # per partition: the highest offset dropped as ahead
        for event in batch:
            message = event.message
            tp = message.tp
            if tp not in assigned:
                message.acked = True  # revoked: never committed from here
                continue
            expected = self.next.setdefault(tp, self.starts.get(tp, 0))
            if message.offset != expected:
                # Below: handed on already, or before the commit. Above: ahead of a missing
                # offset (a stale record, or one after a hole): read again after the seek.
                if message.offset > expected:
                    ahead[tp] = max(ahead.get(tp, expected), message.offset)
                message.acked = True
                continue
            self.next[tp] = expected + 1
            kept.append(event)
        for tp, found in ahead.items():
            if found >= self.next[tp]:  # something after the next offset was dropped
                await self.seek_back(tp, self.next[tp], found)
        return kept

    def on_seek(self, committed: dict[TP, int]) -> None:
        """Faust sought every assigned partition to its committed offset (`committed`: those
        above 0; the others start at 0, or at the log start found as a gap)."""
        generation = self.app.consumer_generation_id
        if generation != self.generation:
            self.generation = generation
            self.next.clear()
            self.done.clear()
            self.holes.clear()
        self.starts = dict(committed)
        self.sought = generation

    async def reread(self) -> None:
        """After `on_seek`: seek every assigned watched partition to its next offset.

        Until `on_seek` every message is dropped, and Faust's seek does not make all of them
        arrive again: records it re-fetched can arrive (and be dropped) before its seek
        returns, and it does not seek a partition without a committed offset (nor one at 0)
        at all. The "ahead" check finds such a hole only when a later record of the
        partition arrives; with no new traffic the partition stalled, its commit never
        moving. Sought here, after `sought` is set, every record is read again and judged.
        """
        consumer = self.app.consumer
        for tp in list(consumer.assignment()):
            if tp.topic not in self.topics:
                continue
            # IllegalStateError: revoked meanwhile; the next assignment seeks again.
            with contextlib.suppress(IllegalStateError):
                await consumer.seek(tp, self.next.get(tp, self.starts.get(tp, 0)))

    async def seek_back(self, tp: TP, missing: int, found: int) -> None:
        previous = self.holes.get(tp)
        times = previous[2] + 1 if previous and previous[:2] == (missing, found) else 1
        self.holes[tp] = (missing, found, times)
        if times >= self.GAP_CONFIRMATIONS:
            log.warning("%s: offsets %d..%d do not exist, skipping them", tp, missing, found - 1)
            self.next[tp] = found
            self.holes.pop(tp)
        else:
            log.info("%s: offset %d missing (got %d), seeking back to it", tp, missing, found)
        await self.app.consumer.seek(tp, self.next[tp])

    def committable(self, tp: TP) -> int | None:
        if self.generation != self.app.consumer_generation_id:
            return None
        return self.done.get(tp)


_ORDERS: weakref.WeakKeyDictionary[Any, InOrder] = weakref.WeakKeyDictionary()
# Batches of the agents: at most this many events, waiting at most this long for them.
BATCH_MAX = 2000
BATCH_WITHIN = 0.2


def in_order(app: faust.App) -> InOrder:
    """The app's one InOrder (created on first use), shared by all its batch agents."""
    return _ORDERS.get(app) or InOrder(app)


_faust_new_offset = Consumer._new_offset


class _ReadOffsets(defaultdict[TP, int | None]):
    """Faust's read offsets, always "none yet" for the topics of an InOrder.

    Faust's fetch loop drops a record below a partition's read offset and counts the offsets
    it jumps over as acknowledged; after a seek, a record fetched before it jumps the read
    offset ahead again. For these topics every record reaches InOrder, which decides.
    """

    def __init__(self, watched: set[str], data: dict[TP, int | None]) -> None:
        super().__init__(lambda: None, data)
        self.watched = watched

    def __getitem__(self, tp: TP) -> int | None:
        return None if tp.topic in self.watched else super().__getitem__(tp)

    def get(self, tp: TP, default: Any = None) -> Any:
        return None if tp.topic in self.watched else super().get(tp, default)


_faust_drain_messages = Consumer._drain_messages


async def _drain_messages(self: Consumer, fetcher: Any) -> None:
    order = _ORDERS.get(self.app)
    if order is not None and not isinstance(self._read_offset, _ReadOffsets):
        self._read_offset = _ReadOffsets(order.topics, dict(self._read_offset))
    await _faust_drain_messages(self, fetcher)


def _new_offset(self: Consumer, tp: TP) -> int | None:
    """Faust's commit offset of `tp`, or, for the topics of an `InOrder`, that one's."""
    order = _ORDERS.get(self.app)
    if order is None or tp.topic not in order.topics:
        return _faust_new_offset(self, tp)
    # Faust's own record (acknowledged offsets, gaps) is not used for these partitions.
    self._acked[tp].clear()
    self._acked_index[tp].clear()
    self._gap.pop(tp, None)
    return order.committable(tp)


_faust_perform_seek = Consumer.perform_seek


async def _perform_seek(self: Consumer) -> None:
    """Faust's seek of every assigned partition to its committed offset, reported to InOrder."""
    await _faust_perform_seek(self)
    order = _ORDERS.get(self.app)
    if order is not None:
        order.on_seek({tp: o for tp, o in self._committed_offset.items() if o is not None})
        await order.reread()


Consumer._new_offset = _new_offset  # type: ignore[method-assign]
Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]
Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
