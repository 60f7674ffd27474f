"""Helpers shared by the benchmark's phases: preloading a topic, reading a worker's count."""

from __future__ import annotations

import asyncio
import json
import math
import threading
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


class ReadProbe:
    """Times GET /metrics and GET /kpi (the bench's 7 d query) on a worker every `interval`
    seconds in a thread of its own, as a 1 s Prometheus scrape and a dashboard would: during
    the drain, then `after()` for what follows it. The read side's p99 per endpoint and phase."""

    def __init__(self, worker: Worker, interval: float = 1.0) -> None:
        self.worker = worker
        self.interval = interval
        self.phase = "during"
        self.seconds: dict[tuple[str, str], list[float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ReadProbe:
        self._thread.start()
        return self

    def after(self) -> None:
        self.phase = "after"

    def stop(self) -> dict[str, float | None]:
        self._stop.set()
        self._thread.join(timeout=120)
        return {
            f"{endpoint}_{phase}": p99(self.seconds.get((endpoint, phase), []))
            for endpoint in ("metrics", "kpi")
            for phase in ("during", "after")
        }

    def _run(self) -> None:
        paths = {"metrics": "/metrics", "kpi": "/kpi?window=7d"}
        while not self._stop.wait(self.interval):
            for endpoint, path in paths.items():
                began = time.perf_counter()
                try:
                    with urllib.request.urlopen(self.worker.url + path, timeout=60) as reply:
                        reply.read()
                except OSError:
                    continue  # 404 before the first count, or the worker stopping
                phase = self.seconds.setdefault((endpoint, self.phase), [])
                phase.append(time.perf_counter() - began)


def p99(seconds: list[float]) -> float | None:
    """The 99th percentile in milliseconds (nearest rank), None without samples."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)] * 1000
