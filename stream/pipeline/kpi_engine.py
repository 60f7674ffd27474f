"""KPI engine wiring: stage-1 agents (responses, dispatches, lifecycle) and the stage-2 agent.

The exactly-once reasoning lives in stream/aggregation; this module only moves bytes:
  1. decode and validate a batch, route mis-keyed messages to their id's partition;
  2. decide each message against its id's state (RocksDB table);
  3. send the batch's partial sums and WAIT until the broker has them;
  4. only then write the ids' new states (and so their changelog records).
Step 3 before 4 means a state in the changelog implies its partials are in Kafka.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import faust
import msgspec
from aiokafka.partitioner import murmur2

from stream.aggregation.buckets import apply_partial, expired, parse_key
from stream.aggregation.dedupe import Decision, decide_lifecycle, decide_once, decide_revision
from stream.aggregation.messages import (
    BucketState,
    Contribution,
    Entry,
    IdState,
    Partial,
    owner_partition,
)
from stream.channels import Accepted, Rejected, TimeLimits, adapt_canonical
from stream.channels.decode import decode
from stream.kpi import response as response_kpi
from stream.kpi import summary
from stream.kpi.segments import CHURN, dispatch_segments, response_segments
from stream.kpi.windows import LONGEST
from stream.models import Dispatch, LifecycleEvent, SurveyResponse
from stream.pipeline.app import CxApp
from stream.pipeline.codecs import (
    BUCKET_STATE,
    ID_STATE,
    CodecTable,
    codec_table,
    register_codecs,
)
from stream.pipeline.events import BATCH_MAX, BATCH_WITHIN, in_order, use_event
from stream.pipeline.normalise import reject, safe_adapt

EXPIRY_EVERY = 30.0
_encode = msgspec.msgpack.Encoder().encode
_decode_partial = msgspec.msgpack.Decoder(Partial).decode
_decode_id_state = msgspec.msgpack.Decoder(IdState).decode
_decode_bucket_state = msgspec.msgpack.Decoder(BucketState).decode
_encode_json = msgspec.json.Encoder().encode


def id_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key` (murmur2, as Java clients do)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class Parsed:
    """A decoded stage-1 message: its id, and how to decide it against the id's state."""

    key: bytes
    decide: Callable[[IdState | None, str, int], Decision]
    response: SurveyResponse | None = None


Parser = Callable[[bytes, TimeLimits], Parsed | Rejected]


class Followup(msgspec.Struct, omit_defaults=True):
    """cx.followups v1: call this detractor back. Ids only: no comment, no contact data."""

    response_id: str
    occurred_at: str
    channel: str
    nps: int
    revision: int
    customer_id: str | None = None
    interaction_id: str | None = None
    queue: str | None = None
    agent_id: str | None = None


def followup_of(response: SurveyResponse) -> Followup | None:
    nps = response.scores.nps
    if nps is None or nps > 6:
        return None
    return Followup(
        response.response_id,
        response.occurred_at.isoformat(),
        response.channel,
        nps,
        response.revision,
        response.customer_id,
        response.interaction_id,
        response.queue,
        response.agent_id,
    )


class KpiEngine:
    """Builds the tables and agents on `app`; read access for the exporter and snapshots."""

    def __init__(self, app: CxApp) -> None:
        register_codecs()
        self.app = app
        self.partitions = app.settings.partitions
        self.names = app.names
        self.csi_weights = app.settings.csi_weights or None
        self.queue_label = app.settings.queue_label
        self.member_limits = app.settings.member_limits()
        self.partials = app.topics_by_name[self.names.partials]
        # Not "memory://": Faust tests the store URL's truth value, and yarl finds that one
        # empty, so the table would silently fall back to the app's RocksDB store.
        self.buckets = codec_table(
            app, "kpi-buckets", BUCKET_STATE, self.partitions, store="memory://local"
        )
        # Per-customer buckets (SCI) grow with customers: RocksDB, not memory.
        self.customers = codec_table(
            app, "kpi-customers", BUCKET_STATE, self.partitions,
            options=app.settings.rocksdb_options(),
        )  # fmt: skip
        self._last_expiry = 0.0
        # Write counters of the stage-2 tables: readers cache rows until these move.
        self.writes = {"buckets": 0, "customers": 0}
        self._last_sweep: dict[str, float] = {}
        self.in_order = in_order(app)
        self.in_order.watch(self.names.partials)
        self._stage1("responses", self.names.responses, self.parse_response)
        self._stage1("dispatches", self.names.dispatches, self.parse_dispatch)
        # Lifecycle states never expire: who is active now may depend on an old activation.
        self._stage1("lifecycle", self.names.lifecycle, self.parse_lifecycle, sweep=False)
        app.agent(self.partials, name="kpi-buckets")(self.aggregate)

    # -- parsers: bytes -> (id, decision) --------------------------------------------------------
    def parse_response(self, raw: bytes, limits: TimeLimits) -> Parsed | Rejected:
        outcome = adapt_canonical(raw, limits, self.app.settings.max_message_bytes)
        if not isinstance(outcome, Accepted):
            return outcome if isinstance(outcome, Rejected) else Rejected("invalid_value", "")
        r = outcome.response
        new = Contribution(
            r.occurred_at.timestamp(),
            response_segments(r.channel, self.queue_label(r.queue), r.agent_id, r.customer_id),
            response_kpi.contribution(r, self.csi_weights),
        )
        return Parsed(
            r.response_id.encode(),
            lambda state, src, offset: decide_revision(state, src, offset, r.revision, new),
            r,
        )

    def parse_dispatch(self, raw: bytes, limits: TimeLimits) -> Parsed | Rejected:
        dispatch = decode(raw, Dispatch, self.app.settings.max_message_bytes)
        if isinstance(dispatch, Rejected):
            return dispatch
        if (bad := limits.check(dispatch.occurred_at)) is not None:
            return bad
        new = Contribution(
            dispatch.occurred_at.timestamp(),
            dispatch_segments(dispatch.channel, self.queue_label(dispatch.queue)),
            [summary.DISPATCHES, 1],
        )
        return Parsed(
            dispatch.dispatch_id.encode(),
            lambda state, src, offset: decide_once(state, src, offset, new),
        )

    def parse_lifecycle(self, raw: bytes, limits: TimeLimits) -> Parsed | Rejected:
        event = decode(raw, LifecycleEvent, self.app.settings.max_message_bytes)
        if isinstance(event, Rejected):
            return event
        bad = limits.check(event.occurred_at)
        if bad is not None and bad.reason != "too_old":  # churn needs all-time history
            return bad
        t = event.occurred_at.timestamp()
        return Parsed(
            event.customer_id.encode(),
            lambda state, src, offset: decide_lifecycle(state, src, offset, event.type, t, CHURN),
        )

    # -- stage 1 -------------------------------------------------------------------------------
    def _stage1(self, name: str, source: str, parse: Parser, sweep: bool = True) -> None:
        app = self.app
        table = codec_table(
            app, f"ids-{name}", ID_STATE, self.partitions, options=app.settings.rocksdb_options()
        )
        topic = app.topics_by_name[source]

        async def stage1(stream: faust.StreamT[bytes]) -> None:
            async for batch in self.in_order.batches(stream, BATCH_MAX, BATCH_WITHIN):
                await self._stage1_batch(batch, source, table, parse)
                if sweep:
                    await self._sweep_ids(name, table, batch)

        self.in_order.watch(source)
        app.agent(topic, name=f"stage1-{name}")(stage1)

    async def _stage1_batch(
        self,
        batch: list[faust.EventT],
        source: str,
        table: CodecTable,
        parse: Parser,
    ) -> None:
        app = self.app
        limits = app.settings.time_limits()
        outgoing: dict[tuple[str, int], list[Entry]] = defaultdict(list)
        pending: dict[bytes, tuple[faust.EventT, IdState]] = {}
        followups: list[Followup] = []
        sent: list[Awaitable[Any]] = []  # dead letters and re-published messages
        for event in batch:
            message = event.message
            parsed = safe_adapt(parse, event.value, limits)  # type: ignore[arg-type]
            if isinstance(parsed, Rejected):
                sent.append(await reject(app, event, parsed))
                continue
            assert isinstance(parsed, Parsed)
            home = id_partition(parsed.key, self.partitions)
            if message.partition != home:
                # Mis-keyed: publish it again where its id lives. Every message of an id then
                # comes from one partition, in one order, which replays after a crash repeat.
                sent.append(
                    await app.producer.send(source, parsed.key, event.value, home, None, None)
                )
                continue
            src = f"{message.topic}:{message.partition}"
            if parsed.key in pending:
                state = pending[parsed.key][1]
            else:
                state = table.get_in(message.partition, parsed.key)
            decision = parsed.decide(state, src, message.offset)
            if decision.outcome != "replayed":
                app.metrics.count(source, decision.outcome)
            if decision.state is not None:
                pending[parsed.key] = (event, decision.state)
            for entry in decision.entries:
                outgoing[(src, owner_partition(entry.segment, self.partitions))].append(entry)
            if decision.outcome in ("accepted", "revised") and parsed.response is not None:
                followups += filter(None, [followup_of(parsed.response)])
        await self._send_partials(outgoing, followups, sent)
        for key, (event, state) in pending.items():
            use_event(event)
            table[key] = state
        await table.confirm_changelog()

    async def _send_partials(
        self,
        outgoing: dict[tuple[str, int], list[Entry]],
        followups: list[Followup],
        sent: list[Awaitable[Any]],
    ) -> None:
        """Send the batch's partials (and follow-ups) and wait until the broker has them all,
        and the batch's earlier sends (`sent`).

        Straight to the producer: Faust's topic send buffer awaits each message in turn.
        """
        producer = self.app.producer
        futures = [
            await producer.send(
                self.names.partials, None, _encode(Partial(src, entries)), dest, None, None
            )
            for (src, dest), entries in outgoing.items()
        ]
        futures += sent
        futures += [
            await producer.send(
                self.names.followups, f.response_id.encode(), _encode_json(f), None, None, None
            )
            for f in followups
        ]
        if futures:
            await asyncio.gather(*futures)

    async def _sweep_ids(self, name: str, table: CodecTable, batch: list[faust.EventT]) -> None:
        """Forget ids whose answer left every window, so id state does not grow for ever.

        A late re-delivery of a forgotten id is `too_old` anyway; a revision with a recent
        event time counts as new, which is right: the old answer is in no window any more.
        """
        now = time.time()
        if now - self._last_sweep.get(name, 0.0) < self.app.settings.id_sweep_interval:
            return
        self._last_sweep[name] = now
        horizon = now - LONGEST.seconds - self.app.settings.late_grace_seconds
        by_partition = {event.message.partition: event for event in batch}
        for partition, event in by_partition.items():
            use_event(event)
            for key in [k for k, v in table.raw_items(partition) if _forgettable(v, horizon)]:
                del table[key]
        await table.confirm_changelog()

    # -- stage 2 -------------------------------------------------------------------------------
    def _count_write(self, table: CodecTable) -> None:
        self.writes["customers" if table is self.customers else "buckets"] += 1

    def table_for(self, key: bytes) -> CodecTable:
        return self.customers if key.startswith(b"c|") else self.buckets

    async def aggregate(self, stream: faust.StreamT[bytes]) -> None:
        async for batch in self.in_order.batches(stream, BATCH_MAX, BATCH_WITHIN):
            self._aggregate_batch(batch)
            await self.buckets.confirm_changelog()
            await self.customers.confirm_changelog()

    def _aggregate_batch(self, batch: list[faust.EventT]) -> None:
        now = time.time()
        overlay = Overlay(self.table_for)
        owner_event: dict[bytes, faust.EventT] = {}
        for event in batch:
            try:
                partial = _decode_partial(event.value)
            except (msgspec.DecodeError, TypeError):
                continue  # only this project writes the topic; nothing else can be there
            overlay.partition = event.message.partition
            for key in apply_partial(overlay, partial, now, self.member_limits):
                owner_event[key] = event
        for key, event in owner_event.items():
            use_event(event)
            table = self.table_for(key)
            table[key] = overlay.local[key]
            self._count_write(table)
        if now - self._last_expiry >= EXPIRY_EVERY:
            self._last_expiry = now
            self._expire(self.buckets, batch, now)
            self._expire(self.customers, batch, now)

    def _expire(self, table: CodecTable, batch: list[faust.EventT], now: float) -> None:
        by_partition = {event.message.partition: event for event in batch}
        for key in expired(list(table.keys()), now):
            segment = parse_key(key)[0]
            event = by_partition.get(owner_partition(segment, self.partitions))
            if event is not None:
                use_event(event)
                del table[key]
                self._count_write(table)

    # -- read side -----------------------------------------------------------------------------
    def owned_partitions(self) -> set[int]:
        consumer = self.app._consumer  # None until the worker has started
        if consumer is None:
            return set()
        return {tp.partition for tp in consumer.assignment() if tp.topic == self.names.partials}

    def owned_items(self, customers: bool = False) -> Iterator[tuple[bytes, BucketState]]:
        owned = self.owned_partitions()
        if customers and self.customers.on_rocksdb:
            # Straight from RocksDB: Faust's item view decodes through its codec registry,
            # several times slower than one msgspec decoder over a million customers.
            for partition in owned:
                for key, raw in self.customers.raw_items(partition):
                    if isinstance(key, bytes) and key.startswith(b"c|"):
                        yield key, _decode_bucket_state(raw)
            return
        table = self.customers if customers else self.buckets
        for key, state in list(table.items()):
            if owner_partition(parse_key(key)[0], self.partitions) in owned:
                yield key, state


def _forgettable(raw: object, horizon: float) -> bool:
    if not isinstance(raw, bytes):
        return False
    try:
        state = _decode_id_state(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False  # Faust's own bookkeeping (e.g. the persisted offset) lives here too
    return state.current is None or state.current.t < horizon


class Overlay(MutableMapping[bytes, BucketState]):
    """Reads through to the tables, keeps writes local until the batch is done."""

    def __init__(self, table_for: Callable[[bytes], CodecTable]) -> None:
        self.table_for = table_for
        self.local: dict[bytes, BucketState] = {}
        self.partition = 0  # of the partial being applied: its keys live in that partition

    def get(self, key: bytes, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __getitem__(self, key: bytes) -> BucketState:
        if key in self.local:
            return self.local[key]
        value = self.table_for(key).get_in(self.partition, key)
        if value is None:
            raise KeyError(key)
        # Copy so that the table's object changes only when the batch writes it back.
        members = {member: list(vector) for member, vector in value.members.items()}
        copy = BucketState(list(value.vector), dict(value.applied), members)
        self.local[key] = copy
        return copy

    def __setitem__(self, key: bytes, value: BucketState) -> None:
        self.local[key] = value

    def __delitem__(self, key: bytes) -> None:
        del self.local[key]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.local)

    def __len__(self) -> int:
        return len(self.local)
