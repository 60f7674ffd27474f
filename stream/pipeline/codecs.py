"""Faust codecs for the project's msgspec state structs (tables and internal topics)."""

from __future__ import annotations

from typing import Any

import msgspec
from faust.serializers import codecs

from stream.aggregation.messages import BucketState
from stream.aggregation.parts import Part


class StructCodec(codecs.Codec):
    def __init__(self, type_: type, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(type_)

    def _dumps(self, obj: Any) -> bytes:
        return self._encoder.encode(obj)

    def _loads(self, s: bytes) -> Any:
        return self._decoder.decode(s)


BUCKET_STATE = "cx-bucket-state"
PART = "cx-part"


def register_codecs() -> None:
    """Faust decodes changelog records with these while it recovers a table."""
    codecs.register(BUCKET_STATE, StructCodec(BucketState))
    codecs.register(PART, StructCodec(Part))
