"""kill -9 the worker again and again while traffic flows; the KPIs still equal the batch.

A producer task feeds responses (with revisions, re-deliveries, mis-keyed and too-old ones),
dispatches and customer lifecycles in slices. Meanwhile the worker is SIGKILLed after seeded
random delays and restarted, alternately on its own state directory (RocksDB kept) and on an
empty one (recovery from the changelogs alone). At the end every window and segment must equal
the independent batch computation: no response lost, none counted twice.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.reliability.harness import LONG, SEED, Feed, settle, summary
from tests.support.traffic import make_traffic
from tests.support.worker import Worker

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(1500 if LONG else 420)]
KILLS = 12 if LONG else 5
RESPONSES = 30_000 if LONG else 6_000


async def restart(worker: Worker, wipe: bool) -> None:
    """Start the worker again (in a thread, so the feed keeps producing meanwhile)."""
    if wipe:
        shutil.rmtree(worker.data_dir, ignore_errors=True)
    await asyncio.to_thread(worker.start, 4, 120.0)


async def test_repeated_sigkill_loses_and_doubles_nothing(
    kafka_bootstrap: str, topic_prefix: str, make_worker: Callable[..., Worker]
) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    traffic = make_traffic(datetime.now(UTC), responses=RESPONSES, seed=SEED % 1000)
    worker = make_worker("crashy", CX_SESSION_TIMEOUT="6")
    await asyncio.to_thread(worker.start, 4)
    feed = Feed(kafka_bootstrap, topic_prefix, traffic, chunks=8 * KILLS, pause=1.5, budget=2)
    async with feed:
        kills: list[str] = []
        during_traffic = []
        for i in range(KILLS):
            feed.allow(rng.randint(3, 5))
            await feed.wait_sent(feed.sent + 1)
            await asyncio.sleep(rng.uniform(0.0, 1.5))  # a random point of the worker's work
            during_traffic.append(feed.flowing)
            worker.kill()
            wipe = i % 2 == 1
            kills.append(f"{feed.sent}/{feed.chunks}{'+wipe' if wipe else ''}")
            await restart(worker, wipe)
        await feed.finish()
        comparison = await settle([worker], traffic)

    produced = len(traffic.response_messages)
    summary(
        "crash_recovery",
        seed=SEED,
        kills=len(kills),
        restarts=len(kills),
        wiped=sum(1 for k in kills if k.endswith("+wipe")),
        response_messages=produced,
        counted_7d=comparison.responses,
        lost=comparison.lost,
        doubled=comparison.doubled,
        segments_checked=len(comparison.expected),
        seconds=round(time.monotonic() - started),
    )
    print(f"kills at chunk (acknowledged/total): {', '.join(kills)}")
    assert all(during_traffic), f"kills after the traffic ended: {during_traffic}"
    assert worker.process is not None and worker.process.poll() is None
