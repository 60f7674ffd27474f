"""Produce-to-/metrics latency at a fixed offered load, against a fresh worker.

Responses (event time = now) are produced at a steady `rate` for `seconds`; meanwhile /metrics
is scraped every `interval` seconds and the counted total
cx_nps_responses{window="7d",channel="all",queue="all"} read (every response has an NPS answer,
so it grows by exactly one per response; 7d so that no response leaves the window however
late it is counted). The k-th response sent is taken as seen by the first scrape whose total
is at least k: responses of different partitions may be counted out of send order, so a single
latency is approximate, its distribution is not biased either way. A scrape's time is when its
reply arrived (what a Prometheus scrape would see then).

The offered rate is never lowered: when the worker cannot keep up, the latency grows during the
run and the report shows it (p50 of the first and the last tenth of the responses).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from bench.common import client_kwargs, fresh_worker
from bench.workload import Mix, response
from stream.settings import KafkaSettings

TOTAL = re.compile(
    r'^cx_nps_responses\{(?=[^}]*window="7d")(?=[^}]*channel="all")(?=[^}]*queue="all")[^}]*\}'
    r"\s+(\S+)",
    re.MULTILINE,
)
TICK = 0.005  # seconds between send bursts: short enough for a steady rate at 5,000/s


def counted_total(metrics: str) -> int:
    match = TOTAL.search(metrics)
    return int(float(match.group(1))) if match else 0  # absent until the first count


@dataclass
class Trace:
    sent: list[float] = field(default_factory=list)  # monotonic time of each send
    scrapes: list[tuple[float, int]] = field(default_factory=list)  # (reply time, total)
    scrape_seconds: list[float] = field(default_factory=list)
    done: bool = False


async def scrape(url: str, interval: float, trace: Trace) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        while not trace.done:
            began = time.monotonic()
            try:
                async with session.get(f"{url}/metrics") as reply:
                    body = await reply.text()
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(interval)
                continue
            now = time.monotonic()
            trace.scrapes.append((now, counted_total(body)))
            trace.scrape_seconds.append(now - began)
            await asyncio.sleep(max(0.0, interval - (now - began)))


async def produce(bootstrap: str, topic: str, rate: float, seconds: float, trace: Trace) -> None:
    """Send `rate * seconds` responses, each burst bringing the count up to the schedule."""
    rng, mix = random.Random(7), Mix()
    total = round(rate * seconds)
    producer = AIOKafkaProducer(**client_kwargs(bootstrap), linger_ms=5)
    await producer.start()
    futures = []
    try:
        start = time.monotonic()
        while len(trace.sent) < total:
            due = min(total, int((time.monotonic() - start) * rate) + 1)
            for i in range(len(trace.sent), due):
                rid = f"lat-{i}"
                value = orjson.dumps(response(rng, rid, datetime.now(UTC), mix))
                trace.sent.append(time.monotonic())
                futures.append(await producer.send(topic, value=value, key=rid.encode()))
            await asyncio.sleep(TICK)
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def latencies(trace: Trace) -> list[float]:
    """Seconds from each send to the first scrape counting it (ordinal match, see above)."""
    out, j = [], 0
    for k, sent in enumerate(trace.sent, start=1):
        while j < len(trace.scrapes) and trace.scrapes[j][1] < k:
            j += 1
        if j == len(trace.scrapes):
            break  # never counted within the wait
        out.append(trace.scrapes[j][0] - sent)
    return out


def percentile(values: list[float], q: float, of: int | None = None) -> float | None:
    """The q-quantile of `of` samples (default all), when `values` are the lowest of them.

    Responses never counted within the wait are the slowest ones: the quantile is None (not
    known, longer than the wait) when it falls among them, rather than a flattering figure.
    """
    ranked = sorted(values)
    index = int(q * (len(ranked) if of is None else of))
    return ranked[index] if index < len(ranked) else None


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def summarise(trace: Trace, rate: float, seconds: float) -> dict[str, Any]:
    lat, sent = latencies(trace), len(trace.sent)
    tenth = max(1, sent // 10)
    span = trace.sent[-1] - trace.sent[0] if sent > 1 else float("nan")
    wall = trace.scrapes[-1][0] - trace.sent[0] if trace.scrapes and sent else float("nan")
    return {
        "offered_rate_per_s": rate,
        "seconds": seconds,
        "sent": sent,
        "achieved_rate_per_s": (sent - 1) / span,
        "counted": len(lat),
        "p50_ms": ms(percentile(lat, 0.50, sent)),
        "p99_ms": ms(percentile(lat, 0.99, sent)),
        "max_ms": ms(max(lat)) if len(lat) == sent and lat else None,
        # Growing from the first to the last tenth: the worker falls behind the offered rate.
        "p50_first_tenth_ms": ms(percentile(lat[:tenth], 0.5, tenth)),
        "p50_last_tenth_ms": ms(percentile(lat[sent - tenth :], 0.5, tenth)),
        "scrapes": len(trace.scrapes),
        "scrape_p50_ms": ms(percentile(trace.scrape_seconds, 0.5)),
        "scrape_p99_ms": ms(percentile(trace.scrape_seconds, 0.99)),
        # The worker serves /metrics on its event loop: the share of the run it spent on them.
        "scrape_busy_fraction": sum(trace.scrape_seconds) / wall,
    }


async def latency_run(
    kafka: KafkaSettings,
    rate: float,
    seconds: float,
    interval: float,
    workdir: Path,
    worker_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    topic, worker = await fresh_worker(kafka, "benchlat", workdir, worker_env)
    trace = Trace()
    try:
        scraper = asyncio.create_task(scrape(worker.url, interval, trace))
        await produce(kafka.bootstrap_servers, topic, rate, seconds, trace)
        # Wait for the backlog, however long it is, up to a bound that stops by itself.
        deadline = time.monotonic() + max(60.0, 10 * seconds)
        while time.monotonic() < deadline and (
            not trace.scrapes or trace.scrapes[-1][1] < len(trace.sent)
        ):
            if worker.process is not None and worker.process.poll() is not None:
                raise RuntimeError(f"the latency worker exited:\n{worker.log_tail()}")
            await asyncio.sleep(interval)
        trace.done = True
        await scraper
    finally:
        worker.stop()
    return summarise(trace, rate, seconds)


def main() -> None:
    """`python -m bench.latency --rate R`: the latency phase alone, its JSON on stdout."""
    import argparse
    import json

    from stream.settings import PROJECT_ROOT

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--rate", type=float, default=5000.0, help="offered events/s")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--scrape-interval", type=float, default=0.1)
    args = parser.parse_args()
    workdir = PROJECT_ROOT / "var" / "bench" / "latency"
    result = asyncio.run(
        latency_run(KafkaSettings(), args.rate, args.seconds, args.scrape_interval, workdir)
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
