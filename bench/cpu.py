"""CPU a worker process spends: while it drains, and per message at the load users have.

`python -m stream simulate --rate 200` offers about 300 messages/s over all the input
topics (raw IVR/SMS/email answers, canonical web answers, dispatches, lifecycle); the
worker's CPU time (all its threads, from /proc) is divided by the input messages it counted
(`cx_events_total`) over the same seconds.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import fresh_worker
from stream.settings import PROJECT_ROOT, KafkaSettings

EVENTS = re.compile(r"^cx_events_total\{[^}]*\} (\S+)$", re.MULTILINE)
WRITTEN = re.compile(r'^cx_kafka_records_written_total\{topic="([^"]+)"\} (\S+)$', re.MULTILINE)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def input_messages(metrics: str) -> float:
    return sum(float(v) for v in EVENTS.findall(metrics))


def records_written(metrics: str) -> dict[str, float]:
    """Kafka records the worker produced on behalf of its input, by topic or table."""
    return {topic: float(n) for topic, n in WRITTEN.findall(metrics)}


async def steady_load_run(
    kafka: KafkaSettings,
    rate: float,
    seconds: float,
    workdir: Path,
    warmup: float = 10.0,
    worker_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A fresh worker (`worker_env` over its environment) under `simulate --rate rate`: its
    CPU per input message."""
    topic, worker = await fresh_worker(kafka, "benchcpu", workdir, worker_env)
    prefix = topic.removesuffix("responses")
    env = dict(os.environ, CX_TOPIC_PREFIX=prefix, KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers)
    simulator = subprocess.Popen(
        [sys.executable, "-m", "stream", "simulate", "--rate", str(rate),
         "--duration", str(warmup + seconds + 5)],
        env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await asyncio.sleep(warmup)
        assert worker.process is not None
        pid = worker.process.pid
        cpu0, before, began = cpu_seconds(pid), input_messages(worker.metrics()), time.time()
        await asyncio.sleep(seconds)
        cpu1, after, elapsed = cpu_seconds(pid), input_messages(worker.metrics()), time.time()
        elapsed -= began
    finally:
        simulator.wait(timeout=60)
        worker.stop()
    messages = after - before
    return {
        "simulate_rate": rate,
        "seconds": elapsed,
        "messages_per_s": messages / elapsed,
        "cpu_share_of_a_core": (cpu1 - cpu0) / elapsed,
        "cpu_us_per_message": (cpu1 - cpu0) / max(messages, 1) * 1e6,
    }


async def idle_run(
    kafka: KafkaSettings, seconds: float, workdir: Path, warmup: float = 10.0
) -> dict[str, Any]:
    """A fresh worker with no traffic: what its timers, heartbeats, readiness probe and empty
    fetches cost (each message at a low rate also pays its share of this)."""
    _, worker = await fresh_worker(kafka, "benchidle", workdir)
    try:
        await asyncio.sleep(warmup)
        assert worker.process is not None
        pid = worker.process.pid
        cpu0, began = cpu_seconds(pid), time.time()
        await asyncio.sleep(seconds)
        cpu1, elapsed = cpu_seconds(pid), time.time() - began
    finally:
        worker.stop()
    return {"seconds": elapsed, "cpu_share_of_a_core": (cpu1 - cpu0) / elapsed}


def main() -> None:
    """`python -m bench.cpu [--simulate-rate R] [--seconds S]`: the CPU phases alone (a steady
    load, then an idle worker), their JSON on stdout."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--simulate-rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    kafka, workdir = KafkaSettings(), PROJECT_ROOT / "var" / "bench" / "cpu"
    steady = asyncio.run(steady_load_run(kafka, args.simulate_rate, args.seconds, workdir))
    result = {"steady_load": steady, "idle": asyncio.run(idle_run(kafka, args.seconds, workdir))}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
