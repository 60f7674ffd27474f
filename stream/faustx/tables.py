"""Tables read and written in batches, with an explicit partition: `CodecTable`, the delta
log and the id states' log."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import (
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any, TypeVar

import faust
import msgspec
from faust.stores import rocksdb as rocksdb_store
from faust.types import TP

from stream.faustx.producer import Sent, confirmed, send_batched

log = logging.getLogger(__name__)


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
        # per partition: changelog batches applied to the store (recovery, standbys), which
        # write it without a take: readers that cache what they read start again on a change
        self.replayed: Counter[int] = Counter()
        super().__init__(app, key_type=bytes, **kwargs)

    def _serializer_from_type(self, typ: Any) -> Any:
        return "raw" if typ is bytes else self.value_codec

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        events = list(batch)
        self.count_replayed(events)
        super().apply_changelog_batch(events)

    def count_replayed(self, events: Iterable[Any]) -> None:
        self.replayed.update({event.message.partition for event in events})

    def send_changelog(self, partition: int | None, key: Any, value: Any, *a: Any, **k: Any) -> Any:
        raise RuntimeError(f"{self.name}: write with put_many(partition, ...), not table[key]")

    @property
    def on_rocksdb(self) -> bool:
        return isinstance(self.data, rocksdb_store.Store)

    def _db(self, partition: int) -> Any:
        store: Any = self.data
        return store._db_for_partition(partition)

    def get_many(
        self,
        partition: int,
        keys: Sequence[bytes],
        staged: bool = True,
        copy: Callable[[Any], Any] | None = None,
    ) -> list[Any]:
        """The values of `keys` in `partition` (None where absent), staged writes included
        unless `staged` is False (the read side: what is committed only): one RocksDB
        multi-get. `copy`: applied to every value the table holds a reference to (the memory
        store's and its staged ones), so that the caller may change what it gets; a RocksDB
        table's values, staged ones included, are decoded afresh and not copied."""
        if not keys:
            return []
        staged_values = self.staged.get(partition) if staged else None
        if not self.on_rocksdb:
            data = self.data.data
            found = [data.get(key) for key in keys]
            if copy is not None:
                found = [None if value is None else copy(value) for value in found]
        else:
            raws = self._db(partition).get(list(keys))
            found = [None if raw is None else self.decode(raw) for raw in raws]
        if staged_values:
            for i, key in enumerate(keys):
                if key in staged_values:
                    value, raw = staged_values[key]
                    if self.on_rocksdb:  # staged as bytes only (`_stage`)
                        found[i] = None if raw is None else self.decode(raw)
                    else:
                        found[i] = value if copy is None or value is None else copy(value)
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
        # RocksDB takes the bytes: the objects need not live on until the take commits (a
        # stage-2 take's customer states are most of a worker's peak memory).
        keep = not self.on_rocksdb
        for key, raw in encoded.items():
            staged[key] = (values[key] if keep else None, raw)
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
        events = list(batch)
        self.count_replayed(events)
        for event in events:
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
