"""The fence on the real broker: a new owner of an input partition aborts the old owner's open
transaction, the old owner can neither write nor commit any more, and readers of committed data
see only what the new owner committed (stream/pipeline/transactions.py)."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import IllegalOperation, KafkaConnectionError, KafkaError, KafkaTimeoutError
from faust.types import TP

from stream.faustx import RecordBatch, send_batched
from stream.pipeline.transactions import Fenced, PartitionTransactions, last_record_ends
from stream.settings import KafkaSettings

pytestmark = pytest.mark.kafka


def fake_app(group: str) -> SimpleNamespace:
    """The app surface PartitionTransactions uses."""
    return SimpleNamespace(
        conf=SimpleNamespace(id=group, producer_request_timeout=30.0),
        batch_router=SimpleNamespace(transactional=set()),
    )


async def input_and_output(kafka: KafkaSettings, kind: str) -> tuple[str, str, str]:
    """A unique name, and its input and output topics (one partition each)."""
    name = f"{kind}{uuid.uuid4().hex[:8]}"
    source, out = f"{name}.in", f"{name}.out"
    admin = AIOKafkaAdminClient(**kafka.aiokafka_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 1, 1) for t in (source, out)])
    finally:
        await admin.close()
    return name, source, out


async def one_owner(
    kafka_bootstrap: str, kind: str
) -> tuple[KafkaSettings, PartitionTransactions, RecordBatch, str]:
    """The owner of a new input partition (generation 1), a batch of it, its output topic."""
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    name, source, out = await input_and_output(kafka, kind)
    tp = TP(source, 0)
    owner = PartitionTransactions(fake_app(name), kafka, [source])
    await owner.on_assigned({tp}, 1)
    return kafka, owner, RecordBatch(tp, [SimpleNamespace(offset=0)], generation=1), out


async def write_in_a_new_generation(
    owner: PartitionTransactions, tp: TP, out: str, value: bytes
) -> None:
    """Assign `tp` again (generation 2) and commit one take that writes `value` to `out`."""
    await owner.on_assigned({tp}, 2)
    newer = RecordBatch(tp, [SimpleNamespace(offset=0)], generation=2)
    async with owner.take(newer) as take:
        await take.producer.send_and_wait(out, value, partition=0)


async def settled_end(kafka: KafkaSettings, committed: AIOKafkaConsumer, tp: TopicPartition) -> int:
    """The partition's end once no transaction is open in it: a commit returns before the
    coordinator has written its markers, and until then the last stable offset lags."""
    anything = AIOKafkaConsumer(**kafka.aiokafka_kwargs())
    await anything.start()
    try:
        for _ in range(100):
            stable = (await committed.end_offsets([tp]))[tp]
            if stable == (await anything.end_offsets([tp]))[tp]:
                return stable
            await asyncio.sleep(0.1)
        raise AssertionError(f"{tp} keeps an open transaction")
    finally:
        await anything.stop()


async def committed_values(kafka: KafkaSettings, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        **kafka.aiokafka_kwargs(), isolation_level="read_committed", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = await settled_end(kafka, consumer, tp)
        values: list[bytes] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values += [r.value for r in records]
        return values
    finally:
        await consumer.stop()


async def test_a_new_owner_fences_the_old_one(kafka_bootstrap: str) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    name, source, out = await input_and_output(kafka, "fence")
    tp = TP(source, 0)
    batch = RecordBatch(tp, [SimpleNamespace(offset=0)], generation=1)
    zombie = PartitionTransactions(fake_app(name), kafka, [source])
    owner = PartitionTransactions(fake_app(name), kafka, [source])
    await zombie.on_assigned({tp}, 1)
    try:
        with pytest.raises(Fenced):
            async with zombie.take(batch) as take:
                await take.producer.send_and_wait(out, b"zombie", partition=0)
                # the group moves the partition while the zombie is inside its take
                await owner.on_assigned({tp}, 2)
        newer = RecordBatch(tp, [SimpleNamespace(offset=0)], generation=2)
        async with owner.take(newer) as take:
            await take.producer.send_and_wait(out, b"owner", partition=0)
        with pytest.raises(Fenced):  # and stays fenced: no producer is made again for it
            async with zombie.take(batch):
                pass
    finally:
        await zombie.stop()
        await owner.stop()
    assert await committed_values(kafka, out) == [b"owner"]
    assert zombie.fenced_takes == 2
    # the aborted record and both markers hold no record for a read_committed reader
    ends = await last_record_ends(kafka, {TP(out, 0): 4})
    assert ends == {TP(out, 0): 3}


async def never_answers() -> None:
    await asyncio.Event().wait()


@pytest.mark.parametrize("dies_in", ["body", "commit"])
async def test_a_dead_producer_asks_the_group_for_a_new_generation(
    kafka_bootstrap: str, dies_in: str
) -> None:
    """A producer can die while its worker still owns the partition (a broker restart can kill
    aiokafka's sender): a send fails, or the commit never answers; its takes stop, the group is
    asked once for a new generation, and the next assignment writes again."""
    kafka, owner, batch, out = await one_owner(kafka_bootstrap, "dead")
    owner.abort_timeout = owner.step_timeout = 1.0
    asked: list[int] = []

    async def rejoin() -> None:
        asked.append(len(asked))

    owner.rejoin = rejoin
    try:
        with pytest.raises(KafkaConnectionError if dies_in == "body" else KafkaTimeoutError):
            async with owner.take(batch) as take:
                await take.producer.send_and_wait(out, b"lost", partition=0)
                # what a dead sender does: the abort (and the commit) never answer
                take.producer.abort_transaction = never_answers
                if dies_in == "body":
                    raise KafkaConnectionError("the broker went away")
                take.producer.commit_transaction = never_answers
        for _ in range(2):
            with pytest.raises(Fenced):
                async with owner.take(batch):
                    pass
        await asyncio.sleep(0.1)  # the request runs as a task
        assert asked == [0], "one request per generation"
        await write_in_a_new_generation(owner, batch.tp, out, b"after")
    finally:
        await owner.stop()
    assert await committed_values(kafka, out) == [b"after"]
    assert owner.rejoins_asked == 1


async def test_a_take_waiting_on_a_retired_producer_gives_up(kafka_bootstrap: str) -> None:
    """A new assignment retires the producers: a take stuck on the old one (a commit that never
    answers) fails at once as Fenced, without waiting for its step timeout."""
    kafka, owner, batch, out = await one_owner(kafka_bootstrap, "retired")
    owner.step_timeout = 300.0

    async def stuck_take() -> None:
        async with owner.take(batch) as take:
            await take.producer.send_and_wait(out, b"old", partition=0)
            take.producer.commit_transaction = never_answers

    try:
        taking = asyncio.create_task(stuck_take())
        await asyncio.sleep(1.0)
        assert not taking.done()
        await write_in_a_new_generation(owner, batch.tp, out, b"new")
        with pytest.raises(Fenced, match="assigned again"):
            await asyncio.wait_for(taking, 10.0)
    finally:
        await owner.stop()
    assert await committed_values(kafka, out) == [b"new"]
    assert owner.rejoins_asked == 0


async def test_a_take_that_left_its_transaction_fails_as_a_kafka_error(
    kafka_bootstrap: str,
) -> None:
    """aiokafka raises IllegalOperation (not a KafkaError) when its transaction is gone, after
    an abortable error say: the take fails like any Kafka error (its agent reads it again)
    instead of crashing the agent, and the producer serves the next take."""
    kafka, owner, batch, out = await one_owner(kafka_bootstrap, "left")
    try:
        with pytest.raises(KafkaError, match="not in a transaction") as failed:
            async with owner.take(batch) as take:
                await take.producer.send_and_wait(out, b"lost", partition=0)
                raise IllegalOperation("Can't send messages while not in transaction")
        assert isinstance(failed.value.__cause__, IllegalOperation)
        async with owner.take(batch) as take:
            await take.producer.send_and_wait(out, b"again", partition=0)
    finally:
        await owner.stop()
    assert await committed_values(kafka, out) == [b"again"]
    assert owner.rejoins_asked == 0


async def test_a_take_with_a_refused_batch_commits_nothing(kafka_bootstrap: str) -> None:
    """The broker refuses one produce batch of a take (larger than its topic allows) after
    the take already wrote to that partition: aiokafka would still commit the transaction,
    without that batch, so the take waits for every batch before it commits."""
    kafka, owner, batch, out = await one_owner(kafka_bootstrap, "refused")
    small = f"{out}.small"
    admin = AIOKafkaAdminClient(**kafka.aiokafka_kwargs())
    await admin.start()
    try:
        topic = NewTopic(small, 1, 1, topic_configs={"max.message.bytes": "2048"})
        await admin.create_topics([topic])
    finally:
        await admin.close()
    try:
        with pytest.raises(KafkaError):
            async with owner.take(batch) as take:
                producer = take.producer
                for value in (b"fits", b"x" * 8192):  # the partition joins, then a refusal
                    take.sent += await send_batched(None, small, 0, [(None, value)], producer)
                take.sent += await send_batched(None, out, 0, [(None, b"kept?")], producer)
        await owner.on_assigned({batch.tp}, 2)  # a new producer ends what the old one left open
        assert await committed_values(kafka, out) == []
        assert await committed_values(kafka, small) == []
    finally:
        await owner.stop()
