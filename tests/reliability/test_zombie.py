"""A worker frozen longer than the group's session timeout wakes as a zombie (issue 22).

Two workers share the input partitions (default session timeout, CX_SESSION_TIMEOUT 10 s).
Traffic comes in rounds (4,000 responses each, aimed at 800 responses/s); 2 to 4 s into each
round's traffic, while that worker is in the middle of its takes, one worker is frozen with
SIGSTOP for 25 s (the two take turns), then thawed with SIGCONT. While it is frozen its session
expires and the other worker takes its partitions over from their committed offsets; once
thawed it still finishes the take it was in (partials, changelog records) before it learns it
left the group. The same offsets are then handled twice, by two owners, and the KPIs must still
be exact: the union of both workers equal to the batch computation of the whole traffic, every
/metrics series on exactly one worker.

The feed paces its chunks by the clock (Feed.interval); on a loaded 2-core machine it reached
650-800 responses/s per round (printed as `rate`; the responses' revisions, re-deliveries,
dispatches and lifecycle events travel with them).

CX_ZOMBIE_RUNS=N runs the scenario N times in a row (fresh topics and workers each time), for
figures; CX_RELIABILITY_LONG=1 runs more rounds; CX_RELIABILITY_SEED fixes the seed.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from tests.reliability.harness import (
    LONG,
    SEED,
    Comparison,
    Feed,
    check_exported_once,
    compare,
    summary,
)
from tests.reliability.test_rebalance import input_partitions, wait_settled
from tests.support.traffic import Traffic, make_traffic
from tests.support.worker import Worker

RUNS = int(os.environ.get("CX_ZOMBIE_RUNS", "1"))
ROUNDS = 5 if LONG else 3
ROUND_RESPONSES = 4_000
RATE = 800.0  # responses per second the feed aims at
CHUNK_RESPONSES = 100  # responses per chunk of the feed: a chunk every 0.125 s
FROZEN = 25.0  # seconds a worker stays stopped: 2.5 default session timeouts
ROUND_CHECK = 30.0  # seconds a round's traffic may take to be counted before its figures

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(1800 if LONG else 900)]

# log lines worth quoting in the report: group membership and fencing, errors
NOTABLE = re.compile(
    r"ERROR|CRITICAL|Traceback|CommitFailed|IllegalGeneration|UnknownMemberId|RebalanceInProgress"
    r"|Fenced|heartbeat|session|left the group|rejoin",
    re.IGNORECASE,
)


def notable_lines(worker: Worker, limit: int = 8) -> str:
    """The worker's notable log lines, counted by their text without the timestamp."""
    if worker.log_path is None or not worker.log_path.exists():
        return "(no log)"
    lines = [
        line for line in worker.log_path.read_text(errors="replace").splitlines()
        if NOTABLE.search(line)
    ]  # fmt: skip
    counts = Counter(re.sub(r"^\[[^]]*\] ", "", line)[:160] for line in lines)
    shown = "\n".join(f"  {n}x {text}" for text, n in counts.most_common(limit))
    return f"{worker.data_dir.name} ({worker.log_path}): {len(lines)} notable lines\n{shown}"


async def sent_by(feed: Feed, chunks: int) -> float:
    """When the broker has acknowledged the feed's first `chunks` chunks (monotonic time)."""
    await feed.wait_sent(chunks)
    return time.monotonic()


async def counted_after(
    workers: Sequence[Worker], traffic: Traffic, timeout: float
) -> tuple[Comparison | None, str | None]:
    """Poll the workers' union against `traffic` until right or `timeout`: the last comparison
    that could be made (None if none) and, unless right, why it is wrong (a worker that cannot
    serve /kpi/all, an HTTP 500 say, counts as wrong and is retried like a wrong count)."""
    deadline = time.monotonic() + timeout
    last: Comparison | None = None
    while True:
        try:
            last = await asyncio.to_thread(compare, workers, traffic)
            last.check()
            return last, None
        except AssertionError as error:
            why = str(error)
        except OSError as error:  # urllib's HTTPError and URLError
            names = {w.url: w.data_dir.name for w in workers}
            url = str(getattr(error, "url", "") or getattr(error, "filename", ""))
            who = next((n for u, n in names.items() if url.startswith(u)), "a worker")
            why = f"{who} could not serve /kpi/all: {error}"
        if time.monotonic() > deadline:
            return last, why
        await asyncio.sleep(1.0)


@pytest.mark.parametrize("run", range(RUNS))
async def test_frozen_worker_wakes_as_zombie(
    kafka_bootstrap: str, topic_prefix: str, make_worker: Callable[..., Worker], run: int
) -> None:
    rng = random.Random(f"{SEED}-zombie-{run}")
    started = time.monotonic()
    traffic = make_traffic(
        datetime.now(UTC), responses=ROUNDS * ROUND_RESPONSES, seed=SEED % 1000 + 22 + run
    )
    per_round = ROUND_RESPONSES // CHUNK_RESPONSES
    first = make_worker("first")
    await asyncio.to_thread(first.start, 4)
    universe = await asyncio.to_thread(input_partitions, first)
    second = make_worker("second")
    await asyncio.to_thread(second.start, 1)
    workers = [first, second]
    await wait_settled(workers, universe)

    feed = Feed(
        kafka_bootstrap,
        topic_prefix,
        traffic,
        chunks=ROUNDS * per_round,
        pause=0.0,
        budget=0,
        interval=CHUNK_RESPONSES / RATE,
    )
    pauses: list[str] = []
    rates: list[float] = []
    try:
        async with feed:
            for round_ in range(ROUNDS):
                victim = workers[round_ % 2]
                target = (round_ + 1) * per_round
                began = time.monotonic()
                feed.allow(per_round)
                sending = asyncio.create_task(sent_by(feed, target))
                await asyncio.sleep(rng.uniform(2.0, 4.0))
                at_chunk, into = feed.sent - round_ * per_round, time.monotonic() - began
                stopped = datetime.now().strftime("%H:%M:%S")
                victim.pause()
                try:
                    await asyncio.sleep(FROZEN)
                finally:
                    victim.resume()
                clock = f"{stopped}-{datetime.now().strftime('%H:%M:%S')}"
                rates.append(ROUND_RESPONSES / (await sending - began))
                pauses.append(f"{victim.data_dir.name}@{into:.1f}s/chunk{at_chunk}[{clock}]")
                await wait_settled(workers, universe, timeout=180)
                so_far, why = await counted_after(workers, feed.produced(), ROUND_CHECK)
                figures = (
                    "n/a"
                    if so_far is None
                    else f"lost {so_far.lost}, doubled {so_far.doubled}, "
                    f"segments off {so_far.segment_errors} {so_far.off[:3]}"
                )
                print(
                    f"\nround {round_ + 1}: froze {pauses[-1]} of {per_round} chunks for "
                    f"{FROZEN:.0f}s; {'right' if why is None else 'WRONG'}: {figures}"
                    + ("" if why is None or so_far is not None else f" ({why[:300]})")
                )
            await feed.finish()
    finally:
        for worker in workers:
            worker.resume()  # never leave a stopped process behind a failed test

    final, failure = await counted_after(workers, traffic, timeout=240)
    series = 0
    if failure is None and final is not None:
        series = await asyncio.to_thread(check_exported_once, workers, traffic)
    summary(
        "zombie",
        seed=SEED,
        run=run,
        pauses=len(pauses),
        responses=ROUNDS * ROUND_RESPONSES,
        response_messages=len(traffic.response_messages),
        rate=f"{min(rates):.0f}-{max(rates):.0f}/s",
        counted_7d="?" if final is None else final.responses,
        lost="?" if final is None else final.lost,
        doubled="?" if final is None else final.doubled,
        segments_off="?" if final is None else final.segment_errors,
        series=series,
        seconds=round(time.monotonic() - started),
    )
    print(f"froze: {', '.join(pauses)}")
    for worker in workers:
        print(notable_lines(worker))
    if failure is not None:
        if final is not None:
            print(f"segments off ({final.segment_errors}), counted vs expected:")
            print("\n".join(f"  {line}" for line in final.off))
        for worker in workers:
            print(f"--- log of {worker.data_dir.name}:\n{worker.log_tail(30)}")
        raise AssertionError(f"after {FROZEN:.0f}s freezes, not exact: {failure}")
    assert all(w.process is not None and w.process.poll() is None for w in workers)
