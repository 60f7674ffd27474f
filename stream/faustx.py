"""The one place that touches faust-streaming's internals: record batches, commits, stores.

Faust turns every Kafka message into an Event and walks it through several asyncio hops
(110-190 us each on our machine, ../docs/performance.md), and around a rebalance its fetch
loop can skip offsets and commit them anyway (docs/design.md, "Rebalances"). The KPI agents
therefore receive their topics as record *batches*, in offset order, and decide alone which
offsets of those topics may be committed. Faust keeps everything else: the App, its consumer
group and assignor, the commit loop, tables with changelogs, recovery, standbys, web views.

How: `install(app)` registers `BatchTransport` under the broker URL scheme `cxkafka://`
(Faust picks a transport by scheme). Its consumer, `BatchConsumer`, overrides these methods of
Faust's aiokafka consumer:
  * `_wait_next_records`: the records of a fetch that belong to batch topics are taken out
    and handed to `BatchRouter`, one list per partition; Faust sees only the other topics
    (changelogs during recovery), so it builds no Event for a batch topic's message. Nothing
    is handed on while a rebalance is under way (`App.rebalancing`): Faust clears the agents'
    queues on revocation and each time recovery resumes the flow;
  * `_new_offset`: for batch topics, the offset after the last batch an agent finished;
  * `_filter_tps_with_pending_acks`: Faust's commit also looks at the batch partitions;
  * `seek_to_committed`: reports Faust's seeks (after an assignment and after recovery);
  * `wait_empty`: a revocation also waits for the batch an agent is working on;
  * `_seek`: every seek runs in the consumer's own thread (`ConsumerThread.call_thread`);
  * `_new_consumer_thread`: the thread builds aiokafka's consumer with the app's fetch
    options (`LingeringConsumerThread`; Faust passes neither, so fetch_min_bytes stays 1);
  * `on_partitions_assigned`: the app's hook runs first (transactional producers, which
    fence the previous owner before recovery reads anything);
  * `highwaters`: a changelog ends at its last record, not at a trailing commit marker;
  * `resume_flow`: standbys are sought back to what recovery read (Faust drops fetched ones);
  * `seek_wait`: a changelog partition whose recovery start is unknown (None, after a
    rebalance during recovery) is read from its beginning instead of crashing the worker.
It adds `request_rejoin` (aiokafka's coordinator, in the consumer's thread): a worker whose
transactional producer died asks the group for a new generation (pipeline/transactions.py).
Tables: `CodecTable` reads and writes a table's per-partition store directly, in batches.
Ctrl-C: `hush_sigint` replaces mode's SIGINT handler (which prints `-INT-`) on a worker.
`check()` verifies the Faust version and every attribute used here, with its signature; the
app refuses to start otherwise. tests/unit/faustx/ runs these checks against Faust's classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import time
from collections import defaultdict
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    Set,
)
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, TypeVar

import faust
import mode
import msgspec
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.consumer.subscription_state import Assignment, TopicPartitionState
from aiokafka.errors import IllegalStateError
from faust.sensors.monitor import Monitor
from faust.stores import memory as memory_store
from faust.stores import rocksdb as rocksdb_store
from faust.tables.base import Collection
from faust.tables.recovery import Recovery
from faust.transport import drivers
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP

log = logging.getLogger(__name__)

SCHEME = "cxkafka"
SUPPORTED_VERSIONS = ("0.15.",)  # prefixes of the faust-streaming versions checked here


class IncompatibleFaust(RuntimeError):
    """The installed faust-streaming lacks something this module relies on."""


# (owner, attribute, the parameter names it must take or None for a non-callable)
_RELIED_ON: list[tuple[type, str, tuple[str, ...] | None]] = [
    (FaustConsumer, "_wait_next_records", ("self", "timeout")),
    (FaustConsumer, "_new_offset", ("self", "tp")),
    (FaustConsumer, "_filter_tps_with_pending_acks", ("self", "topics")),
    (FaustConsumer, "_acked", None),
    (FaustConsumer, "wait_empty", ("self",)),
    (FaustConsumer, "flow_active", None),
    (FaustConsumer, "resume_flow", ("self",)),
    (Recovery, "standby_tps", None),
    (Recovery, "standby_offsets", None),
    (FaustConsumer, "_seek", ("self", "partition", "offset")),
    (aiokafka_driver.ConsumerThread, "call_thread", ("self", "fun")),
    (aiokafka_driver.ConsumerThread, "seek", ("self", "partition", "offset")),
    (aiokafka_driver.Consumer, "_thread", None),
    (aiokafka_driver.Consumer, "seek_to_committed", ("self",)),
    (aiokafka_driver.Consumer, "seek_wait", ("self", "partitions")),
    (aiokafka_driver.Consumer, "seek", ("self", "partition", "offset")),
    (aiokafka_driver.Consumer, "assignment", ("self",)),
    (aiokafka_driver.Consumer, "highwater", ("self", "tp")),
    (aiokafka_driver.Consumer, "_new_consumer_thread", ("self",)),
    (aiokafka_driver.Consumer, "highwaters", ("self",)),
    (FaustConsumer, "on_partitions_assigned", ("self", "assigned", "generation_id")),
    (aiokafka_driver.AIOKafkaConsumerThread, "_create_worker_consumer", ("self", "transport")),
    (aiokafka_driver.AIOKafkaConsumerThread, "_ensure_consumer", ("self",)),
    (GroupCoordinator, "request_rejoin", ("self",)),
    (Assignment, "state_value", ("self", "tp")),
    (TopicPartitionState, "has_valid_position", None),
    (TopicPartitionState, "position", None),
    (aiokafka_driver.Transport, "Consumer", None),
    (rocksdb_store.Store, "_db_for_partition", ("self", "partition")),
    (rocksdb_store.Store, "set_persisted_offset", ("self", "tp", "offset")),
    (memory_store.Store, "set_persisted_offset", ("self", "tp", "offset")),
    (Collection, "_serializer_from_type", ("self", "typ")),
    (Collection, "send_changelog", ("self", "partition", "key", "value")),
    (Collection, "_new_changelog_topic", ("self",)),
    (Collection, "apply_changelog_batch", ("self", "batch")),
    (faust.App, "consumer_generation_id", None),
    (faust.App, "rebalancing", None),
    (faust.App, "_consumer", None),
    (aiokafka_driver.Producer, "_ensure_producer", ("self",)),
    (rocksdb_store.Store, "_dbs", None),
    (rocksdb_store.Store, "offset_key", None),
    (Monitor, "stream_inbound_time", None),
    (mode.Worker, "_on_sigint", ("self",)),
    (mode.Worker, "_schedule_shutdown", ("self", "signal")),
]


def check() -> None:
    """Refuse to run on a faust-streaming this module was not written against."""
    found = version("faust-streaming")
    problems = []
    if not found.startswith(SUPPORTED_VERSIONS):
        problems.append(f"faust-streaming {found} (supported: {', '.join(SUPPORTED_VERSIONS)}x)")
    for owner, name, params in _RELIED_ON:
        attribute = inspect.getattr_static(owner, name, None)
        if attribute is None and name not in getattr(owner, "__annotations__", {}):
            problems.append(f"{owner.__module__}.{owner.__qualname__}.{name} is missing")
            continue
        if params is None:
            continue
        try:
            actual = tuple(inspect.signature(getattr(owner, name)).parameters)
        except (TypeError, ValueError):
            problems.append(f"{owner.__qualname__}.{name} has no signature")
            continue
        if actual[: len(params)] != params:
            problems.append(f"{owner.__qualname__}.{name}{actual} (expected {params}...)")
    if problems:
        raise IncompatibleFaust(
            "stream.faustx cannot run on this Faust: "
            + "; ".join(problems)
            + ". Install the faust-streaming version pinned in pyproject.toml."
        )


# -- record batches ---------------------------------------------------------------------------
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


# aiokafka's consumer keeps these options in attributes until `start()` hands them to its
# fetcher; Faust passes neither fetch option (fetch_min_bytes stays 1) and reads uncommitted
# data unless its own exactly-once mode is on.
CONSUMER_OPTIONS = ("_fetch_min_bytes", "_fetch_max_wait_ms", "_isolation_level")


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """How long the broker may hold a fetch to fill it (Kafka's fetch.min.bytes and
    fetch.max.wait.ms), and what the consumer reads: committed data only, so that nothing a
    fenced or aborted transaction wrote is ever read (stream.pipeline.transactions)."""

    min_bytes: int
    max_wait_ms: int
    isolation_level: str = "read_committed"


def apply_fetch_options(consumer: Any, options: FetchOptions) -> None:
    """Set `options` on an aiokafka consumer that has not started yet."""
    missing = [name for name in CONSUMER_OPTIONS if not hasattr(consumer, name)]
    if missing:
        raise IncompatibleFaust(
            f"aiokafka {version('aiokafka')}: AIOKafkaConsumer has no {', '.join(missing)}; "
            "stream.faustx cannot set its fetch options. Install the aiokafka version pinned "
            "in pyproject.toml."
        )
    consumer._fetch_min_bytes = options.min_bytes
    consumer._fetch_max_wait_ms = options.max_wait_ms
    consumer._isolation_level = options.isolation_level


class LingeringConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose aiokafka consumer lets the broker hold a fetch and
    reads committed data only.

    With Faust's options (fetch_min_bytes 1) the broker answers a fetch as soon as any
    assigned partition has a record: at a few hundred messages per second that is a fetch
    round trip, and a batch of a few records per agent, for almost every message.
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        options = getattr(self.app, "fetch_options", None)
        if options is not None:
            apply_fetch_options(consumer, options)
        return consumer


# Called with the partitions of a new assignment and its generation, before Faust recovers
# the tables or reads committed offsets (stream.pipeline.transactions fences there).
AssignedHook = Callable[[set[TP], int], Awaitable[None]]
# Given changelog partitions and their end offsets: one past each one's last record that a
# read_committed consumer gets (stream.pipeline.transactions.last_record_ends).
EndsHook = Callable[[dict[TP, int]], Awaitable[dict[TP, int]]]


class BatchConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer with the batch topics taken out of its per-message path."""

    # Seeks started and finished, per partition and for seeks of every partition (Faust's
    # seek to the committed offsets); odd while one runs. A partition whose count moved while
    # a fetch was made may have records from before its seek in that fetch.
    _seek_counts: dict[TP, int]
    _seeks_of_all: int = 0

    def _new_consumer_thread(self) -> aiokafka_driver.AIOKafkaConsumerThread:
        return LingeringConsumerThread(self, loop=self.loop, beacon=self.beacon)

    @property
    def router(self) -> BatchRouter | None:
        return getattr(self.app, "batch_router", None)

    async def _wait_next_records(self, timeout: float) -> Any:
        counts = self.__dict__.setdefault("_seek_counts", {})
        before, all_before = dict(counts), self._seeks_of_all
        records, active = await super()._wait_next_records(timeout)
        router = self.router
        if not records:
            return records, active
        batch_topics = router.topics if router is not None else set()
        moved_all = all_before % 2 == 1 or all_before != self._seeks_of_all
        stale = set()  # batch partitions only: the router reads them again from its offsets
        for tp in records:
            if tp.topic not in batch_topics:
                continue
            count = before.get(tp, 0)
            if moved_all or count % 2 == 1 or count != counts.get(tp, 0):
                stale.add(tp)
        if router is not None:
            await router.take(self, records, stale=stale)
        return records, active

    @contextlib.asynccontextmanager
    async def _seeking(self, partition: TP | None = None) -> AsyncIterator[None]:
        counts = self.__dict__.setdefault("_seek_counts", {})

        def bump() -> None:
            if partition is None:
                self._seeks_of_all += 1
            else:
                counts[partition] = counts.get(partition, 0) + 1

        bump()
        try:
            yield
        finally:
            bump()

    def _new_offset(self, tp: TP) -> int | None:
        router = self.router
        if router is None or tp.topic not in router.handlers:
            return super()._new_offset(tp)
        return router.committable(tp)

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[TP]:
        """The partitions Faust's commit looks at: those with acknowledged messages, and the
        batch partitions (Faust sees none of their messages, so it would never commit them)."""
        yield from super()._filter_tps_with_pending_acks(topics)
        router = self.router
        if router is None:
            return
        for tp in list(router.done):
            if tp not in self._acked and (topics is None or tp in topics or tp.topic in topics):
                yield tp

    async def _seek(self, partition: TP, offset: int) -> None:
        """Seek in the consumer's own thread. Faust calls aiokafka's `seek` from the app's
        thread while the consumer thread may be inside `fetched_records`, which deletes the
        same partition's buffered records: a KeyError there crashed a worker's fetcher in a
        CI run. The router seeks often around rebalances, so every seek goes through the
        thread's method queue, as Faust's own `seek_to_committed` does."""
        thread = self._thread

        async def seek_there() -> None:
            thread.seek(partition, offset)

        async with self._seeking(partition):
            await thread.call_thread(seek_there)

    async def seek_wait(self, partitions: Mapping[TP, int | None]) -> None:
        """Faust's recovery seeks its changelog partitions here. A rebalance during recovery
        can add a partition after recovery built its start offsets, leaving it at None, and
        aiokafka refuses that ("Offset must be a positive integer": the worker crashed, in
        nemesis runs). Such a partition is read from its beginning, as Faust does for -1;
        the recovery that the rebalance restarts seeks it again."""
        await super().seek_wait(recovery_seeks(partitions))

    async def seek_to_committed(self) -> Mapping[TP, int]:
        async with self._seeking():
            committed = await super().seek_to_committed()
        router = self.router
        if router is not None:
            await router.on_seek(self, committed)
        return committed

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        hook: AssignedHook | None = getattr(self.app, "on_assigned_hook", None)
        if hook is not None:
            await hook(set(assigned), generation_id)
        await super().on_partitions_assigned(assigned, generation_id)

    async def request_rejoin(self) -> None:
        """Ask the group coordinator for a new generation (a rebalance), as aiokafka does
        itself when its member id is unknown. In the consumer's thread, whose loop owns the
        coordinator's futures."""
        thread = self._thread

        async def rejoin_there() -> None:
            thread._ensure_consumer()._coordinator.request_rejoin()

        await thread.call_thread(rejoin_there)

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        """End offsets as Faust's recovery needs them: for changelogs, one past the last
        record a read_committed consumer gets. Recovery waits until it has read the record at
        highwater - 1, and a transaction's commit marker (or an aborted record) at the end of
        a changelog is never delivered: it would wait for ever."""
        ends = dict(await super().highwaters(*partitions))
        last_records: EndsHook | None = getattr(self.app, "changelog_ends_hook", None)
        changelogs = {tp: end for tp, end in ends.items() if tp.topic.endswith("-changelog")}
        if changelogs and last_records is not None:
            ends.update(await last_records(changelogs))
        return ends

    def resume_flow(self) -> None:
        """Faust resumes its flow right after `app.flow_control.resume()`, which clears every
        flow-controlled queue, Faust's changelog queue included: standby records fetched but
        not yet read from it are dropped, while the consumer's position is past them, and the
        standby then applied later records and reported itself caught up over the hole (a
        standby store lacked 808 committed id states after a freeze, docs/reliability.md).
        Each standby partition is sought back to the record after the last one recovery read;
        records it reads twice are skipped by recovery's own seen-offset check."""
        super().resume_flow()
        recovery = getattr(getattr(self.app, "tables", None), "recovery", None)
        if recovery is None:
            return
        assigned = self.assignment()
        again = {
            tp: int(offset) + 1
            for tp in list(recovery.standby_tps)
            if tp in assigned and (offset := recovery.standby_offsets.get(tp)) is not None
        }
        if again:
            pending: set[asyncio.Future[None]] = self.__dict__.setdefault("_reseeks", set())
            task = asyncio.ensure_future(self._seek_all(again))
            pending.add(task)  # a reference until it is done
            task.add_done_callback(pending.discard)

    async def _seek_all(self, offsets: Mapping[TP, int]) -> None:
        for tp, offset in offsets.items():
            with contextlib.suppress(IllegalStateError):  # revoked meanwhile
                await self._seek(tp, offset)

    async def wait_empty(self) -> None:
        router = self.router
        if router is not None:
            # A revocation commits what is finished: let the batch in progress finish.
            await router.wait_idle(self.app.conf.broker_session_timeout * 0.5)
        await super().wait_empty()


def recovery_seeks(partitions: Mapping[TP, int | None]) -> dict[TP, int]:
    """Recovery's seeks with an unknown start (None) made a read from the beginning."""
    return {tp: 0 if offset is None else offset for tp, offset in partitions.items()}


async def request_rejoin(app: faust.App) -> None:
    """Ask the group for a new generation on behalf of `app`'s worker."""
    consumer = app.consumer
    if not isinstance(consumer, BatchConsumer):
        raise TypeError(f"{type(consumer).__name__} is not faustx's consumer")
    await consumer.request_rejoin()


class BatchTransport(aiokafka_driver.Transport):
    Consumer = BatchConsumer


def install(app: faust.App, fetch: FetchOptions | None = None) -> BatchRouter:
    """Check this Faust, register the `cxkafka://` transport and give `app` its router (and
    its consumer's `fetch` options: aiokafka's defaults when None)."""
    check()
    drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:BatchTransport"
    router = BatchRouter(app)
    app.batch_router = router  # type: ignore[attr-defined]
    app.fetch_options = fetch  # type: ignore[attr-defined]
    return router


def broker_urls(servers: Iterable[str]) -> list[str]:
    return [f"{SCHEME}://{server}" for server in servers]


# -- Ctrl-C ---------------------------------------------------------------------------------
def hush_sigint(worker: mode.Worker) -> None:
    """Ctrl-C stops the command as before, without mode's `-INT- -INT- ...` line on stderr
    (mode's handler prints it, then schedules the same shutdown)."""

    def on_sigint() -> None:
        worker._schedule_shutdown(signal.SIGINT)

    # mode installs its signal handlers when the worker starts, after this: they take this one
    setattr(worker, "_on_sigint", on_sigint)  # noqa: B010 (a method, for mypy)


# -- the consumer as the read side sees it ------------------------------------------------------
def started_consumer(app: faust.App) -> Any | None:
    """The app's consumer once the worker has built it (`app.consumer` would build one)."""
    return app._consumer


def assigned(app: faust.App) -> set[TP]:
    consumer = started_consumer(app)
    return set(consumer.assignment()) if consumer is not None else set()


def lag(app: faust.App) -> dict[TP, int]:
    """Records between what this worker finished and the end, per assigned batch partition.

    Offsets that hold no record for a read_committed consumer (transaction markers, aborted
    records) are not lag: once an agent has finished everything handed on, the consumer's
    fetch position (past them) counts as finished."""
    consumer = started_consumer(app)
    router: BatchRouter | None = getattr(app, "batch_router", None)
    if consumer is None or router is None:
        return {}
    out = {}
    for tp in consumer.assignment():
        if tp.topic not in router.handlers:
            continue
        with contextlib.suppress(Exception):  # highwater not known yet
            done = router.position(tp)
            if router.next.get(tp, done) == done:
                done = max(done, fetch_position(consumer, tp) or 0)
            out[tp] = max(0, int(consumer.highwater(tp)) - done)
    return out


def fetch_position(consumer: Any, tp: TP) -> int | None:
    """The offset aiokafka's consumer fetches next for `tp` (None if not known): the sync
    read of what `AIOKafkaConsumer.position` returns once a position is valid."""
    try:
        aiokafka_consumer = consumer._thread._ensure_consumer()
        state = aiokafka_consumer._subscription.subscription.assignment.state_value(tp)
        return int(state.position) if state.has_valid_position else None
    except Exception:  # not assigned, not started, or another aiokafka: no correction
        return None


# -- sending a batch of records -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sent:
    """One produce batch on its way: its future gives the broker's base offset."""

    future: Awaitable[Any]
    topic: str
    partition: int
    count: int


def kafka_producer(app: Any) -> Any:
    """The started aiokafka producer under Faust's producer (Faust's own `send` costs about
    30 us per record through its buffer; a produce batch costs a few us per record)."""
    return app.producer._ensure_producer()


async def send_batched(
    app: Any,
    topic: str,
    partition: int,
    records: Iterable[tuple[bytes | None, bytes | None]],
    producer: Any = None,
) -> list[Sent]:
    """Send `records` (key, value) to one partition in as few produce batches as fit, through
    `producer` (an aiokafka producer, e.g. a transaction's) or the app's."""
    producer = producer if producer is not None else kafka_producer(app)
    sent: list[Sent] = []
    batch = producer.create_batch()
    count = 0
    for key, value in records:
        if batch.append(key=key, value=value, timestamp=None) is None:
            future = await producer.send_batch(batch, topic, partition=partition)
            sent.append(Sent(future, topic, partition, count))
            batch = producer.create_batch()
            count = 0
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise ValueError(f"a record for {topic} is larger than a produce batch")
        count += 1
    if count:
        future = await producer.send_batch(batch, topic, partition=partition)
        sent.append(Sent(future, topic, partition, count))
    return sent


async def confirmed(sent: Iterable[Sent]) -> dict[TP, int]:
    """Wait until the broker has every batch; the last offset written per partition."""
    batches = list(sent)
    last: dict[TP, int] = {}
    results = await asyncio.gather(*(one.future for one in batches))
    for one, metadata in zip(batches, results, strict=True):
        tp = TP(one.topic, one.partition)
        last[tp] = max(last.get(tp, -1), int(metadata.offset) + one.count - 1)
    return last


# -- tables -----------------------------------------------------------------------------------
class CodecTable(faust.Table):
    """A table with bytes keys, msgspec values, and batched, partition-explicit access.

    Faust derives a table's serializers when it builds the table and its changelog topic, so
    the value codec is fixed here before Faust reads it (setting `value_serializer` afterwards
    would leave recovery decoding the changelog as JSON). Faust finds a write's partition
    from the "current event", which batch agents do not have, and sends each changelog record
    through its one-at-a-time send buffer; here the caller names the partition, RocksDB
    writes go in one write batch, and a batch's changelog records are sent together and
    confirmed (`confirm_changelog`) before the batch's offsets may commit.
    """

    def __init__(
        self,
        app: faust.App,
        *,
        value_codec: str,
        encode: Callable[[Any], bytes],
        decode: Callable[[bytes], Any],
        **kwargs: Any,
    ) -> None:
        self.value_codec = value_codec
        self.encode = encode
        self.decode = decode
        # per partition: changelog records (key, encoded value or None) not sent yet
        self.pending: dict[int, list[tuple[bytes, bytes | None]]] = {}
        # per partition: key -> (value, encoded value or None for a delete), not in the store yet
        self.staged: dict[int, dict[bytes, tuple[Any, bytes | None]]] = {}
        self.writes = 0  # keys written or deleted since start (readers cache on it)
        super().__init__(app, key_type=bytes, **kwargs)

    def _serializer_from_type(self, typ: Any) -> Any:
        return "raw" if typ is bytes else self.value_codec

    def send_changelog(self, partition: int | None, key: Any, value: Any, *a: Any, **k: Any) -> Any:
        raise RuntimeError(f"{self.name}: write with put_many(partition, ...), not table[key]")

    @property
    def on_rocksdb(self) -> bool:
        return isinstance(self.data, rocksdb_store.Store)

    def _db(self, partition: int) -> Any:
        store: Any = self.data
        return store._db_for_partition(partition)

    def get_many(self, partition: int, keys: Sequence[bytes]) -> list[Any]:
        """The values of `keys` in `partition` (None where absent), staged writes included:
        one RocksDB multi-get."""
        if not keys:
            return []
        staged = self.staged.get(partition)
        if not self.on_rocksdb:
            data = self.data.data
            found = [data.get(key) for key in keys]
        else:
            raws = self._db(partition).get(list(keys))
            found = [None if raw is None else self.decode(raw) for raw in raws]
        if staged:
            for i, key in enumerate(keys):
                if key in staged:
                    found[i] = staged[key][0]
        return found

    def put_many(self, partition: int, values: Mapping[bytes, Any]) -> None:
        """Stage (None: delete) `values` in `partition` and queue their changelog records.

        Staged values are read back by `get_many` at once, but reach the store only with
        `apply_staged`, after the changelog records are in Kafka (in a committed transaction
        when they were sent in one): the store never holds what Kafka may not."""
        encoded = self._stage(partition, values)
        self.pending.setdefault(partition, []).extend(encoded.items())

    def _stage(self, partition: int, values: Mapping[bytes, Any]) -> dict[bytes, bytes | None]:
        encoded = {k: None if v is None else self.encode(v) for k, v in values.items()}
        staged = self.staged.setdefault(partition, {})
        for key, raw in encoded.items():
            staged[key] = (values[key], raw)
        return encoded

    def _partitions(self, partition: int | None) -> list[int]:
        return sorted(set(self.pending) | set(self.staged)) if partition is None else [partition]

    async def send_pending(
        self, producer: Any = None, partition: int | None = None
    ) -> tuple[list[Sent], int]:
        """Send the queued changelog records of `partition` (None: all) through `producer`
        (e.g. a transaction's) or the app's: the produce batches on their way and how many
        records they hold."""
        topic = self.changelog_topic.get_topic_name()
        sent: list[Sent] = []
        count = 0
        for part in self._partitions(partition):
            records = self.pending.pop(part, [])
            if records:
                sent += await send_batched(self.app, topic, part, records, producer)
                count += len(records)
        return sent, count

    def apply_staged(self, written: Mapping[TP, int], partition: int | None = None) -> None:
        """Write the staged values of `partition` (None: all) to the store; `written`: the
        last changelog offset sent per changelog partition (as Faust's own changelog
        callback: the store holds state up to there)."""
        for part in self._partitions(partition):
            self._write_encoded(part, self.staged.pop(part, {}))
        for tp, offset in written.items():
            self.data.set_persisted_offset(tp, offset)

    def discard_staged(self, partition: int | None = None) -> None:
        """Forget what was staged and queued for `partition` (None: all): its transaction
        did not commit."""
        for part in self._partitions(partition):
            self.staged.pop(part, None)
            self.pending.pop(part, None)

    def write_store(self, partition: int, values: Mapping[bytes, Any]) -> None:
        """Write (None: delete) `values` in `partition`'s store at once (recovery, replay)."""
        encoded = {k: None if v is None else self.encode(v) for k, v in values.items()}
        self._write_encoded(partition, {k: (v, encoded[k]) for k, v in values.items()})

    def _write_encoded(
        self, partition: int, items: Mapping[bytes, tuple[Any, bytes | None]]
    ) -> None:
        if not items:
            return
        if self.on_rocksdb:
            from rocksdict import WriteBatch

            batch = WriteBatch(raw_mode=True)  # Faust opens its databases in raw mode
            for key, (_, raw) in items.items():
                if raw is None:
                    batch.delete(key)
                else:
                    batch.put(key, raw)
            self._db(partition).write(batch)
        else:
            data = self.data.data
            for key, (value, _) in items.items():
                if value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
        self.writes += len(items)

    def raw_items(self, partition: int) -> Iterable[tuple[bytes, bytes]]:
        """Undecoded items of a partition's RocksDB database (Faust's own bookkeeping too)."""
        db = getattr(self.data, "_dbs", {}).get(partition)
        return iter(()) if db is None else db.items()

    def items_in(self, partitions: Iterable[int]) -> Iterable[tuple[bytes, Any]]:
        """Decoded (key, value) of these partitions (memory store: every key)."""
        if not self.on_rocksdb:
            yield from list(self.data.data.items())
            return
        for partition in partitions:
            for key, raw in self.raw_items(partition):
                if isinstance(key, bytes) and key != rocksdb_store.Store.offset_key:
                    yield key, self.decode(raw)

    async def confirm_changelog(self) -> int:
        """Outside a transaction: send the queued changelog records, wait until the broker
        has all of them, then write the staged values to the store.

        Returns the number of records sent (the benchmark counts them per input event).
        """
        sent, count = await self.send_pending()
        self.apply_staged(await confirmed(sent))
        return count


TableT = TypeVar("TableT", bound=CodecTable)


class DeltaLogTable(CodecTable):
    """A CodecTable whose changelog holds one record of *deltas* per batch, not one record
    per key: for state with many keys per batch (per-customer buckets), where a record per
    key would mean about one changelog record per input event.

    The agent writes the store (`put_many`, no changelog) and logs the batch's deltas with
    `log_deltas`; recovery and standbys hand every delta record to `replay`, which applies
    it to the store the way the agent did. Replaying must be idempotent (the stage-2 states
    carry per-source offset marks), since a record may be applied again after a crash. The
    topic is not compacted (every key is new) but deleted after `retention` seconds: deltas
    older than the longest window count nowhere. Its records are raw bytes to Faust
    (`value_codec="raw"`): only `replay` reads them.
    """

    def __init__(
        self,
        app: faust.App,
        *,
        replay: Callable[[int, list[bytes]], None],
        retention: float | None,
        **kwargs: Any,
    ) -> None:
        self.replay = replay
        self.retention = retention  # None: kept for ever
        super().__init__(app, **kwargs)

    def _new_changelog_topic(self, **kwargs: Any) -> Any:
        kwargs.update(retention=self.retention, compacting=False, deleting=True)
        if self.retention is None:
            # Faust sets no retention.ms then, and the broker would apply its default (7 d)
            self.extra_topic_configs = {**self.extra_topic_configs, "retention.ms": "-1"}
        return super()._new_changelog_topic(**kwargs)

    def put_many(self, partition: int, values: Mapping[bytes, Any]) -> None:
        self._stage(partition, values)  # no changelog record per key: deltas are logged per batch

    def log_deltas(self, partition: int, key: bytes, deltas: bytes) -> None:
        self.pending.setdefault(partition, []).append((key, deltas))

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        by_partition: dict[int, list[bytes]] = defaultdict(list)
        last: dict[TP, int] = {}
        for event in batch:
            message = event.message
            if message.value is not None:
                by_partition[message.partition].append(message.value)
            last[message.tp] = max(last.get(message.tp, -1), message.offset)
        for partition, values in by_partition.items():
            self.replay(partition, values)
        for tp, offset in last.items():
            self.data.set_persisted_offset(tp, offset)


StateLog = list[tuple[bytes, bytes | None]]
_encode_state_log = msgspec.msgpack.Encoder().encode
decode_state_log = msgspec.msgpack.Decoder(StateLog).decode
# Bytes of encoded states per state-log record: far below the broker's 1 MB record limit.
STATE_LOG_BYTES = 256 * 1024


class StateLogTable(DeltaLogTable):
    """A table of per-key states whose changelog holds one record per *batch*: the batch's
    changed keys with their encoded states (None: deleted), in the order they were written.

    A record per key would be one changelog record per input event (each event is a new id);
    this is one per partition batch. Recovery and standbys write each record's states to the
    store in log order, so the last write of a key wins, as compaction would leave it. Stored
    states are replaced, never merged, which makes a record applied twice harmless.
    """

    def __init__(self, app: faust.App, *, retention: float | None, **kwargs: Any) -> None:
        self.log_records = 0
        super().__init__(app, replay=self.replay_states, retention=retention, **kwargs)

    async def send_pending(
        self, producer: Any = None, partition: int | None = None
    ) -> tuple[list[Sent], int]:
        """Log what the take staged (its changed keys, once each) as state-log records."""
        for part in self._partitions(partition):
            staged = self.staged.get(part)
            if staged:
                # keys only name a record for people reading the topic: nothing looks them up
                for value in pack_states({key: raw for key, (_, raw) in staged.items()}):
                    self.log_records += 1
                    self.pending.setdefault(part, []).append(
                        (b"%d@%d" % (part, self.log_records), value)
                    )
        return await super().send_pending(producer, partition)

    def replay_states(self, partition: int, values: list[bytes]) -> None:
        for value in values:
            states = decode_state_log(value)
            if self.on_rocksdb:
                items = {k: (None, raw) for k, raw in states}
            else:
                items = {k: (None if raw is None else self.decode(raw), raw) for k, raw in states}
            self._write_encoded(partition, items)


def pack_states(states: Mapping[bytes, bytes | None]) -> list[bytes]:
    """`states` as state-log records of at most about STATE_LOG_BYTES each."""
    records: list[bytes] = []
    chunk: StateLog = []
    size = 0
    for key, raw in states.items():
        chunk.append((key, raw))
        size += len(key) + (0 if raw is None else len(raw)) + 8  # + msgpack's headers
        if size >= STATE_LOG_BYTES:
            records.append(_encode_state_log(chunk))
            chunk, size = [], 0
    if chunk:
        records.append(_encode_state_log(chunk))
    return records


def declare_table(app: faust.App, table: TableT) -> TableT:
    """Add a table to the app the way `app.Table` would."""
    app.tables.add(table)
    return table
