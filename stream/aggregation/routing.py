"""Where a message goes: an id's stage-1 partition, a segment's stage-2 partition.

An id lives in the partition a producer's default partitioner gives its key, so that every
message of one id is read from one partition, in one order:

    murmur2 (Kafka's Java client, aiokafka):  (murmur2(key) & 0x7FFFFFFF) mod partitions
    crc32 (librdkafka: kcat, confluent-kafka): crc32(key) mod partitions

`id_partitions` computes a whole batch's partitions at once: murmur2 in pure Python costs
about 10 us a key, more than the rest of a message's routing. Keys of one length are hashed
together as columns of little-endian uint32 words, with numpy's wrapping uint32 arithmetic
standing for the Java int's; it equals aiokafka's `murmur2` on every key (the tests compare
them on random keys of every length up to 80 bytes).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from aiokafka.partitioner import murmur2

from stream.kpi.segments import group_of, is_customer, shard_of

SEED = 0x9747B28C
M = np.uint32(0x5BD1E995)
Ints = npt.NDArray[np.int64]


def id_partition(key: bytes, partitions: int, partitioner: str = "murmur2") -> int:
    """The partition a producer's default partitioner gives `key`."""
    if partitioner == "crc32":
        return zlib.crc32(key) % partitions
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def id_partitions(keys: Sequence[bytes], partitions: int, partitioner: str = "murmur2") -> Ints:
    """`id_partition` of every key, as one array."""
    if partitioner == "crc32":
        return np.fromiter((zlib.crc32(k) for k in keys), np.int64, len(keys)) % partitions
    return (murmur2_many(keys) & 0x7FFFFFFF).astype(np.int64) % partitions


def murmur2_many(keys: Sequence[bytes]) -> npt.NDArray[np.uint32]:
    """Kafka's murmur2 of every key (uint32), keys of one length hashed as one array."""
    out = np.empty(len(keys), dtype=np.uint32)
    by_length: dict[int, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        by_length[len(key)].append(index)
    for length, indices in by_length.items():
        data = b"".join([keys[i] for i in indices])
        rows = np.frombuffer(data, dtype=np.uint8).reshape(len(indices), length)
        out[indices] = _murmur2_rows(rows, length)
    return out


def _murmur2_rows(rows: npt.NDArray[np.uint8], length: int) -> npt.NDArray[np.uint32]:
    """murmur2 of each row of `rows` (n keys of `length` bytes)."""
    n = rows.shape[0]
    h = np.full(n, (SEED ^ length) & 0xFFFFFFFF, dtype=np.uint32)
    whole = length // 4 * 4
    words = np.ascontiguousarray(rows[:, :whole]).view("<u4").astype(np.uint32)
    for k in words.reshape(n, whole // 4).T:
        k = k * M
        k ^= k >> np.uint32(24)
        k *= M
        h *= M
        h ^= k
    tail = rows[:, whole:].astype(np.uint32)
    extra = length - whole
    if extra >= 3:
        h ^= tail[:, 2] << np.uint32(16)
    if extra >= 2:
        h ^= tail[:, 1] << np.uint32(8)
    if extra >= 1:
        h ^= tail[:, 0]
        h *= M
    h ^= h >> np.uint32(13)
    h *= M
    h ^= h >> np.uint32(15)
    return h


def owner_partition(segment: str, partitions: int) -> int:
    """The one partition that aggregates a segment (stable across processes and restarts).

    Customers and agents are spread by their own ids: customer c on `shard_of(c)`, agent a in
    the group record of its shard ("a|<shard>|*"), owned by the partition of that number. The
    series that span every customer or agent (SCI bands, the top-K agents) are merged from
    per-partition parts by a final step (stream.aggregation.parts). A queue's segments live in
    their channel's group record, owned by the partition its name hashes to.
    """
    if is_customer(segment):
        return shard_of(segment[2:], partitions)
    if segment.startswith("a|"):
        if segment.endswith("|*"):  # a shard's group record: "a|<shard>|*"
            return int(segment.split("|")[1]) % partitions
        return shard_of(segment[2:], partitions)
    group = group_of(segment)
    owner = (group[0] if group else segment).encode()
    return zlib.crc32(owner) % partitions
