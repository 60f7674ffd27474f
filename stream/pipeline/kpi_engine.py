"""KPI engine wiring: stage-1 agents (responses, dispatches, lifecycle) and the stage-2 agent.

The decisions are pure (stream/aggregation/stage1.py, stage2.py); this module moves batches.
Each partition batch is one Kafka transaction of its input partition
(stream/pipeline/transactions.py), which also commits the batch's offsets:
  1. stage 1 plans a batch: decode, validate, route mis-keyed messages, decide each id once;
  2. in the transaction it sends the batch's partial sums (one record per stage-2 partition),
     dead letters, re-published messages and follow-ups, and the ids' new states;
  3. stage 2 reads every bucket a batch of partials touches at once, applies them, and writes
     each changed bucket once, in the transaction of its partials partition.
The stores are written once the transaction committed; a fenced or failed take writes nothing
anyone reads.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgspec

from stream.aggregation.buckets import CUSTOMER_KEYS, KeyPlan, expired, parse_key
from stream.aggregation.customer_sums import CustomerChange, CustomerSums
from stream.aggregation.dedupe import decide_lifecycle, decide_once, decide_revision
from stream.aggregation.messages import (
    MAX_ENTRIES,
    BucketState,
    Contribution,
    IdState,
    Partial,
    split_partial,
)
from stream.aggregation.routing import id_partitions, owner_partition
from stream.aggregation.stage1 import Parsed, Parser, plan_batch
from stream.aggregation.stage2 import apply_batch, copy_state, keys_touched
from stream.channels import Accepted, Rejected, TimeLimits, adapt_canonical
from stream.channels.decode import decode
from stream.faustx import (
    CodecTable,
    DeltaLogTable,
    RecordBatch,
    StateLogTable,
    assigned,
    declare_table,
    request_rejoin,
    send_batched,
)
from stream.kpi import response as response_kpi
from stream.kpi import summary
from stream.kpi.segments import (
    CHURN,
    dispatch_segments,
    is_customer,
    response_segments,
)
from stream.kpi.windows import LONGEST
from stream.models import Dispatch, LifecycleEvent
from stream.pipeline.app import CxApp
from stream.pipeline.batches import batch_agent, pass_turn, rounds
from stream.pipeline.codecs import BUCKET_STATE, register_codecs
from stream.pipeline.normalise import reject
from stream.pipeline.transactions import PartitionTransactions, Take, each

EXPIRY_EVERY = 30.0
# Partial records stage 2 applies in one stretch: each holds up to MAX_ENTRIES entries (a
# customer's sum reaches a state per window). Fewer per stretch hold fewer states until the
# take commits, but write more changelog records per answer: 3 instead of 8 measured 52-85 MB
# less peak RSS and 1.5-1.8x the records (docs/performance.md).
ROUND_PARTIALS = 8
_encode = msgspec.msgpack.Encoder().encode
_decode_partial = msgspec.msgpack.Decoder(Partial).decode
_decode_partials = msgspec.msgpack.Decoder(list[Partial]).decode
# Customer deltas are kept while they can count in a window (7 d + grace), with a day's margin.
CUSTOMER_DELTAS_RETENTION = LONGEST.seconds + 2 * 86400
_decode_id_state = msgspec.msgpack.Decoder(IdState).decode
_decode_bucket_state = msgspec.msgpack.Decoder(BucketState).decode
_encode_json = msgspec.json.Encoder().encode


def _table(app: CxApp, name: str, codec: str, decoder: Any, **kwargs: Any) -> CodecTable:
    table = CodecTable(
        app, value_codec=codec, encode=_encode, decode=decoder, name=name,
        beacon=app.tables.beacon, partitions=app.settings.partitions, **kwargs,
    )  # fmt: skip
    return declare_table(app, table)


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
        self.partitioner = app.settings.id_partitioner
        self._owners: dict[str, int] = {}
        self.id_retention = LONGEST.seconds + app.settings.late_grace_seconds + 2 * 86400
        # Told the partition and bucket keys of each stage-2 batch's changes (the read side).
        self.listeners: list[Callable[[int, set[bytes]], None]] = []
        # Not "memory://": Faust tests the store URL's truth value, and yarl finds that one
        # empty, so the table would silently fall back to the app's RocksDB store.
        self.buckets = _table(app, "kpi-buckets", BUCKET_STATE, _decode_bucket_state,
                              store="memory://local")  # fmt: skip
        # Per-customer buckets (SCI) grow with customers: RocksDB, not memory, and a changelog
        # of per-batch deltas (a record per customer would be about one per input event).
        customers = DeltaLogTable(
            app, replay=self._replay_customers, retention=CUSTOMER_DELTAS_RETENTION,
            value_codec="raw", encode=_encode, decode=_decode_bucket_state,
            name="kpi-customers", beacon=app.tables.beacon, partitions=self.partitions,
            options=app.settings.rocksdb_options(),
        )  # fmt: skip
        self.customers = declare_table(app, customers)
        inputs = [self.names.responses, self.names.dispatches, self.names.lifecycle]
        self.transactions = PartitionTransactions(app, app.kafka, [*inputs, self.names.partials])
        app.on_assigned_hook = self.transactions.on_assigned  # type: ignore[attr-defined]
        self.transactions.rejoin = functools.partial(request_rejoin, app)
        app.transactions = self.transactions  # type: ignore[attr-defined]
        self._last_expiry: dict[int, float] = {}
        # The read side's per-customer sums, per partition, with the consumer generation they
        # were built in: rebuilt from the store after a rebalance, fed every change in between.
        self._customer_sums: dict[int, tuple[int, CustomerSums]] = {}
        self._last_sweep: dict[tuple[str, int], float] = {}
        self._stage1("responses", self.names.responses, self.parse_response)
        self._stage1("dispatches", self.names.dispatches, self.parse_dispatch)
        # Lifecycle states never expire: who is active now may depend on an old activation.
        self._stage1("lifecycle", self.names.lifecycle, self.parse_lifecycle, sweep=False)
        batch_agent(app, self.names.partials, "kpi-buckets", self.aggregate)

    @property
    def writes(self) -> dict[str, int]:
        """Write counters of the stage-2 tables: readers cache rows until these move."""
        return {"buckets": self.buckets.writes, "customers": self.customers.writes}

    def homes_of(self, keys: list[bytes]) -> list[int]:
        return id_partitions(keys, self.partitions, self.partitioner).tolist()

    def owner_of(self, segment: str) -> int:
        owner = self._owners.get(segment)
        if owner is None:
            if len(self._owners) > 100_000:  # customers: bounded memo
                self._owners.clear()
            owner = self._owners[segment] = owner_partition(segment, self.partitions)
        return owner

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
        # One changelog record of the batch's id states per take, not one per id. An id's
        # state is logged while its answer may count in a window, plus a margin (the broker
        # then deletes it, as the sweep forgets it here); lifecycle states are kept for ever.
        retention = self.id_retention if sweep else None
        table = StateLogTable(
            self.app, retention=retention, value_codec="raw", encode=_encode,
            decode=_decode_id_state, name=f"ids-{name}", beacon=self.app.tables.beacon,
            partitions=self.partitions, options=self.app.settings.rocksdb_options(),
        )  # fmt: skip
        declare_table(self.app, table)

        async def handle(batches: list[RecordBatch]) -> None:
            for round_ in rounds(batches):
                plans = []
                for batch in round_:
                    plans.append((batch, self._plan(batch, table, parse)))
                    await pass_turn()
                await each(
                    self._commit_plan(batch, plan, source, table, name if sweep else None)
                    for batch, plan in plans
                )

        batch_agent(self.app, source, f"stage1-{name}", handle)

    def _plan(self, batch: RecordBatch, table: StateLogTable, parse: Parser) -> Any:
        """Decide every message of one partition's batch (pure: stream/aggregation/stage1)."""
        app = self.app
        partition = batch.tp.partition
        src = f"{batch.tp.topic}:{partition}"
        mark = inflight_mark(table.get_many(partition, [INFLIGHT])[0], src)
        return plan_batch(
            src, partition, [(r.offset, r.value) for r in batch.records], parse,
            app.settings.time_limits(), functools.partial(table.get_many, partition),
            self.homes_of, self.owner_of, app.settings.followup_max_age, inflight_until=mark,
            shards=self.partitions,
        )  # fmt: skip

    async def _commit_plan(
        self, batch: RecordBatch, plan: Any, source: str, table: StateLogTable, sweep: str | None
    ) -> None:
        """Send everything a plan produces and the ids' new states in one transaction of the
        batch's partition, with its offsets."""
        app = self.app
        partition = batch.tp.partition
        src = f"{batch.tp.topic}:{partition}"
        async with self.transactions.take(batch, table) as take:
            await self._send_plan(take, batch, plan, source)
            if plan.partials:
                # Kept for states written before transactions: a batch at or below an older
                # mark sends one entry per message (stream/aggregation/stage1.py).
                mark = inflight_mark(table.get_many(partition, [INFLIGHT])[0], src)
                inflight = IdState(-1, src, max(mark, plan.last_offset), None)
                table.put_many(partition, {INFLIGHT: inflight})
            table.put_many(partition, plan.states)
            if sweep is not None:
                self._sweep_ids(sweep, table, partition)
        app.metrics.written(table.name, take.changelog_records.get(table.name, 0))
        for outcome, n in plan.outcomes.items():
            app.metrics.count(source, outcome, n)

    async def _send_plan(self, take: Take, batch: RecordBatch, plan: Any, source: str) -> None:
        app = self.app
        producer = take.producer
        metrics = app.metrics
        records = batch.records
        for i, why in plan.rejected:
            take.futures.append(await reject(app, records[i], why, producer))
        for index, key, home in plan.misrouted:
            again = [(key, records[index].value)]
            take.sent += await send_batched(app, source, home, again, producer)
        for dest, partials in plan.partials.items():
            values = [(None, _encode(p)) for p in partials]
            take.sent += await send_batched(app, self.names.partials, dest, values, producer)
            metrics.written(self.names.partials, len(values))
        followups: dict[int, list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
        keys = [f.response_id.encode() for f in plan.followups]
        for key, home, f in zip(keys, self.homes_of(keys), plan.followups, strict=True):
            followups[home].append((key, _encode_json(f)))
        for home, items in followups.items():
            take.sent += await send_batched(app, self.names.followups, home, items, producer)
        metrics.written(self.names.followups, len(plan.followups))
        metrics.written(source, len(plan.misrouted))

    def _sweep_ids(self, name: str, table: StateLogTable, partition: int) -> None:
        """Forget ids whose answer left every window, so id state does not grow for ever.

        A late re-delivery of a forgotten id is `too_old` anyway; a revision with a recent
        event time counts as new, which is right: the old answer is in no window any more.
        """
        now = time.time()
        if now - self._last_sweep.get((name, partition), 0.0) < self.app.settings.id_sweep_interval:
            return
        self._last_sweep[(name, partition)] = now
        horizon = now - LONGEST.seconds - self.app.settings.late_grace_seconds
        gone = [
            k for k, v in table.raw_items(partition) if k != INFLIGHT and _forgettable(v, horizon)
        ]
        table.put_many(partition, dict.fromkeys(gone))

    # -- stage 2 -------------------------------------------------------------------------------
    def by_table(self, keys: Iterable[bytes]) -> list[tuple[CodecTable, list[bytes]]]:
        """`keys` split between the buckets' table and the customers'."""
        customers: list[bytes] = []
        buckets: list[bytes] = []
        for key in keys:
            (customers if key.startswith(CUSTOMER_KEYS) else buckets).append(key)
        return [(self.buckets, buckets), (self.customers, customers)]

    async def aggregate(self, batches: list[RecordBatch]) -> None:
        for round_ in rounds(batches, ROUND_PARTIALS):
            await each(self._aggregate_in_transaction(batch) for batch in round_)
            await pass_turn()

    async def _aggregate_in_transaction(self, batch: RecordBatch) -> None:
        async with self.transactions.take(batch, self.buckets, self.customers) as take:
            await pass_turn()  # one partition's batch at a time on the loop (stage 2 is long)
            changed, customer_changes = self._aggregate_batch(batch)
        # The stores took the batch's states as the take committed, with no await since:
        # the customer sums follow them now (a rebuild in between read the states before).
        self._feed_customer_sums(batch.tp.partition, customer_changes)
        for listener in self.listeners:
            listener(batch.tp.partition, changed)
        for name, count in take.changelog_records.items():
            self.app.metrics.written(name, count)

    def _aggregate_batch(self, batch: RecordBatch) -> tuple[set[bytes], list[CustomerChange]]:
        """Stage the changed states and the customers' deltas of one batch of partials;
        return the changed keys and the changes of the customers' sums."""
        partition = batch.tp.partition
        now = time.time()
        partials = []
        for record in batch.records:
            try:
                partials.append(_decode_partial(record.value))
            except (msgspec.DecodeError, TypeError):
                continue  # only this project writes the topic; nothing else can be there
        plan = KeyPlan(now, self.partitions)
        states = self._load(partition, keys_touched(partials, plan))
        before = self._customer_vectors(states)
        changed = apply_batch(states, partials, plan, self.member_limits)
        customer_changes = _customer_changes(before, states, changed)
        for table, keys in self.by_table(changed):
            table.put_many(partition, {k: states[k] for k in keys})
        for chunk, deltas in enumerate(customer_chunks(partials)):
            key = f"{partition}@{batch.records[0].offset}#{chunk}".encode()
            self.customers.log_deltas(partition, key, _encode(deltas))
        if now - self._last_expiry.get(partition, 0.0) >= EXPIRY_EVERY:
            self._last_expiry[partition] = now
            self._expire(partition, now)
        return changed, customer_changes

    def _replay_customers(self, partition: int, values: list[bytes]) -> None:
        """Apply logged customer deltas (recovery, standbys) as `aggregate` did."""
        now = time.time()
        partials = [p for value in values for p in _decode_partials(value)]
        plan = KeyPlan(now, self.partitions)
        keys = [k for k in keys_touched(partials, plan) if k.startswith(CUSTOMER_KEYS)]
        states = {
            k: v for k, v in zip(keys, self.customers.get_many(partition, keys), strict=True) if v
        }
        before = self._customer_vectors(states)
        changed = apply_batch(states, partials, plan, self.member_limits)
        self._feed_customer_sums(partition, _customer_changes(before, states, changed))
        self.customers.write_store(partition, {k: states[k] for k in changed})

    @staticmethod
    def _customer_vectors(states: dict[bytes, BucketState]) -> dict[bytes, tuple[float, float]]:
        """The customers' [sum, n] among `states`, before a change."""
        return {
            k: (s.vector[0], s.vector[1]) for k, s in states.items() if k.startswith(CUSTOMER_KEYS)
        }

    def _feed_customer_sums(self, partition: int, changes: list[CustomerChange]) -> None:
        built = self._customer_sums.get(partition)
        if built is not None:
            built[1].add(changes)

    def sci_band_counts(self, partition: int, now: float) -> dict[str, list[int]]:
        """Per window: `partition`'s customers per SCI band at `now`.

        The first call after a rebalance reads every customer of the partition once (a scan of
        its store); later ones are array sums over the changes the engine fed in since."""
        generation = self.app.consumer_generation_id
        built = self._customer_sums.get(partition)
        if built is None or built[0] != generation:
            self._customer_sums = {
                p: kept for p, kept in self._customer_sums.items() if kept[0] == generation
            }
            sums = CustomerSums()
            sums.add(
                (*parse_key(key), state.vector[0], state.vector[1])
                for key, state in self.customer_items(partition)
            )
            self._customer_sums[partition] = built = (generation, sums)
        built[1].expire(time.time())
        return built[1].band_counts(now)

    def _load(self, partition: int, keys: set[bytes]) -> dict[bytes, BucketState]:
        """The stored states of `keys`, the batch's own to change: it writes back what it
        changes (copies of what a table holds; RocksDB's are decoded afresh)."""
        states: dict[bytes, BucketState] = {}
        for table, mine in self.by_table(keys):
            for key, state in zip(mine, table.get_many(partition, mine, copy=copy_state),
                                  strict=True):  # fmt: skip
                if state is not None:
                    states[key] = state
        return states

    def _expire(self, partition: int, now: float) -> None:
        """Delete this partition's buckets that have left every window."""
        mine = [k for k, _ in self.buckets.items_in([]) if self._owner_of_key(k) == partition]
        self.buckets.put_many(partition, dict.fromkeys(expired(mine, now)))
        keys = [k for k, _ in self.customers.raw_items(partition) if isinstance(k, bytes)]
        self.customers.put_many(partition, dict.fromkeys(expired(keys, now)))

    def _owner_of_key(self, key: bytes) -> int:
        try:
            return owner_partition(parse_key(key)[0], self.partitions)
        except ValueError:
            return -1

    # -- read side -----------------------------------------------------------------------------
    def owned_partitions(self) -> set[int]:
        return {tp.partition for tp in assigned(self.app) if tp.topic == self.names.partials}

    def customer_items(self, partition: int) -> Iterator[tuple[bytes, BucketState]]:
        for key, state in self.customers.items_in({partition}):
            if key.startswith(CUSTOMER_KEYS):
                yield key, state

    def owned_items(self, customers: bool = False) -> Iterator[tuple[bytes, BucketState]]:
        owned = self.owned_partitions()
        if customers:
            for key, state in self.customers.items_in(owned):
                if key.startswith(CUSTOMER_KEYS):
                    yield key, state
            return
        for key, state in self.buckets.items_in(owned):
            if self._owner_of_key(key) in owned:
                yield key, state


def _customer_changes(
    before: dict[bytes, tuple[float, float]], states: dict[bytes, BucketState], changed: set[bytes]
) -> list[CustomerChange]:
    """(segment, window, bucket, sum change, count change) of the changed customer keys."""
    rows = []
    for key in changed:
        if key.startswith(CUSTOMER_KEYS):
            segment, window, bucket = parse_key(key)
            old_sum, old_n = before.get(key, (0.0, 0.0))
            vector = states[key].vector
            rows.append((segment, window, bucket, vector[0] - old_sum, vector[1] - old_n))
    return rows


def customer_chunks(partials: list[Partial], max_entries: int = MAX_ENTRIES) -> list[list[Partial]]:
    """The customer entries of `partials` (what the customers' delta log keeps), as records
    of at most about `max_entries` entries each."""
    chunks: list[list[Partial]] = [[]]
    size = 0
    for partial in partials:
        entries = [e for e in partial.entries if is_customer(e.segment)]
        for piece in split_partial(Partial(partial.src, entries), max_entries) if entries else []:
            if size and size + len(piece.entries) > max_entries:
                chunks.append([])
                size = 0
            chunks[-1].append(piece)
            size += len(piece.entries)
    return [chunk for chunk in chunks if chunk]


# The key of a stage-1 partition's in-flight mark in its id table: an IdState whose `offset`
# is the last offset whose entries may have been sent summed (the id keys are never empty).
INFLIGHT = b"\x00in-flight"


def inflight_mark(state: IdState | None, src: str) -> int:
    return state.offset if state is not None and state.src == src else -1


def _forgettable(raw: object, horizon: float) -> bool:
    if not isinstance(raw, bytes):
        return False
    try:
        state = _decode_id_state(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False  # Faust's own bookkeeping (e.g. the persisted offset) lives here too
    return state.current is None or state.current.t < horizon
