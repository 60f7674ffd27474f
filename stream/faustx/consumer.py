"""The project's consumer and transport: Faust's aiokafka consumer with the batch topics taken
out of its per-message path, its fetch options, `install`, and the consumer as the read side
sees it (assignment, lag)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from faust.transport import drivers
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP

from stream.faustx.batches import BatchRouter, started_consumer
from stream.faustx.contract import IncompatibleFaust, check

log = logging.getLogger(__name__)


SCHEME = "cxkafka"


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
