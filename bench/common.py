"""Helpers shared by the benchmark's phases: preloading a topic, reading a worker's count."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

from aiokafka import AIOKafkaProducer

from stream.settings import KafkaSettings
from tests.support.worker import Worker


def client_kwargs(bootstrap: str) -> dict[str, Any]:
    """aiokafka settings of the environment (SASL/SSL included), for `bootstrap`."""
    return {**KafkaSettings().aiokafka_kwargs(), "bootstrap_servers": bootstrap}


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
