"""Faust codecs for the project's msgspec state structs (tables and internal topics)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import faust
import msgspec
from faust.serializers import codecs
from faust.types import TP

from stream.aggregation.messages import BucketState, IdState, Partial


class StructCodec(codecs.Codec):
    def __init__(self, type_: type, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(type_)

    def _dumps(self, obj: Any) -> bytes:
        return self._encoder.encode(obj)

    def _loads(self, s: bytes) -> Any:
        return self._decoder.decode(s)


ID_STATE = "cx-id-state"
BUCKET_STATE = "cx-bucket-state"
PARTIAL = "cx-partial"


DECODERS: dict[str, Any] = {
    ID_STATE: msgspec.msgpack.Decoder(IdState).decode,
    BUCKET_STATE: msgspec.msgpack.Decoder(BucketState).decode,
}


def register_codecs() -> None:
    codecs.register(ID_STATE, StructCodec(IdState))
    codecs.register(BUCKET_STATE, StructCodec(BucketState))
    codecs.register(PARTIAL, StructCodec(Partial))


class CodecTable(faust.Table):
    """A table with bytes keys whose values use one of the codecs above.

    Faust derives a table's serializers from its key/value types when it builds the table and
    its changelog topic, so setting `value_serializer` afterwards would leave recovery decoding
    the changelog as JSON. The codec is fixed here, before Faust reads it.
    """

    def __init__(self, app: faust.App, *, value_codec: str, **kwargs: Any) -> None:
        self.value_codec = value_codec
        self.pending: list[tuple[int, bytes, Any]] = []
        super().__init__(app, key_type=bytes, **kwargs)

    def get_in(self, partition: int, key: bytes) -> Any:
        """The value of `key` in `partition`'s store, or None: the read path of the hot loops.

        Faust's `table.get` finds the partition from the current event and decodes through its
        serializer registry: many times the cost of one RocksDB get and one msgspec decode.
        """
        store: Any = self.data
        if not self.on_rocksdb:
            return store.data.get(key)  # memory store: values are kept as objects
        raw = store._db_for_partition(partition).get(key)
        return None if raw is None else DECODERS[self.value_codec](raw)

    @property
    def on_rocksdb(self) -> bool:
        return hasattr(self.data, "_dbs")  # RocksDB: one database per partition

    def raw_items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Undecoded (key, value) pairs of `partition`'s RocksDB database, if it has one.

        Faust's own bookkeeping (e.g. the persisted offset) is among them.
        """
        db = getattr(self.data, "_dbs", {}).get(partition)
        return iter(()) if db is None else iter(db.items())

    def _serializer_from_type(self, typ: Any) -> Any:
        return "raw" if typ is bytes else self.value_codec

    def send_changelog(
        self, partition: int | None, key: Any, value: Any, *args: Any, **kwargs: Any
    ) -> Any:
        """Queue the record; `confirm_changelog` sends a batch's records together.

        Faust would push each record through its send buffer, one awaited send at a time,
        which caps a worker at a few thousand table writes per second.
        """
        assert partition is not None  # Faust passes the current event's partition
        self.pending.append((partition, key, value))
        return SimpleNamespace(message=SimpleNamespace(partition=partition))

    async def confirm_changelog(self) -> None:
        """Send the queued changelog records and wait until the broker has all of them.

        Agents call this before a batch's offsets may be committed, so a commit never gets
        ahead of the state it covers (Faust's own pre-commit flush gives up after 0.1 s).
        """
        pending, self.pending = self.pending, []
        if not pending:
            return
        topic = self.changelog_topic.get_topic_name()
        codec = codecs.get_codec(self.value_codec)
        producer = self.app.producer
        futures = [
            await producer.send(
                topic, key, None if value is None else codec.dumps(value), partition, None, None
            )
            for partition, key, value in pending
        ]
        for metadata in await asyncio.gather(*futures):
            # as Faust's own changelog callback: the local store holds state up to here
            self.data.set_persisted_offset(TP(topic, metadata.partition), metadata.offset)


def codec_table(
    app: faust.App, name: str, codec: str, partitions: int, **kwargs: Any
) -> CodecTable:
    """Declare a CodecTable on `app` the way `app.Table` would."""
    table = CodecTable(
        app, value_codec=codec, name=name, beacon=app.tables.beacon, partitions=partitions,
        **kwargs,
    )  # fmt: skip
    app.tables.add(table)
    return table
