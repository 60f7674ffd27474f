"""Worker RSS against live window keys: it should grow with keys, not with events.

Two fresh workers, each on its own topics:
  few keys:  M responses, then M more over the same customers and agents (RSS after each);
  many keys: M responses over many more customers and agents.
Live keys are counted from the generated responses with the project's own bucket functions
(bench.workload.live_keys); each response also leaves one id state (the dedupe table, RocksDB),
so id states grow with events by design until the id sweep forgets them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import fresh_worker, preload, wait_counted
from bench.workload import Mix, live_keys, responses
from stream.settings import KafkaSettings

FEW = Mix(customers=1_000, agents=20)
MANY = Mix(customers=100_000, agents=1_000)


def rss_bytes(pid: int, field: str = "VmRSS:") -> int:
    """Resident set size now (VmRSS) or at its peak (VmHWM) from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0


async def rss_points(
    kafka: KafkaSettings, mix: Mix, events: int, rounds: int, workdir: Path
) -> list[dict[str, Any]]:
    """RSS of one fresh worker after draining `events` more responses, `rounds` times."""
    topic, worker = await fresh_worker(kafka, "benchrss", workdir)
    assert worker.process is not None
    points: list[dict[str, Any]] = [
        {"events": 0, "rss_bytes": rss_bytes(worker.process.pid), "live_keys": 0}
    ]
    sent: list[tuple[bytes, bytes]] = []
    try:
        for round_ in range(rounds):
            # A different seed per round: new response ids over the same customers and agents.
            batch = responses(events, seed=100 + round_, mix=mix)
            sent += batch
            await preload(kafka.bootstrap_servers, topic, batch)
            await wait_counted(worker, len(sent))
            keys = live_keys(sent, time.time())
            points.append({"events": len(sent), "rss_bytes": rss_bytes(worker.process.pid),
                           "live_keys": keys["total"], "keys": keys})  # fmt: skip
    finally:
        worker.stop()
    return points


async def memory_run(kafka: KafkaSettings, events: int, workdir: Path) -> dict[str, Any]:
    few = await rss_points(kafka, FEW, events, 2, workdir)
    many = await rss_points(kafka, MANY, events, 1, workdir)
    base, doubled, wide = few[1], few[2], many[1]
    return {
        "events_per_round": events,
        "few_keys": {"customers": FEW.customers, "agents": FEW.agents, "points": few},
        "many_keys": {"customers": MANY.customers, "agents": MANY.agents, "points": many},
        # Same key set, twice the events: what events alone cost.
        "rss_delta_same_keys_2x_events_bytes": doubled["rss_bytes"] - base["rss_bytes"],
        "live_keys_delta_2x_events": doubled["live_keys"] - base["live_keys"],
        # Same events, many more keys: what a live key costs.
        "bytes_per_live_key": (wide["rss_bytes"] - base["rss_bytes"])
        / max(1, wide["live_keys"] - base["live_keys"]),
    }
