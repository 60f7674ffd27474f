"""Helpers of the reliability tests: traffic fed over time, KPI comparison with the batch
computation across one or several workers, and the one-line figures each test prints.

CX_RELIABILITY_LONG=1 selects the long variants (more kills, traffic and hostile input);
CX_RELIABILITY_SEED fixes the seed of every random choice (printed in each summary line).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer

from stream.exporter import collector
from tests.integration.test_exporter import scrapes_at_one_time
from tests.integration.test_kpi_engine import (
    assert_matches,
    expected_kpis,
    fetch_rows,
    rows_by_segment,
)
from tests.support.batch_kpi import WINDOWS, epoch, in_window, segments, winning_responses
from tests.support.traffic import Traffic
from tests.support.worker import Worker

LONG = os.environ.get("CX_RELIABILITY_LONG") == "1"
SEED = int(os.environ.get("CX_RELIABILITY_SEED", "20240607"))
Message = tuple[bytes | None, bytes]
Key = tuple[str, tuple[str, ...]]
Series = tuple[str, frozenset[tuple[str, str]]]


def summary(test: str, **figures: object) -> str:
    """One quotable line of figures, printed (run pytest with -s to see it) and returned."""
    line = f"RELIABILITY {test}: " + " ".join(f"{k}={v}" for k, v in figures.items())
    print(f"\n{line}")
    return line


# -- traffic over time ------------------------------------------------------------------------
@dataclass
class Feed:
    """Produces a Traffic's messages in `chunks` slices, `pause` seconds apart, on a task.

    The producer is idempotent with a long delivery timeout: while the broker is away it keeps
    its batches and retries them, in order and without duplicates, once the broker is back (so
    lifecycle events, whose order matters, stay exactly as generated).

    With a `budget`, the feed sends that many chunks and parks until `allow` grants more: a test
    paces the traffic by its own events (a kill, a join) rather than by how long a worker takes
    to start, so "while traffic flows" holds however fast or slow the machine is.

    With an `interval`, chunks start that many seconds apart (the time a chunk takes to be
    acknowledged counts in it) instead of `pause` seconds after the previous acknowledgement:
    a fixed rate, however slow the broker (a chunk slower than `interval` is followed at once).
    """

    bootstrap: str
    prefix: str
    traffic: Traffic
    chunks: int
    pause: float
    budget: int | None = None  # chunks the feed may send; None: all of them
    interval: float | None = None  # seconds from one chunk's start to the next one's
    sent: int = 0  # chunks acknowledged by the broker
    _gate: asyncio.Event = field(default_factory=asyncio.Event)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _parked: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def streams(self) -> list[tuple[str, list[Message]]]:
        t = self.traffic
        return [
            ("responses", t.response_messages),
            ("dispatches", t.dispatch_messages),
            ("lifecycle", t.lifecycle_messages),
        ]

    def _bounds(self, length: int, chunk: int) -> slice:
        return slice(length * chunk // self.chunks, length * (chunk + 1) // self.chunks)

    def _may_send(self, chunk: int) -> bool:
        return self._gate.is_set() and (self.budget is None or chunk < self.budget)

    def start(self) -> Feed:
        self._gate.set()
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=300_000,
            retry_backoff_ms=250,
        )
        await producer.start()
        try:
            for chunk in range(self.chunks):
                while not self._may_send(chunk):
                    self._wake.clear()
                    self._parked.set()
                    await self._wake.wait()
                self._parked.clear()
                began = time.monotonic()
                futures = []
                for topic, messages in self.streams():
                    for key, value in messages[self._bounds(len(messages), chunk)]:
                        futures.append(await producer.send(self.prefix + topic, value, key=key))
                await asyncio.gather(*futures)
                self.sent = chunk + 1
                if self.interval is None:
                    await asyncio.sleep(self.pause)
                else:
                    await asyncio.sleep(max(0.0, began + self.interval - time.monotonic()))
        finally:
            self._parked.set()
            await producer.stop()

    async def hold(self) -> None:
        """Stop after the chunk being sent, and return once it is acknowledged."""
        self._gate.clear()
        await self._parked.wait()
        if self._task is not None and self._task.done():
            self._task.result()  # a failed producer fails the test here

    def release(self) -> None:
        self._gate.set()
        self._wake.set()

    def allow(self, chunks: int) -> None:
        """Let `chunks` more chunks go out (beyond those already allowed)."""
        self.budget = min(self.chunks, (self.sent if self.budget is None else self.budget) + chunks)
        self._wake.set()

    @property
    def flowing(self) -> bool:
        """True while the feed is producing (neither parked nor finished)."""
        return not self.done and not self._parked.is_set()

    async def wait_sent(self, chunks: int) -> None:
        while self.sent < chunks and not self.done:
            await asyncio.sleep(0.1)

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    async def __aenter__(self) -> Feed:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Cancel the feed (a failed test must not leave it producing into the next one)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def finish(self) -> None:
        self.budget = None
        self.release()
        assert self._task is not None
        await self._task

    def produced(self) -> Traffic:
        """The part of the traffic the broker has acknowledged so far (in produce order)."""
        t = self.traffic

        def head(items: list[Any]) -> list[Any]:
            return items[: len(items) * self.sent // self.chunks]

        return Traffic(
            responses=head(t.responses),
            response_messages=head(t.response_messages),
            dispatches=head(t.dispatches),
            dispatch_messages=head(t.dispatch_messages),
            lifecycle=head(t.lifecycle),
            lifecycle_messages=head(t.lifecycle_messages),
        )


# -- comparison with the batch computation ----------------------------------------------------
def expected_counts(traffic: Traffic, at: float) -> dict[Key, int]:
    """(window, segment) -> how many responses count there (the `n` slot of /kpi/all)."""
    counts: dict[Key, int] = defaultdict(int)
    for response in winning_responses(traffic.responses).values():
        t = epoch(response["occurred_at"])
        for window in WINDOWS:
            if in_window(t, window, at):
                for segment in segments(response):
                    counts[(window, segment)] += 1
    return counts


def counted(rows: Iterable[dict[str, Any]]) -> dict[Key, int]:
    out: dict[Key, int] = {}
    for row in rows:
        if row["kind"] == "q":
            out[(row["window"], ("q", row["channel"], row["queue"]))] = int(row["vector"][0])
        elif row["kind"] == "a":
            out[(row["window"], ("a", row["agent_id"]))] = int(row["vector"][0])
    return out


@dataclass
class Comparison:
    """The union of the workers' rows against the batch, at one instant."""

    at: float
    actual: dict[Key, dict[str, float]]
    expected: dict[Key, dict[str, float]]
    overlap: set[Key]
    responses: int  # responses counted in the 7d (all, all) segment
    lost: int  # responses of the 7d (all, all) segment missing from the worker(s)
    doubled: int  # responses of that segment counted more than once
    segment_errors: int  # (window, segment) response counts that differ, in any direction

    off: list[str] = field(default_factory=list)  # "(window, segment): counted vs expected"

    def check(self) -> None:
        assert not self.overlap, f"served by more than one worker: {sorted(self.overlap)[:5]}"
        assert (self.lost, self.doubled, self.segment_errors) == (0, 0, 0), (
            f"lost {self.lost}, doubled {self.doubled}, segments off {self.segment_errors}: "
            f"{self.off[:12]}"
        )
        assert_matches(self.actual, self.expected)


def compare(workers: Sequence[Worker], traffic: Traffic) -> Comparison:
    at = time.time()
    actual: dict[Key, dict[str, float]] = {}
    overlap: set[Key] = set()
    n: dict[Key, int] = {}
    for worker in workers:
        rows = fetch_rows(worker, at)
        mine = rows_by_segment(rows)
        overlap |= set(actual) & set(mine)
        actual |= mine
        for key, value in counted(rows).items():
            n[key] = n.get(key, 0) + value
    want = expected_counts(traffic, at)
    total = ("7d", ("q", "all", "all"))
    off = sorted(
        f"{key}: {n.get(key, 0)} vs {want.get(key, 0)}"
        for key in set(want) | set(n)
        if want.get(key, 0) != n.get(key, 0)
    )
    return Comparison(
        at=at,
        actual=actual,
        expected=expected_kpis(traffic, at),
        overlap=overlap,
        responses=n.get(total, 0),
        lost=max(0, want.get(total, 0) - n.get(total, 0)),
        doubled=max(0, n.get(total, 0) - want.get(total, 0)),
        segment_errors=len(off),
        off=off,
    )


async def settle(workers: Sequence[Worker], traffic: Traffic, timeout: float = 240.0) -> Comparison:
    """Poll until the workers' union equals the batch KPIs of `traffic`; the last comparison.

    A bounded wait, not a timed assertion: it returns as soon as the result is right, and only
    a result still wrong after `timeout` fails.
    """
    deadline = time.monotonic() + timeout
    while True:
        comparison = await asyncio.to_thread(compare, workers, traffic)
        try:
            comparison.check()
            return comparison
        except AssertionError:
            if time.monotonic() > deadline:
                for worker in workers:
                    print(f"--- log of {worker.data_dir.name}:\n{worker.log_tail(30)}")
                raise
        await asyncio.sleep(1.0)


def scrape_together(workers: Sequence[Worker]) -> tuple[float, list[dict[Series, float]]]:
    """Every worker's /metrics, from snapshots within one 15 s bucket (the same window edges)."""
    return scrapes_at_one_time(workers)


def check_exported_once(
    workers: Sequence[Worker], traffic: Traffic, top_k: int = 100, timeout: float = 30.0
) -> int:
    """Every KPI series on exactly one worker's /metrics, their union equal to the batch KPIs
    of `traffic` (queues, the global top-K agents and "other", SCI); returns how many KPI
    series the workers export together.

    Polls for up to `timeout` seconds: with several workers the merged series (agents, SCI)
    follow the other workers' parts, which may be a part interval behind a window edge.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return _exported_once(workers, traffic, top_k)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _exported_once(workers: Sequence[Worker], traffic: Traffic, top_k: int) -> int:
    at, scrapes = scrape_together(workers)
    owned = [{s for s in scrape if not s[0].endswith("_total")} for scrape in scrapes]
    seen: set[Series] = set()
    for series in owned:
        shared = seen & series
        assert not shared, f"exported by two workers: {sorted(shared, key=str)[:5]}"
        seen |= series
    merged: dict[Series, float] = {}
    for scrape in scrapes:
        merged |= scrape
    expected = expected_kpis(traffic, at)
    checked = 0
    for (window, segment), kpis in expected.items():
        if segment[0] != "q":
            continue
        labels = frozenset({("window", window), ("channel", segment[1]), ("queue", segment[2])})
        for name, value in kpis.items():
            got = merged.get((f"cx_{name}", labels))
            assert got is not None, f"cx_{name}{{{window},{segment}}} exported by no worker"
            assert abs(got - value) <= 1e-9 * max(1.0, abs(value)), (name, window, segment)
            checked += 1
    assert checked > 0
    check_agents_and_sci(merged, traffic, expected, at, top_k)
    return len(seen)


# gauge name -> the KPI it exports, as the exporter defines them
AGENT_GAUGES = {name: kpi for kpi, (name, _) in collector.AGENT_GAUGES.items()}


def check_agents_and_sci(
    merged: dict[Series, float], traffic: Traffic, expected: dict[Key, Any], at: float, top_k: int
) -> None:
    """The exported agents are the true top K by responses (ties by id), each exact, and
    "other" holds exactly the rest; the SCI band counts and secure ratio are exact."""
    winners = [r for r in winning_responses(traffic.responses).values() if r.get("agent_id")]
    for window in WINDOWS:
        n = Counter(
            r["agent_id"] for r in winners if in_window(epoch(r["occurred_at"]), window, at)
        )
        ranked = sorted(n, key=lambda agent: (-n[agent], agent))
        top, rest = ranked[:top_k], ranked[top_k:]
        exported = {
            dict(labels)["agent_id"]
            for name, labels in merged
            if name in AGENT_GAUGES and dict(labels)["window"] == window
        }
        # an agent without NPS or CSAT answers (CES or thumbs only) has none of these gauges
        gauged = {
            a for a in top if any(k in expected[(window, ("a", a))] for k in AGENT_GAUGES.values())
        }
        assert exported == gauged | ({"other"} if rest else set()), (window, len(exported))
        for agent in top:
            kpis = expected[(window, ("a", agent))]
            labels = frozenset({("window", window), ("agent_id", agent)})
            for name, kpi in AGENT_GAUGES.items():
                if kpi in kpis:
                    got = merged[(name, labels)]
                    assert abs(got - kpis[kpi]) <= 1e-9 * max(1.0, abs(kpis[kpi])), (agent, kpi)
        if rest:
            labels = frozenset({("window", window), ("agent_id", "other")})
            answers = sum(expected[(window, ("a", a))].get("nps_responses", 0) for a in rest)
            assert merged.get(("cx_agent_nps_responses", labels), 0) == answers, (window, "other")
    for (window, segment), kpis in expected.items():
        if segment != ("sci",):
            continue
        for band in ("secure", "neutral", "at_risk"):
            labels = frozenset({("window", window), ("band", band)})
            assert merged[("cx_sci_customers", labels)] == kpis[f"sci_customers_{band}"]
        ratio = merged[("cx_sci_secure_ratio", frozenset({("window", window)}))]
        assert abs(ratio - kpis["sci_secure_ratio"]) <= 1e-9, (window, "sci")
