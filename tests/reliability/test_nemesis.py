"""The nemesis: overlapping faults at seeded random moments under a steady load, then a check.

A dedicated broker serves a group of workers, each reaching it through a TCP relay of its own
(tests/reliability/nemesis.py). A producer task offers about 1,000 messages/s over the three
inputs (responses, dispatches, lifecycle), on a schedule (a chunk every `PERIOD` seconds; after
a stall, such as a broker restart, it catches up). Meanwhile the nemesis runs its plan: kill -9
and restart (state kept or wiped), SIGSTOP past the session timeout then SIGCONT, graceful
leave and join, broker restart, network cut of one worker; faults of different targets
overlap. At the end every fault is undone, the traffic finishes, and the checker asks for the
exact result: the union of the workers' /kpi/all equals the batch computation for every window
and segment (no answer lost, none counted twice), and every KPI series is exported by exactly
one worker. The summary line gives the seed, the faults by kind, the answers sent, lost and
doubled; the faults themselves (target, timings) and any worker crash are printed after it.

Default: 3 workers, 60 s of load, one fault of each kind, seed CX_RELIABILITY_SEED (20240607).
CX_RELIABILITY_LONG=1: 30 min of load, 7 faults of each kind (at least 5 of each must run).
CX_NEMESIS_FAULTS=kill,leave,broker,cut selects kinds (default all five, "stop" included);
CX_NEMESIS_COUNT (faults of each kind), CX_NEMESIS_SECONDS (load), CX_NEMESIS_WORKERS and
CX_NEMESIS_SETTLE (seconds the check may wait for the exact result) override the variant's
figures; CX_NEMESIS_STRICT=1 also fails on a worker crash. A failure replays with the printed
seed (and the same variables).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.reliability.harness import (
    LONG,
    SEED,
    Comparison,
    Feed,
    check_exported_once,
    compare,
    settle,
    summary,
)
from tests.reliability.nemesis import Cluster, Nemesis, make_plan, pace, selected_kinds
from tests.reliability.test_broker_restart import start_or_fail
from tests.support.relay import Relay
from tests.support.traffic import Traffic, make_traffic
from tests.support.worker import Worker

WORKERS = int(os.environ.get("CX_NEMESIS_WORKERS", 3))
SECONDS = float(os.environ.get("CX_NEMESIS_SECONDS", 1800 if LONG else 60))
RATE = 1000.0  # messages/s over the three inputs
PERIOD = 1.0  # seconds between chunk starts
PER_KIND = int(os.environ.get("CX_NEMESIS_COUNT", 7 if LONG else 1))  # planned, of each kind
MIN_PER_KIND = min(PER_KIND, 5 if LONG else 1)  # faults of each kind that must have run
# bound on the wait for the exact result (a long run's workers may have a backlog to catch up)
SETTLE = float(os.environ.get("CX_NEMESIS_SETTLE", 600 if LONG else 120))
GRACE = 60.0  # seconds a fault may still begin after the load
SEGMENT = 60  # seconds of traffic generated relative to one `now`
# A worker that exits on its own is restarted (as compose's `restart: unless-stopped` would)
# and reported; CX_NEMESIS_STRICT=1 also fails the test for it.
STRICT = os.environ.get("CX_NEMESIS_STRICT") == "1"
NOTABLE = re.compile(
    r"WARNING|ERROR|CRITICAL|Crashed|not recognized|woke up too late|has not sent fetch"
)
T = TypeVar("T")


def responses_for(messages: float) -> int:
    """make_traffic's `responses` giving about `messages` messages in all: 2.52 per response
    (revisions, re-deliveries, 1.3 dispatches) plus ~940 fixed (lifecycle, too-old ones)."""
    return max(1000, int((messages - 940) / 2.52))


async def through_restarts(
    check: Callable[..., Awaitable[T]], *args: Any, timeout: float = SETTLE
) -> T:
    """`check(*args, timeout=...)` (harness.settle, or check_exported_once in a thread), tried
    again while a worker cannot answer (restarting after a crash: connection refused, HTTP
    500), within one `timeout` in all."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check(*args, timeout=max(1.0, deadline - time.monotonic()))
        except OSError:  # urllib's URLError and HTTPError
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


def traffic_over(start: datetime, seconds: float, seed: int) -> Traffic:
    """RATE messages/s for `seconds`: one make_traffic per SEGMENT seconds, each relative to
    the moment its part of the feed begins, so that a long run's recent windows (5m, 1h) hold
    the answers of its last minutes, as they would live."""
    traffic = Traffic()
    for k, begin in enumerate(range(0, math.ceil(seconds), SEGMENT)):
        length = min(SEGMENT, seconds - begin)
        part = make_traffic(
            start + timedelta(seconds=begin),
            responses=responses_for(RATE * length),
            seed=seed + 1000 * k,  # ids r-<seed>-<i>: distinct per segment
        )
        for name in vars(traffic):
            value = getattr(traffic, name)
            if isinstance(value, list):
                value.extend(getattr(part, name))
        traffic.too_old += part.too_old
    return traffic


def notable_lines(worker: Worker, limit: int = 10) -> str:
    """The worker's warnings and errors (all its runs), counted by their text."""
    if worker.log_path is None or not worker.log_path.exists():
        return f"{worker.data_dir.name}: (no log)"
    counts = Counter(
        re.sub(r"\d+(\.\d+)?", "N", line.split("] ", 3)[-1])[:150]
        for line in worker.log_path.read_text(errors="replace").splitlines()
        if NOTABLE.search(line)
    )
    shown = "\n".join(f"  {n}x {text}" for text, n in counts.most_common(limit))
    return f"{worker.data_dir.name} ({worker.log_path}): notable lines\n{shown}"


@pytest.fixture
def quiet_clients() -> Iterator[None]:
    """The test's own producer retries through every broker restart: its aiokafka errors
    (thousands of "Unable connect to node") would bury a failure's report."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


@pytest.fixture
def cluster(tmp_path: Path, topic_prefix: str) -> Iterator[Cluster]:
    cluster = Cluster.build(tmp_path, topic_prefix, WORKERS, env={})
    try:
        start_or_fail(cluster.broker)
        yield cluster
    finally:
        cluster.tear_down()
        cluster.broker.stop()


@pytest.mark.kafka
@pytest.mark.timeout(SECONDS + 1500 if LONG else SECONDS + 420)
@pytest.mark.usefixtures("quiet_clients")
async def test_nemesis_overlapping_faults_under_load(cluster: Cluster, topic_prefix: str) -> None:
    started = time.monotonic()
    kinds = selected_kinds()
    rng = random.Random(f"{SEED}-nemesis")
    plan = make_plan(
        rng,
        {kind: PER_KIND for kind in kinds},
        start=min(5.0, SECONDS * 0.1),
        end=SECONDS * (0.9 if LONG else 0.5),
        workers=WORKERS,
    )
    print(f"\nnemesis seed={SEED} kinds={','.join(kinds)} plan: {' '.join(map(str, plan))}")
    traffic = traffic_over(datetime.now(UTC), SECONDS, seed=SEED % 1000 + 3)
    messages = sum(
        len(m)
        for m in (traffic.response_messages, traffic.dispatch_messages, traffic.lifecycle_messages)
    )
    await cluster.start_workers()

    chunks = max(1, round(SECONDS / PERIOD))
    feed = Feed(cluster.broker.address, topic_prefix, traffic, chunks=chunks, pause=PERIOD / 2)
    nemesis = Nemesis(cluster, plan)
    cluster.beat = lambda: feed.wait_sent(feed.sent + 1)
    comparison: Comparison | None = None
    series = 0
    failure: Exception | None = None
    try:
        async with feed:
            load_started = time.monotonic()
            pacer = asyncio.create_task(pace(feed, PERIOD))
            nemesis.start()
            try:
                # every planned fault runs (a slow restart may keep one waiting for its
                # worker); past the load and a grace, those not begun are skipped
                await nemesis.wait(SECONDS + GRACE - (time.monotonic() - load_started))
            finally:
                await nemesis.stop()  # every fault undone, crashed workers restarted
            faults_over = time.monotonic() - load_started
            await feed.finish()
            load_seconds = await pacer
        try:
            comparison = await through_restarts(settle, cluster.workers, traffic)
            series = await through_restarts(
                asyncio.to_thread, check_exported_once, cluster.workers, traffic
            )
        except (AssertionError, OSError) as exc:
            failure = exc
            for _ in range(10):  # the figures of the failure (a worker may be restarting)
                with contextlib.suppress(OSError):
                    comparison = comparison or await asyncio.to_thread(
                        compare, cluster.workers, traffic
                    )
                    break
                await asyncio.sleep(3.0)
            for node in cluster.nodes:
                print(notable_lines(node.worker))
    finally:
        await nemesis.close()  # the supervisor ran through the check
        print(f"faults: {' '.join(map(str, sorted(nemesis.done, key=lambda d: d.start)))}")
        if nemesis.skipped:
            print(f"skipped: {' '.join(map(str, nemesis.skipped))}")
        for crash in cluster.crashes:
            print(f"crash (worker exited on its own, restarted): {crash}")

    by_kind = nemesis.by_kind()
    summary(
        "nemesis",
        seed=SEED,
        workers=WORKERS,
        faults=",".join(f"{k}:{by_kind[k]}" for k in kinds),
        skipped=len(nemesis.skipped),
        overlapping_pairs=nemesis.overlaps(),
        most_at_once=nemesis.most_at_once(),
        crashes=len(cluster.crashes),
        starts_refused=cluster.refused,
        messages=messages,
        rate=round(messages / load_seconds),
        answers_sent=len(traffic.response_messages),
        counted_7d=comparison.responses if comparison else "?",
        lost=comparison.lost if comparison else "?",
        doubled=comparison.doubled if comparison else "?",
        segments_off=comparison.segment_errors if comparison else "?",
        exported_series=series,
        faults_seconds=round(faults_over),
        seconds=round(time.monotonic() - started),
        loadavg=f"{os.getloadavg()[1]:.1f}",  # of the machine, last 5 min: others' load too
    )
    if failure is not None:
        raise failure
    short = {k: by_kind[k] for k in kinds if by_kind[k] < MIN_PER_KIND}
    assert not short, f"faults that ran fewer than {MIN_PER_KIND} times: {short}"
    assert all(node.alive() for node in cluster.nodes)
    if STRICT:
        assert not cluster.crashes, f"workers exited on their own: {cluster.crashes}"


# -- the relay the network cuts use ----------------------------------------------------------
def echo_server() -> tuple[socket.socket, threading.Thread]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def receive(client: socket.socket, timeout: float) -> bytes | None:
    """Bytes received within `timeout` (b"" when closed), or None when nothing came."""
    client.settimeout(timeout)
    try:
        return client.recv(4096)
    except TimeoutError:
        return None


def test_relay_cut_holds_bytes_and_keeps_connections_open() -> None:
    server, _ = echo_server()
    with Relay(target_port=server.getsockname()[1]) as relay:
        early = socket.create_connection(("127.0.0.1", relay.port))
        early.sendall(b"a")
        assert receive(early, 5) == b"a"

        relay.cut()
        early.sendall(b"b")
        late = socket.create_connection(("127.0.0.1", relay.port))  # accepted during the cut
        late.sendall(b"c")
        assert receive(early, 1.0) is None, "no byte may pass a cut"
        assert receive(late, 0.2) is None, "nor on a connection made during the cut"

        relay.heal()  # what waited goes through, on the same connections
        assert receive(early, 5) == b"b"
        assert receive(late, 5) == b"c"

        server.shutdown(socket.SHUT_RDWR)  # wakes the accept() up
        server.close()  # the target is down: a new connection is closed, not left hanging
        refused = socket.create_connection(("127.0.0.1", relay.port))
        assert receive(refused, 5) == b""
        for client in (early, late, refused):
            client.close()
    assert relay.connections == 3
