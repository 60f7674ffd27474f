"""Workers join and leave under load: the partitions move, the KPIs stay exact and each series
keeps exactly one exporter.

One worker runs while a producer task feeds traffic; a second worker joins (a rebalance), and
later leaves, gracefully (SIGTERM) or, in the other variant, with SIGKILL (its partitions move
once its session times out). The joins and leaves happen while traffic flows. After each
rebalance has settled (every input partition assigned to exactly one worker), the feed is held
for a checkpoint: the workers' /kpi/all rows and /metrics series must not overlap and their
union must equal the batch KPIs of what was produced so far. At the end: the whole traffic.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from tests.reliability.harness import (
    LONG,
    SEED,
    Comparison,
    Feed,
    check_exported_once,
    settle,
    summary,
)
from tests.support.traffic import make_traffic
from tests.support.worker import Worker

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(1500 if LONG else 300)]
RESPONSES = 20_000 if LONG else 4_000
CYCLES = 3 if LONG else 1  # join + leave cycles of the second worker


def input_partitions(worker: Worker) -> set[str]:
    """The worker's assigned partitions of its input topics (changelogs left out), once it
    is ready (tables recovered, not rebalancing)."""
    health = worker.health() or {}
    assigned = health.get("assigned", [])
    assert isinstance(assigned, list)
    return {str(tp) for tp in assigned if "changelog" not in str(tp)}


def not_settled(workers: Sequence[Worker], owned: list[set[str]]) -> str:
    """Why the assignment has not settled, for the failure message."""
    lines = []
    for worker, mine in zip(workers, owned, strict=True):
        ready = worker.readiness()
        lines.append(
            f"{worker.data_dir.name}: {len(mine)} input partitions when ready; "
            f"now {ready.get('partitions')} assigned, reasons {ready.get('reasons', ready)}"
        )
        print(f"--- log of {worker.data_dir.name}:\n{worker.log_tail(60)}")
    return "assignment not settled: " + "; ".join(lines)


async def wait_settled(workers: Sequence[Worker], universe: set[str], timeout: float = 120) -> None:
    """Until every input partition is assigned to exactly one of `workers`, each having some."""
    deadline = time.monotonic() + timeout
    while True:
        owned = [await asyncio.to_thread(input_partitions, w) for w in workers]
        union = set().union(*owned)
        disjoint = sum(len(o) for o in owned) == len(union)
        if union == universe and disjoint and all(owned):
            return
        if time.monotonic() > deadline:
            raise AssertionError(await asyncio.to_thread(not_settled, workers, owned))
        await asyncio.sleep(0.5)


async def checkpoint(feed: Feed, workers: Sequence[Worker]) -> tuple[Comparison, int]:
    """Hold the feed, compare the workers' union with the batch, check /metrics, release."""
    await feed.hold()
    try:
        produced = feed.produced()
        comparison = await settle(workers, produced, timeout=120)
        series = await asyncio.to_thread(check_exported_once, workers, produced)
        return comparison, series
    finally:
        feed.release()


@pytest.mark.parametrize("leave", ["graceful", "sigkill"])
async def test_join_and_leave_under_load(
    kafka_bootstrap: str, topic_prefix: str, make_worker: Callable[..., Worker], leave: str
) -> None:
    rng = random.Random(f"{SEED}-{leave}")
    started = time.monotonic()
    traffic = make_traffic(datetime.now(UTC), responses=RESPONSES, seed=SEED % 1000 + 2)
    first = make_worker("first", CX_SESSION_TIMEOUT="6")
    await asyncio.to_thread(first.start, 4)
    universe = await asyncio.to_thread(input_partitions, first)
    chunks = 14 * CYCLES + 10
    feed = Feed(kafka_bootstrap, topic_prefix, traffic, chunks=chunks, pause=0.5, budget=3)
    async with feed:
        peak = 0
        rebalances: list[str] = []
        sent_during_leave: list[int] = []
        checkpoints: list[Comparison] = []
        for cycle in range(CYCLES):
            feed.allow(rng.randint(4, 7))  # traffic flows while the second worker joins
            await feed.wait_sent(feed.sent + 1)
            second = make_worker(f"second{cycle}", CX_SESSION_TIMEOUT="6")
            await asyncio.to_thread(second.start, 1)
            await wait_settled([first, second], universe)
            rebalances.append(f"join@chunk{feed.sent}")
            comparison, series = await checkpoint(feed, [first, second])
            checkpoints.append(comparison)
            peak = max(peak, series)

            feed.allow(rng.randint(4, 7))  # and while it leaves
            await feed.wait_sent(feed.sent + 1)
            before = feed.sent
            if leave == "graceful":
                await asyncio.to_thread(second.stop)
            else:
                second.kill()
            await wait_settled([first], universe)
            sent_during_leave.append(feed.sent - before)
            rebalances.append(f"{leave}@chunk{before}")
            comparison, series = await checkpoint(feed, [first])
            checkpoints.append(comparison)
            peak = max(peak, series)

        await feed.finish()
        final = await settle([first], traffic)
        peak = max(peak, await asyncio.to_thread(check_exported_once, [first], traffic))
    summary(
        f"rebalance[{leave}]",
        seed=SEED,
        rebalances=len(rebalances),
        checkpoints=len(checkpoints) + 1,
        response_messages=len(traffic.response_messages),
        counted_7d=final.responses,
        lost=final.lost + sum(c.lost for c in checkpoints),
        doubled=final.doubled + sum(c.doubled for c in checkpoints),
        duplicate_series=0,
        peak_series=peak,
        seconds=round(time.monotonic() - started),
    )
    print(f"rebalances: {', '.join(rebalances)}; chunks sent per leave: {sent_during_leave}")
    assert all(sent_during_leave), f"chunks sent while the worker left: {sent_during_leave}"
    assert first.process is not None and first.process.poll() is None
