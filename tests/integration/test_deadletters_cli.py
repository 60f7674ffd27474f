"""`python -m stream deadletters` against the real broker: filters, --since, masking, --raw,
80 columns, --json, and no consumer group left behind."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from stream.pipeline.deadletter import dead_letter
from stream.pipeline.topics import ensure_topics
from stream.settings import KafkaSettings, Settings

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]
PHONE, EMAIL = "+33698765432", "jane.doe@example.com"
DAY_MS = 86_400_000


def letter(reason: str, topic: str, offset: int, original: bytes) -> bytes:
    return dead_letter(original=original, key=None, topic=topic, partition=2, offset=offset,
                       timestamp_ms=None, reason=reason, detail="a detail")  # fmt: skip


async def publish(bootstrap: str, prefix: str) -> None:
    await ensure_topics(Settings(topic_prefix=prefix), KafkaSettings(bootstrap_servers=bootstrap))
    now_ms = int(time.time() * 1000)
    sms = prefix + "raw.sms"
    rows = [
        # (value, timestamp): two days old, then recent ones, over several partitions
        (letter("not_json", sms, 1, b"old and gone"), now_ms - 2 * DAY_MS),
        (letter("unparseable_reply", sms, 10, f'{{"from": "{PHONE}", "body": "bof"}}'.encode()),
         now_ms - 60_000),
        (letter("not_json", prefix + "raw.email", 11, f"to {EMAIL}".encode()), now_ms - 50_000),
        (letter("unparseable_reply", sms, 12, b'{"body": "great [bold]"}'), now_ms - 40_000),
    ]  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i, (value, at) in enumerate(rows):
            await producer.send_and_wait(prefix + "deadletter", value, partition=i % 4,
                                         timestamp_ms=at)  # fmt: skip
    finally:
        await producer.stop()


async def groups(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {group[0] for group in await admin.list_consumer_groups()}
    finally:
        await admin.close()


def deadletters(bootstrap: str, prefix: str, *args: str, columns: int = 250) -> str:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CX_TOPIC_PREFIX": prefix,
           "COLUMNS": str(columns)}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "stream", "deadletters", *args],
        capture_output=True, text=True, timeout=90, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_deadletters_prints_recent_records_masked(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await publish(kafka_bootstrap, topic_prefix)
    before = await groups(kafka_bootstrap)

    out = await asyncio.to_thread(deadletters, kafka_bootstrap, topic_prefix)
    assert "3 newest dead letters" in out
    assert "old and gone" not in out, "older than the default --since 24h"
    assert f"{topic_prefix}raw.sms/2/10" in out and f"{topic_prefix}raw.email/2/11" in out
    assert "unparseable_reply" in out and "not_json" in out
    assert '"from": "<phone>"' in out and "to <email>" in out
    assert PHONE not in out and EMAIL not in out
    assert "great [bold]" in out, "the original is shown as text, never as rich markup"

    only = await asyncio.to_thread(
        deadletters, kafka_bootstrap, topic_prefix, "--reason", "unparseable_reply",
        "--topic", "raw.sms", "--limit", "1",
    )  # fmt: skip
    assert "1 newest dead letters" in only
    assert "raw.sms/2/12" in only and "raw.sms/2/10" not in only and "raw.email" not in only

    raw = await asyncio.to_thread(
        deadletters, kafka_bootstrap, topic_prefix, "--since", "7d", "--raw"
    )
    assert "4 newest dead letters" in raw and "old and gone" in raw
    assert PHONE in raw and EMAIL in raw

    # a pipe 80 columns wide: one block per dead letter, every field whole
    narrow = await asyncio.to_thread(deadletters, kafka_bootstrap, topic_prefix, columns=80)
    assert all(len(line) <= 80 for line in narrow.splitlines()) and "…" not in narrow
    assert "┃" not in narrow and narrow.count("  source: ") == 3
    assert f"source: {topic_prefix}raw.sms/2/10" in narrow and "detail: a detail" in narrow
    assert "to <email>" in narrow and PHONE not in narrow and EMAIL not in narrow

    documents = json.loads(
        await asyncio.to_thread(deadletters, kafka_bootstrap, topic_prefix, "--json", columns=40)
    )
    assert [(d["reason"], d["source"]["offset"]) for d in documents] == [
        ("unparseable_reply", 10), ("not_json", 11), ("unparseable_reply", 12),
    ]  # fmt: skip
    assert documents[0]["original"] == '{"from": "<phone>", "body": "bof"}'
    assert PHONE not in json.dumps(documents) and EMAIL not in json.dumps(documents)

    assert await groups(kafka_bootstrap) == before, "a plain consumer: no group, no commit"
