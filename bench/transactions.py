"""The cost of fencing per take, side by side: one partition batch's writes sent the way the
engine did before (produce batches, then one wait) against the same writes in one Kafka
transaction with the batch's offsets (begin, send, send_offsets_to_transaction, commit), and
the engine's order since bff7f8e (begin, send, wait for every batch's acknowledgement, offsets,
commit), on the local broker, alternating rounds.

    python -m bench.transactions --takes 300 --records 50 --rounds 3

Each take sends `records` records to an output partition and `records` changelog records to a
second topic (what a stage-1 take of a few hundred answers writes). Reported: milliseconds per
take (wall) and the process' CPU per take, and their ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.settings import KafkaSettings


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def send_take(producer: AIOKafkaProducer, topics: list[str], records: int) -> list[Any]:
    futures = []
    for topic in topics:
        batch = producer.create_batch()
        for i in range(records):
            batch.append(key=b"k%d" % i, value=b"v" * 100, timestamp=None)
        futures.append(await producer.send_batch(batch, topic, partition=0))
    return futures


async def plain(kafka: KafkaSettings, topics: list[str], takes: int, records: int) -> None:
    producer = AIOKafkaProducer(**kafka.aiokafka_kwargs(), acks="all", linger_ms=0)
    await producer.start()
    try:
        for _ in range(takes):
            await asyncio.gather(*await send_take(producer, topics, records))
    finally:
        await producer.stop()


async def transactional(
    kafka: KafkaSettings, topics: list[str], takes: int, records: int, group: str, backoff: int,
    acked_first: bool = False,
) -> None:  # fmt: skip
    producer = AIOKafkaProducer(
        **kafka.aiokafka_kwargs(), acks="all", linger_ms=0, retry_backoff_ms=backoff,
        transactional_id=f"bench-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    await producer.start()
    try:
        for take in range(takes):
            await producer.begin_transaction()
            futures = await send_take(producer, topics, records)
            if acked_first:  # the engine's order: a refused batch must fail the take
                await asyncio.gather(*futures)
            offsets = {TopicPartition(topics[0], 0): take + 1}
            await producer.send_offsets_to_transaction(offsets, group)
            await producer.commit_transaction()
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def timed(run: Any) -> tuple[float, float]:
    wall, used = time.perf_counter(), cpu()
    await run
    return time.perf_counter() - wall, cpu() - used


async def main(takes: int, records: int, rounds: int) -> dict[str, Any]:
    kafka = KafkaSettings()
    name = f"benchtxn{uuid.uuid4().hex[:8]}"
    topics = [f"{name}.out", f"{name}.changelog"]
    admin = AIOKafkaAdminClient(**kafka.aiokafka_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 1, 1) for t in topics])
    finally:
        await admin.close()
    figures: dict[str, list[tuple[float, float]]] = {"plain": []}
    backoffs = (100, 20, 5)  # aiokafka's default retry backoff, then shorter ones
    for _ in range(rounds):
        figures["plain"].append(await timed(plain(kafka, topics, takes, records)))
        for backoff in backoffs:
            run = transactional(kafka, topics, takes, records, name, backoff)
            figures.setdefault(f"transaction_backoff_{backoff}ms", []).append(await timed(run))
        # The engine's take (stream/pipeline/transactions.py): 5 ms backoff, every produce
        # batch acknowledged before the offsets and the commit.
        run = transactional(kafka, topics, takes, records, name, 5, acked_first=True)
        figures.setdefault("transaction_backoff_5ms_acked_first", []).append(await timed(run))
    out: dict[str, Any] = {"takes": takes, "records_per_topic": records, "rounds": rounds}
    for kind, runs in figures.items():
        out[kind] = {
            "ms_per_take": [round(1000 * w / takes, 3) for w, _ in runs],
            "cpu_ms_per_take": [round(1000 * c / takes, 3) for _, c in runs],
        }

    def median(kind: str, index: int) -> float:
        return sorted(run[index] for run in figures[kind])[rounds // 2]

    for kind in figures:
        if kind != "plain":
            out[kind]["ratio_wall_over_plain"] = round(median(kind, 0) / median("plain", 0), 2)
            out[kind]["ratio_cpu_over_plain"] = round(median(kind, 1) / median("plain", 1), 2)
    return out


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--takes", type=int, default=300)
    parser.add_argument("--records", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.takes, args.records, args.rounds)), indent=2))


if __name__ == "__main__":
    cli()
