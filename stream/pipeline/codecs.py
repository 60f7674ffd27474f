"""Faust codecs for the project's msgspec state structs (tables and internal topics)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import msgspec
from faust.serializers import codecs

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
        self.unconfirmed: list[asyncio.Future[Any]] = []
        super().__init__(app, key_type=bytes, **kwargs)

    def _serializer_from_type(self, typ: Any) -> Any:
        return "raw" if typ is bytes else self.value_codec

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        future = super().send_changelog(*args, **kwargs)
        self.unconfirmed.append(future)
        return future

    async def confirm_changelog(self) -> None:
        """Wait until the broker has every changelog record written so far.

        Agents call this before a batch's offsets may be committed: Faust's own flush before
        a commit gives up on its send buffer after 0.1 s, so a commit could otherwise get
        ahead of the state it covers, and a crash would then lose that state for good.
        """
        futures, self.unconfirmed = self.unconfirmed, []
        if futures:
            await asyncio.gather(*futures)


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
