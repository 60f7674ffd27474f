"""The broker goes away under a running worker and comes back: the worker carries on by itself.

A dedicated broker (its own home under tmp_path, free ports; the session broker is left alone)
serves one worker. While a producer task feeds traffic, the broker is stopped (LocalBroker.stop:
SIGTERM, its data directory kept, so the topics and committed offsets survive), left down for a
seeded while, and started again on the same ports. The producer buffers and retries meanwhile
(idempotent, so nothing is written twice). The worker process is never restarted: it must
reconnect on its own, and the final KPIs must equal the batch computation exactly.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stream.localkafka import BrokerError, LocalBroker
from stream.localkafka.broker import KAFKA_VERSION
from stream.settings import PROJECT_ROOT
from tests.reliability.harness import LONG, SEED, Feed, settle, summary
from tests.support.traffic import make_traffic
from tests.support.worker import Worker, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(1500 if LONG else 360)]
OUTAGES = 3 if LONG else 1
RESPONSES = 20_000 if LONG else 4_000


def dedicated_broker(home: Path) -> LocalBroker:
    """A broker of its own on free ports, reusing jars already resolved by another broker."""
    home.mkdir(parents=True, exist_ok=True)
    for cached in (
        PROJECT_ROOT / "var" / "kafka-test" / "lib",
        PROJECT_ROOT / "var" / "kafka" / "lib",
    ):
        if (cached / f".resolved-{KAFKA_VERSION}").exists():
            (home / "lib").symlink_to(cached, target_is_directory=True)
            break
    port = free_port()
    controller = free_port()
    while controller == port:
        controller = free_port()
    return LocalBroker(home=home, port=port, controller_port=controller)


def start_or_fail(broker: LocalBroker) -> None:
    try:
        broker.start()
    except BrokerError as exc:
        pytest.fail(f"the dedicated Kafka broker could not start:\n{exc}")


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    broker = dedicated_broker(tmp_path / "kafka")
    start_or_fail(broker)
    yield broker
    broker.stop()


async def test_worker_reconnects_by_itself_after_a_broker_restart(
    own_broker: LocalBroker, topic_prefix: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    traffic = make_traffic(datetime.now(UTC), responses=RESPONSES, seed=SEED % 1000 + 1)
    worker = Worker(
        bootstrap=own_broker.address,
        prefix=topic_prefix,
        data_dir=tmp_path / "worker",
        app_id=f"{topic_prefix}app",
        extra_env={"CX_SESSION_TIMEOUT": "6"},
    )
    feed = Feed(own_broker.address, topic_prefix, traffic, chunks=12 * OUTAGES + 8, pause=0.8)
    try:
        await asyncio.to_thread(worker.start, 4)
        assert worker.process is not None
        pid = worker.process.pid
        feed.start()  # stopped in `finally`
        outages: list[str] = []
        for _ in range(OUTAGES):
            await feed.wait_sent(feed.sent + rng.randint(3, 6))
            before = feed.sent
            await asyncio.to_thread(own_broker.stop)
            assert (own_broker.home / "data").is_dir(), "the broker's data must survive a stop"
            down = rng.uniform(3.0, 10.0)
            await asyncio.sleep(down)  # the feed keeps producing into its buffer meanwhile
            acknowledged_while_down = feed.sent - before
            await asyncio.to_thread(start_or_fail, own_broker)
            outages.append(
                f"{down:.1f}s@chunk{before}(acked while down: {acknowledged_while_down})"
            )
            assert acknowledged_while_down <= 1, "the broker was meant to be down"
        during_traffic = not feed.done
        await feed.finish()
        comparison = await settle([worker], traffic)
        health = worker.health()
        alive = worker.process.poll() is None
        summary(
            "broker_restart",
            seed=SEED,
            broker_restarts=len(outages),
            worker_restarts=0 if alive and worker.process.pid == pid else "?",
            response_messages=len(traffic.response_messages),
            counted_7d=comparison.responses,
            lost=comparison.lost,
            doubled=comparison.doubled,
            segments_checked=len(comparison.expected),
            healthz=200 if health and health.get("status") == "ok" else health,
            seconds=round(time.monotonic() - started),
        )
        print(f"outages: {', '.join(outages)}")
        assert during_traffic, "the broker should have been restarted while traffic flowed"
        assert alive and worker.process.pid == pid, "the worker process must be the first one"
        assert health is not None and health.get("status") == "ok", health
    finally:
        await feed.stop()
        await asyncio.to_thread(worker.stop)
