"""Routing: the batch partitioner equals the per-key one (and aiokafka's murmur2)."""

from __future__ import annotations

from aiokafka.partitioner import murmur2
from hypothesis import given
from hypothesis import strategies as st

from stream.aggregation.routing import id_partition, id_partitions, murmur2_many

keys = st.lists(st.binary(min_size=0, max_size=80), max_size=60)


@given(keys)
def test_murmur2_many_equals_aiokafka_murmur2_on_every_key(batch: list[bytes]) -> None:
    assert murmur2_many(batch).tolist() == [murmur2(key) for key in batch]


@given(keys, st.integers(1, 64), st.sampled_from(["murmur2", "crc32"]))
def test_id_partitions_equals_id_partition(
    batch: list[bytes], partitions: int, partitioner: str
) -> None:
    expected = [id_partition(key, partitions, partitioner) for key in batch]
    assert id_partitions(batch, partitions, partitioner).tolist() == expected


def test_known_kafka_partitions() -> None:
    # Values of Kafka's Java client (Utils.murmur2), as its own tests list them.
    assert murmur2_many([b"21", b"foobar", b"a-little-bit-long-string"]).astype(
        "int32"
    ).tolist() == [
        -973932308,
        -790332482,
        -985981536,
    ]
