"""Fencing: every take of a KPI agent is one Kafka transaction of its input partition.

A worker that stops running for longer than the group's session timeout (a GC or VM pause,
SIGSTOP) loses its partitions to another worker, and when it runs again it finishes the take
it was in: a *zombie*. Nothing it writes after that may count. Kafka's answer is a
transactional producer per input partition (`transactional.id` = app, topic, partition):

* When a worker is assigned a partition, it starts a new producer under that partition's
  transactional id *before* Faust recovers the tables or reads the committed offsets
  (`faustx.BatchConsumer.on_partitions_assigned`). The broker then bumps the id's epoch: an
  open transaction of the previous owner is aborted (or, if it was committing, completed
  first), and every later write or commit of the old producer fails (ProducerFenced).
* A take's writes for one input partition (partials, follow-ups, dead letters, re-published
  messages, the tables' changelog records) and the partition's next offset
  (`send_offsets_to_transaction`) are one transaction: all of them count, or none.
* Every reader (stage 2, table recovery, standbys) reads committed data only, so a zombie's
  writes, or a crashed take's, are never read.
* The tables' stores are written only after the commit (`CodecTable.apply_staged`), so a
  store never holds what the changelog does not.

A producer is created only on an assignment, for that generation: a fenced producer stays
dead, so a zombie can never fence the new owner back. Its takes fail with `Fenced` until the
group gives it partitions again.

A producer can also die while its worker still owns the partition: a broker restart can kill
aiokafka's sender so that even the abort fails, and the coordinator aborts (and fences) a
transaction left open past TRANSACTION_TIMEOUT_MS. Replacing it on the spot is not safe (a
worker cannot tell, between a check and the new producer's `init_transactions`, that it has
not become a zombie meanwhile), so the worker asks the group for a new generation
(`rejoin`): the coordinator, not the worker, decides who owns the partition next, and the
next assignment starts fresh producers. A zombie would rejoin anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalOperation, KafkaError, KafkaTimeoutError
from faust.types import TP

from stream.faustx import CodecTable, RecordBatch, Sent, confirmed
from stream.pipeline.topics import PARTIAL_RECORD_MAX_BYTES
from stream.settings import KafkaSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a transaction may stay open before the broker aborts it. Takes last well under a
# second; a worker paused for longer than this loses its open transaction (and, past the
# session timeout, its partitions).
TRANSACTION_TIMEOUT_MS = 60_000
# An abort takes milliseconds, or waits for a broker that is coming back; a producer whose
# sender died (a broker restart can do that) never answers it.
ABORT_TIMEOUT_S = 15.0
# The longest a step of a take's commit (begin, changelogs, offsets, commit, confirmations)
# may wait for the broker. aiokafka retries a transaction's requests without end and never
# fails a waiter whose sender died: past this, the take fails and the producer is treated as
# broken (its abort decides), instead of the partition stalling in silence.
STEP_TIMEOUT_S = 60.0


class Fenced(RuntimeError):
    """This worker may no longer write for an input partition (another worker owns it now, or
    its transaction was aborted): the take is dropped, nothing of it counts."""


@dataclass
class Take:
    """One input partition's transaction: send through `producer`, add the produce batches to
    `sent`; the tables whose staged writes it carries are applied once it commits."""

    producer: AIOKafkaProducer
    partition: int
    tables: tuple[CodecTable, ...]
    sent: list[Sent] = field(default_factory=list)
    futures: list[Awaitable[Any]] = field(default_factory=list)  # single sends (dead letters)
    changelog_records: dict[str, int] = field(default_factory=dict)  # per table name

    async def send_changelogs(self) -> None:
        for table in self.tables:
            sent, count = await table.send_pending(self.producer, self.partition)
            self.sent += sent
            self.changelog_records[table.name] = count


@dataclass
class _Owned:
    producer: AIOKafkaProducer
    generation: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fenced: bool = False
    # Set when a new assignment replaces this producer: a take still waiting on it gives up.
    retired: asyncio.Event = field(default_factory=asyncio.Event)


class PartitionTransactions:
    """One transactional producer per assigned input partition of `topics`."""

    def __init__(self, app: Any, kafka: KafkaSettings, topics: Iterable[str]) -> None:
        self.app = app
        self.kafka = kafka
        self.topics = set(topics)
        app.batch_router.transactional |= self.topics  # their offsets commit here, not in Faust
        self.owned: dict[TP, _Owned] = {}
        self.fenced_takes = 0
        # Asks the group for a new generation (faustx.BatchConsumer.request_rejoin).
        self.rejoin: Callable[[], Awaitable[None]] | None = None
        self._rejoin_asked: int | None = None  # the generation a rejoin was asked in
        self.rejoins_asked = 0
        self._pending: set[asyncio.Future[None]] = set()
        self.abort_timeout = ABORT_TIMEOUT_S
        self.step_timeout = STEP_TIMEOUT_S

    def transactional_id(self, tp: TP) -> str:
        return f"{self.app.conf.id}.{tp.topic}.{tp.partition}"

    def _producer(self, tp: TP) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **self.kafka.aiokafka_kwargs(),
            client_id=f"{self.app.conf.id}-txn",
            transactional_id=self.transactional_id(tp),
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
            acks="all",
            linger_ms=0,
            # The coordinator answers CONCURRENT_TRANSACTIONS while it finishes the previous
            # commit; aiokafka's 100 ms backoff then dominates a take (bench.transactions:
            # 24 ms per take with it, 13-17 ms with 5 ms).
            retry_backoff_ms=5,
            max_batch_size=512 * 1024,
            max_request_size=PARTIAL_RECORD_MAX_BYTES,
            request_timeout_ms=int(self.app.conf.producer_request_timeout * 1000),
        )

    async def on_assigned(self, assigned: set[TP], generation: int) -> None:
        """A new assignment: retire every producer, and start one per assigned input
        partition. Starting it fences every earlier producer of the same id (another
        worker's, or this worker's own from an older generation)."""
        old, self.owned = self.owned, {}
        await _retire(old.values())
        mine = sorted(tp for tp in assigned if tp.topic in self.topics)
        producers = {tp: self._producer(tp) for tp in mine}
        started = await asyncio.gather(*(p.start() for p in producers.values()),
                                       return_exceptions=True)  # fmt: skip
        self.owned = {tp: _Owned(p, generation) for tp, p in producers.items()}
        failed = [tp for tp, result in zip(producers, started, strict=True) if result is not None]
        for tp in failed:
            self._broken(self.owned[tp], tp, "could not start its producer")
        log.info("transactional producers for %d input partitions (generation %d)",
                 len(mine) - len(failed), generation)  # fmt: skip

    async def stop(self) -> None:
        old, self.owned = self.owned, {}
        await _retire(old.values())

    @contextlib.asynccontextmanager
    async def take(self, batch: RecordBatch, *tables: CodecTable) -> AsyncIterator[Take]:
        """A transaction for `batch`'s partition that also commits its offsets; `tables`'
        queued changelog records go out in it and their staged writes reach the stores only
        once it committed. Raises `Fenced` when this worker may no longer write there."""
        partition = batch.tp.partition
        owned = self.owned.get(batch.tp)
        if owned is None or owned.fenced or owned.generation != batch.generation:
            for table in tables:
                table.discard_staged(partition)
            self.fenced_takes += 1
            raise Fenced(f"{batch.tp.topic}[{batch.tp.partition}]: not this worker's any more")
        async with owned.lock:
            producer = owned.producer
            take = Take(producer, partition, tables)
            step = functools.partial(self._step, owned)
            watchdog = asyncio.get_running_loop().call_later(
                self.step_timeout, log.warning, "%s[%d]: a take has been open for %g s",
                batch.tp.topic, batch.tp.partition, self.step_timeout,
            )  # fmt: skip
            try:
                await step("begin", producer.begin_transaction())
                yield take
                await step("changelogs", take.send_changelogs())
                # Every record acknowledged before the commit: aiokafka commits a transaction
                # one of whose produce batches the broker refused (MessageSizeTooLargeError,
                # say) without that batch, and the refusal only shows in the batch's future.
                written = await step("confirmations", confirmed(take.sent))
                await step("dead letters", asyncio.gather(*take.futures))
                offsets = {TopicPartition(batch.tp.topic, batch.tp.partition): batch.end}
                await step(
                    "offsets", producer.send_offsets_to_transaction(offsets, self.app.conf.id)
                )
                await step("commit", producer.commit_transaction())
            except BaseException as exc:
                for table in tables:
                    table.discard_staged(partition)
                _collect([one.future for one in take.sent] + take.futures)
                await self._abort(owned, batch.tp, exc)
                where = f"{batch.tp.topic}[{batch.tp.partition}]"
                if isinstance(exc, Fenced):
                    self.fenced_takes += 1
                    raise
                if isinstance(exc, Exception) and (owned.retired.is_set() or _is_fencing(exc)):
                    self.fenced_takes += 1
                    raise Fenced(f"{where}: fenced") from exc
                if isinstance(exc, IllegalOperation):
                    # aiokafka left the transaction (an abortable error after a broker
                    # restart, say): this take failed, like any Kafka error, and is read again
                    raise KafkaError(f"{where}: not in a transaction any more") from exc
                raise
            finally:
                watchdog.cancel()
        for table in tables:
            mine = {tp: o for tp, o in written.items() if _changelog_of(table, tp)}
            table.apply_staged(mine, partition)

    async def _step(self, owned: _Owned, name: str, step: Awaitable[T]) -> T:
        """`step`'s result; Fenced once a new assignment retired `owned`, KafkaTimeoutError
        after `step_timeout` (aiokafka's waits on a dead sender never end)."""
        waiting = asyncio.ensure_future(step)
        retired = asyncio.ensure_future(owned.retired.wait())
        try:
            await asyncio.wait(
                {waiting, retired}, timeout=self.step_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            retired.cancel()
        if waiting.done():
            return waiting.result()
        waiting.cancel()  # only this wait: aiokafka shields its own
        _collect([waiting])
        if owned.retired.is_set():
            raise Fenced(f"{name}: assigned again meanwhile")
        raise KafkaTimeoutError(f"{name}: no answer in {self.step_timeout:g} s")

    async def _abort(self, owned: _Owned, tp: TP, exc: BaseException) -> None:
        if owned.retired.is_set():
            return  # stopped: the broker aborts what it left open when its successor starts
        if isinstance(exc, Exception) and _is_fencing(exc):
            # aiokafka also fails its transaction waiter, which nothing else awaits
            manager = getattr(owned.producer, "_txn_manager", None)
            with contextlib.suppress(Exception):
                _collect([manager.wait_for_transaction_end()])  # type: ignore[union-attr]
            self._broken(owned, tp, "fenced (another worker owns it now, or it timed out)")
            return
        try:
            await asyncio.wait_for(owned.producer.abort_transaction(), self.abort_timeout)
        except Exception as error:  # the producer is broken: later takes need a new one
            self._broken(owned, tp, f"abort failed ({type(error).__name__})")

    def _broken(self, owned: _Owned, tp: TP, why: str) -> None:
        """No more writes with this producer; unless this generation asked already, ask the
        group for a new one, whose assignment starts fresh producers."""
        owned.fenced = True
        asking = self.rejoin is not None and self._rejoin_asked != owned.generation
        log.warning("%s[%d]: %s; takes are dropped until the next assignment%s",
                    tp.topic, tp.partition, why,
                    " (asked the group for one)" if asking else "")  # fmt: skip
        if asking and self.rejoin is not None:
            self._rejoin_asked = owned.generation
            self.rejoins_asked += 1
            task = asyncio.ensure_future(self.rejoin())
            self._pending.add(task)
            task.add_done_callback(self._rejoined)

    def _rejoined(self, task: asyncio.Future[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("could not ask the group for a new generation: %r", error)


def _collect(futures: Iterable[Awaitable[Any]]) -> None:
    """Retrieve the outcome of sends whose transaction failed (asyncio would log each failed
    one as 'never retrieved'): the transaction's error says it all."""
    for future in futures:
        if isinstance(future, asyncio.Future):
            future.add_done_callback(lambda done: done.cancelled() or done.exception())


def _is_fencing(exc: Exception) -> bool:
    from aiokafka.errors import InvalidProducerEpoch, ProducerFenced

    return isinstance(exc, ProducerFenced | InvalidProducerEpoch) or (
        type(exc).__name__ in {"TransactionalIdAuthorizationFailed", "InvalidTxnState"}
    )


def _changelog_of(table: CodecTable, tp: TP) -> bool:
    return bool(tp.topic == table.changelog_topic.get_topic_name())


async def each(jobs: Iterable[Awaitable[None]]) -> None:
    """Run `jobs` (one partition's transaction each) at once; once all are done, raise the
    first error if any (a take whose other partitions committed is read again, and replays
    are no-ops)."""
    results = await asyncio.gather(*jobs, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _retire(owned: Iterable[_Owned]) -> None:
    retiring = list(owned)
    for one in retiring:
        one.retired.set()
    await asyncio.gather(*(_stop(one.producer) for one in retiring))


async def _stop(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):  # a fenced or broken producer: nothing to flush
        await asyncio.wait_for(producer.stop(), timeout=5.0)


async def last_record_ends(kafka: KafkaSettings, ends: dict[TP, int]) -> dict[TP, int]:
    """For each partition and its end offset (read_committed: the last stable offset), one
    past the last record below it that a read_committed consumer gets, or 0 when there is
    none (Faust then finds nothing to recover). Reads back from the end, further each time
    nothing is found."""
    found: dict[TP, int] = {}
    todo = {tp: end for tp, end in ends.items() if end > 0}
    if not todo:
        return dict(ends)
    consumer = AIOKafkaConsumer(
        **kafka.aiokafka_kwargs(), isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [TopicPartition(tp.topic, tp.partition) for tp in todo]
        consumer.assign(parts)
        starts = await consumer.beginning_offsets(parts)
        back = 64
        while todo:
            for tp, end in todo.items():
                consumer.seek(TopicPartition(tp.topic, tp.partition), max(0, end - back))
            last = await _read_up_to(consumer, todo)
            for tp in list(todo):
                begin = starts.get(TopicPartition(tp.topic, tp.partition), 0)
                if tp in last:
                    found[tp] = last[tp] + 1
                elif todo[tp] - back <= begin:
                    found[tp] = 0
                else:
                    continue
                del todo[tp]
            back *= 8
    finally:
        await _stop_consumer(consumer)
    return {tp: found.get(tp, 0) if end > 0 else end for tp, end in ends.items()}


async def _stop_consumer(consumer: AIOKafkaConsumer) -> None:
    # aiokafka's stop() can raise CancelledError from its own committed-offsets task (seen when
    # stopping right after start); only a cancellation of this task itself goes on.
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


async def _read_up_to(consumer: AIOKafkaConsumer, ends: dict[TP, int]) -> dict[TP, int]:
    """Read every partition up to its end offset; the last record offset seen below it."""
    last: dict[TP, int] = {}
    waiting = dict(ends)
    while waiting:
        batches = await consumer.getmany(timeout_ms=200)
        for part, records in batches.items():
            tp = TP(part.topic, part.partition)
            below = [r.offset for r in records if r.offset < ends.get(tp, 0)]
            if below:
                last[tp] = max(below)
        for tp in list(waiting):
            if await consumer.position(TopicPartition(tp.topic, tp.partition)) >= waiting[tp]:
                del waiting[tp]
    return last
