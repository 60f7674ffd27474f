"""Drain benchmark, side by side in one run on the real local broker.

    python -m bench.run --events 1000000 [--output bench/results/latest.json]

1. preloads one topic with N canonical responses (about 200 bytes each, realistic mix);
2. (A) ceiling: raw aiokafka getmany + orjson + a plain dict doing the same windowed counts
   (4 segments x 4 window buckets per response);
3. (B) this project's worker (validation, dedupe, two-stage windows, exporter) on the same topic:
   time from the worker being ready until the tables hold all N responses;
4. reports events/s, the ratio B/A, the worker's peak RSS and changelog records per event.

Not yet here (see issue 6): the Quix Streams peer (C), produce-to-/metrics latency at a fixed
load, and the PNG chart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.pipeline.topics import ensure_topics
from stream.settings import PROJECT_ROOT, KafkaSettings, Settings
from tests.support.worker import Worker

WIDTHS = {"5m": 15, "1h": 300, "24h": 3600, "7d": 43200}


def responses(count: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        rid = f"bench-{seed}-{i}"
        value = {
            "response_id": rid,
            "channel": rng.choice(["ivr", "sms", "email", "web"]),
            "occurred_at": (now - timedelta(seconds=rng.uniform(0, 6 * 86400))).isoformat(),
            "scores": {"nps": rng.randint(0, 10), "csat": rng.randint(1, 5)},
            "queue": rng.choice(["billing", "sales", "support", "retention"]),
            "agent_id": f"agent-{rng.randint(1, 50)}",
            "customer_id": f"cust-{rng.randint(1, 100000)}",
        }
        out.append((rid.encode(), orjson.dumps(value)))
    return out


async def preload(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=262144)
    await producer.start()
    began = time.perf_counter()
    try:
        futures = [await producer.send(topic, value=v, key=k) for k, v in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - began


async def ceiling(bootstrap: str, topic: str, count: int) -> dict[str, Any]:
    """(A): the least work that gives the same windowed counts."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False, max_partition_fetch_bytes=4 * 1048576,
    )  # fmt: skip
    await consumer.start()
    counts: dict[tuple[str, str, str, int], int] = defaultdict(int)
    seen = 0
    began = time.perf_counter()
    try:
        while seen < count:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10000)).values():
                for record in records:
                    r = orjson.loads(record.value)
                    t = datetime.fromisoformat(r["occurred_at"]).timestamp()
                    for channel, queue in ((r["channel"], r["queue"]), (r["channel"], "all"),
                                           ("all", r["queue"]), ("all", "all")):  # fmt: skip
                        for window, width in WIDTHS.items():
                            counts[(channel, queue, window, math.floor(t / width))] += 1
                    seen += 1
    finally:
        await consumer.stop()
    elapsed = time.perf_counter() - began
    return {"events": seen, "seconds": elapsed, "events_per_s": seen / elapsed}


def counted(worker: Worker) -> int:
    try:
        with urllib.request.urlopen(f"{worker.url}/kpi?window=7d", timeout=30) as reply:
            return int(json.load(reply).get("kpis", {}).get("nps_responses", 0))
    except urllib.error.HTTPError:
        return 0  # 404: nothing counted yet


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


async def changelog_records(bootstrap: str, app_id: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith(app_id) and "changelog" in t]
        ends = await consumer.end_offsets(
            [TopicPartition(t, p) for t in topics for p in range(partitions)]
        )
        return sum(ends.values())
    finally:
        await consumer.stop()


async def worker_run(bootstrap: str, prefix: str, count: int, workdir: Path) -> dict[str, Any]:
    """(B): the full pipeline in one worker process."""
    worker = Worker(bootstrap=bootstrap, prefix=prefix, data_dir=workdir / "worker",
                    app_id=f"{prefix}app", extra_env={"CX_SNAPSHOT_INTERVAL": "3600"})  # fmt: skip
    worker.start(wait_for_partitions=4, timeout=180)
    began = time.perf_counter()
    try:
        while counted(worker) < count:
            await asyncio.sleep(0.5)
        elapsed = time.perf_counter() - began
        assert worker.process is not None
        rss = peak_rss_bytes(worker.process.pid)
    finally:
        worker.stop()
    records = await changelog_records(bootstrap, worker.app_id, 4)
    return {"events": count, "seconds": elapsed, "events_per_s": count / elapsed,
            "peak_rss_bytes": rss, "changelog_records_per_event": records / count}  # fmt: skip


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--output", type=Path, default=PROJECT_ROOT / "bench" / "results" / "latest.json"
    )
    args = parser.parse_args(argv)
    kafka = KafkaSettings()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    settings = Settings(topic_prefix=prefix)
    await ensure_topics(settings, kafka)
    messages = responses(args.events)
    topic = settings.topic("responses")
    preload_s = await preload(kafka.bootstrap_servers, topic, messages)
    a = await ceiling(kafka.bootstrap_servers, topic, args.events)
    workdir = PROJECT_ROOT / "var" / "bench" / prefix.rstrip(".")
    b = await worker_run(kafka.bootstrap_servers, prefix, args.events, workdir)
    result = {
        "events": args.events,
        "message_bytes": sum(len(v) for _, v in messages) / len(messages),
        "preload_seconds": preload_s,
        "A_ceiling": a,
        "B_worker": b,
        "ratio_B_over_A": b["events_per_s"] / a["events_per_s"],
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    asyncio.run(main())
