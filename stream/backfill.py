"""A week of simulated history for the demo, produced through the normal topics.

Without history every window shows the same numbers and churn never appears (nobody is active
at a window's start). The backfill gives one run's customers an activation before the longest
window, then offers surveys spread over the last `days` days with past event times, in time
order (lifecycle order per customer is partition order); a simulator with a `degradation`
shows it in the history's last minutes. It stays inside the longest window,
so nothing is dead-lettered as too_old, and it is small enough for one worker to take in
within a few tens of seconds on a small machine.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import orjson

from stream.simulate import CUSTOMERS, Simulator

Message = tuple[str, bytes, bytes]
SURVEYS = 16_000  # about 4,000 answers and 5,000 activations: ~25,000 messages in all
OLDEST = timedelta(days=7) - timedelta(hours=1)  # clear of too_old (7 d + grace)
NEWEST = timedelta(minutes=5)  # the 5m window holds live traffic only
# A busy last hour (half of the surveys): the live traffic soon outweighs an hour of a uniform
# week, so without it the 1h window shows the same numbers as the 5m one; and a 1h window that
# shares much of the 7d one keeps NpsSignificantDrop (1h interval against the 7d NPS) quiet on
# the steady queues, while the degraded one (stream/simulate.py) soon shows its drop.
LAST_HOUR_SHARE = 0.5


def activations(simulator: Simulator, now: datetime) -> Iterator[Message]:
    """Every customer of the run activated 8 to 90 days ago, oldest first."""
    rng = random.Random(simulator.seed)  # not the simulator's: its surveys stay as they were
    ages = sorted((rng.uniform(8, 90) for _ in range(CUSTOMERS)), reverse=True)
    for number, age in enumerate(ages, start=1):
        customer = simulator.customer_id(number)
        record = {
            "event_id": f"a-{simulator.run_id}-{number}",
            "customer_id": customer,
            "type": "activated",
            "occurred_at": (now - timedelta(days=age)).isoformat(),
        }
        yield simulator.names.lifecycle, customer.encode(), orjson.dumps(record)


def history(
    simulator: Simulator, now: datetime, days: float = 7.0, surveys: int = SURVEYS
) -> Iterator[Message]:
    """Activations, then `surveys` surveys at event times spread over the last `days` days
    (a share of them in the last hour), oldest first."""
    yield from activations(simulator, now)
    rng = random.Random(simulator.seed + 1)
    oldest = min(timedelta(days=days), OLDEST).total_seconds()
    hour, newest = timedelta(hours=1).total_seconds(), NEWEST.total_seconds()
    ages = sorted(
        (
            rng.uniform(newest, hour if rng.random() < LAST_HOUR_SHARE else oldest)
            for _ in range(surveys)
        ),
        reverse=True,
    )
    for age in ages:
        yield from simulator.messages(now - timedelta(seconds=age))


async def backfill(
    simulator: Simulator,
    producer_kwargs: dict[str, object],
    now: datetime,
    surveys: int = SURVEYS,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Produce `history` and wait until Kafka has all of it; the number of messages sent."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**producer_kwargs, linger_ms=50, max_batch_size=256 * 1024)
    await producer.start()
    sent = 0
    try:
        for topic, key, value in history(simulator, now, surveys=surveys):
            await producer.send(topic, value=value, key=key)
            sent += 1
            if on_progress is not None and sent % 1000 == 0:
                on_progress(sent)
        await producer.flush()
    finally:
        await producer.stop()
    if on_progress is not None:
        on_progress(sent)
    return sent
