"""Helpers shared by the benchmark's phases: preloading a topic, reading a worker's count."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from stream.pipeline.topics import ensure_topics
from stream.settings import KafkaSettings, Settings
from tests.support import kafka_io
from tests.support.worker import Worker


def client_kwargs(bootstrap: str) -> dict[str, Any]:
    """aiokafka settings of the environment (SASL/SSL included), for `bootstrap`."""
    return kafka_io.client_kwargs(bootstrap, KafkaSettings())


async def fresh_worker(
    kafka: KafkaSettings, stem: str, workdir: Path, env: dict[str, str] | None = None
) -> tuple[str, Worker]:
    """A started worker on new topics `<stem><uuid>.*`, its own state dir, and `env` over its
    environment: (responses, worker)."""
    prefix = f"{stem}{uuid.uuid4().hex[:8]}."
    settings = Settings(topic_prefix=prefix)
    await ensure_topics(settings, kafka)
    worker = Worker(bootstrap=kafka.bootstrap_servers, prefix=prefix, data_dir=workdir / prefix,
                    app_id=f"{prefix}app",
                    extra_env={"CX_SNAPSHOT_INTERVAL": "3600", **(env or {})})  # fmt: skip
    worker.start(wait_for_partitions=4, timeout=180)
    return settings.topic("responses"), worker


async def preload(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(**client_kwargs(bootstrap), linger_ms=20, max_batch_size=262144)
    await producer.start()
    began = time.perf_counter()
    try:
        futures = [await producer.send(topic, value=v, key=k) for k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - began


def counted(worker: Worker) -> int:
    """Responses in the worker's 7d (all, all) window: every benchmark response lands there."""
    try:
        with urllib.request.urlopen(f"{worker.url}/kpi?window=7d", timeout=60) as reply:
            return int(json.load(reply).get("kpis", {}).get("nps_responses", 0))
    except urllib.error.HTTPError:
        return 0  # 404: nothing counted yet


async def wait_counted(worker: Worker, count: int, poll: float = 0.5) -> None:
    while counted(worker) < count:
        if worker.process is not None and worker.process.poll() is not None:
            raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
        await asyncio.sleep(poll)
