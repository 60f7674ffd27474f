"""Benchmark in one run on the real local broker: drain throughput, latency, memory.

    python -m bench.run [--events 1000000] [--output bench/results/latest.json]
                        [--chart docs/bench.png] [--latency-rate 5000 --latency-seconds 30]
                        [--peer-events N] [--pathway-events N] [--no-pathway]

1. preloads one topic with N canonical responses (about 200 bytes each, realistic mix);
2. (A) ceiling: raw aiokafka getmany + orjson + a plain dict doing the same windowed counts
   (4 segments x 4 window buckets per response);
3. (B) this project's worker (validation, dedupe, two-stage windows, exporter) on the same topic:
   time from the worker being ready until the tables hold all N responses (B_worker, also
   summed up as B_1_worker), with /metrics and /kpi timed every second during the drain and
   for 5 s after it (read_side_p99_ms); then (B_2_workers) 2 workers in one consumer group
   on topics of their own: both started and their assignment settled
   (tests/support/scale.py), then the same N responses produced, timed from the start of
   that produce until the tables (the worker owning the (all, all) segment) hold all N;
4. (F) the Faust floor: a bare Faust agent batching the same topic and doing nothing else,
   the most any faust-streaming pipeline drains in one process (bench/faust_floor.py);
5. (C) the peer: Quix Streams (bench/quix_peer.py, its own venv) doing the same windowed counts
   on the same topic in its own consumer group; its counts must equal A's;
   (D) Kafka Streams 4.1 (bench/kstreams/, Java, built with Maven) doing the same, once with 1
   and once with 2 stream threads; the better one is D; its counts must equal A's too;
   (E) Pathway (bench/pathway_peer.py, BSL: a benchmark peer only, in its own venv
   var/bench-venv-pathway) doing the same with 1 and with 2 engine threads (PATHWAY_THREADS),
   the better one is E, on the first `--pathway-events` responses like C; its counts must
   equal A's; `--no-pathway` skips it (E_pathway and ratio_B_over_E are then null);
6. produce-to-/metrics latency p50/p99 of a fresh worker at a fixed offered load (bench/latency.py);
7. worker RSS against live window keys (bench/memory.py);
8. writes the JSON result and a PNG chart next to it (and to --chart when given).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.chart import draw
from bench.common import ReadProbe, client_kwargs, counted, preload, wait_counted
from bench.cpu import cpu_seconds, records_written, steady_load_run
from bench.faust_floor import floor_run
from bench.kstreams_peer import run_kstreams
from bench.latency import latency_run
from bench.memory import memory_run, rss_bytes
from bench.peer import Counts, Drain, compare, run_pathway, run_peer
from bench.workload import responses
from stream.kpi.windows import LONGEST, WINDOWS
from stream.pipeline.topics import ensure_topics
from stream.settings import PROJECT_ROOT, KafkaSettings, Settings
from tests.support.scale import wait_settled
from tests.support.worker import Worker

WIDTHS = {w.name: w.width for w in WINDOWS}
RESULTS = PROJECT_ROOT / "bench" / "results"
READ_AFTER_SECONDS = 5.0  # the read side probed on after the drain (a settled state)


async def ceiling(bootstrap: str, topic: str, count: int) -> tuple[dict[str, Any], Counts]:
    """(A): the least work that gives the same windowed counts."""
    consumer = AIOKafkaConsumer(
        topic, **client_kwargs(bootstrap), group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False, max_partition_fetch_bytes=4 * 1048576,
    )  # fmt: skip
    await consumer.start()
    counts: Counts = defaultdict(int)
    seen = 0
    began = time.perf_counter()
    try:
        while seen < count:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10000)).values():
                for record in records:
                    r = orjson.loads(record.value)
                    t = datetime.fromisoformat(r["occurred_at"]).timestamp()
                    for channel, queue in ((r["channel"], r["queue"]), (r["channel"], "all"),
                                           ("all", r["queue"]), ("all", "all")):  # fmt: skip
                        for window, width in WIDTHS.items():
                            counts[(channel, queue, window, math.floor(t / width))] += 1
                    seen += 1
    finally:
        await consumer.stop()
    elapsed = time.perf_counter() - began
    return {"events": seen, "seconds": elapsed, "events_per_s": seen / elapsed}, dict(counts)


async def changelog_records(bootstrap: str, app_id: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(**client_kwargs(bootstrap))
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith(app_id) and "changelog" in t]
        ends = await consumer.end_offsets(
            [TopicPartition(t, p) for t in topics for p in range(partitions)]
        )
        return sum(ends.values())
    finally:
        await consumer.stop()


async def worker_run(
    bootstrap: str, prefix: str, count: int, workdir: Path, cwd: Path = PROJECT_ROOT
) -> dict[str, Any]:
    """(B): the full pipeline in one worker process (of the checkout at `cwd`)."""
    worker = Worker(bootstrap=bootstrap, prefix=prefix, data_dir=workdir / "worker",
                    app_id=f"{prefix}app", extra_env={"CX_SNAPSHOT_INTERVAL": "3600"},
                    cwd=cwd)  # fmt: skip
    worker.start(wait_for_partitions=4, timeout=180)
    assert worker.process is not None
    cpu_before = cpu_seconds(worker.process.pid)
    probe = ReadProbe(worker).start()
    began = time.perf_counter()
    try:
        await wait_counted(worker, count)
        elapsed = time.perf_counter() - began
        cpu = cpu_seconds(worker.process.pid) - cpu_before
        peak = rss_bytes(worker.process.pid, "VmHWM:")
        probe.after()
        written = records_written(worker.metrics())
        # One /kpi request once drained: what a scrape of this state costs (see latency).
        asked = time.perf_counter()
        final = counted(worker)
        kpi_seconds = time.perf_counter() - asked
        await asyncio.sleep(READ_AFTER_SECONDS)
    finally:
        read_side = probe.stop()
        worker.stop()
    records = await changelog_records(bootstrap, worker.app_id, 4)
    by_topic = {topic: n / count for topic, n in sorted(written.items())}
    aggregates = ("kpi-buckets", "kpi-customers", f"{prefix}internal.kpi-partials")
    internal = [t for t in by_topic if t.startswith(("ids-", "kpi-")) or t in aggregates]
    return {"events": final, "seconds": elapsed, "events_per_s": count / elapsed,
            "cpu_seconds": cpu, "cpu_us_per_message_drain": cpu / count * 1e6,
            "peak_rss_bytes": peak, "changelog_records_per_event": records / count,
            "records_per_event_by_topic": by_topic,
            "records_per_event": sum(by_topic[t] for t in internal),
            "aggregate_records_per_event": sum(by_topic.get(t, 0.0) for t in aggregates),
            "kpi_request_seconds_after_drain": kpi_seconds,
            "read_side_p99_ms": read_side}  # fmt: skip


async def workers_run(
    kafka: KafkaSettings, stem: str, messages: list[tuple[bytes, bytes]], workdir: Path,
    workers: int = 2,
) -> dict[str, Any]:  # fmt: skip
    """(B) with `workers` workers in one consumer group, on topics of their own: started and
    settled first (no rebalance during the drain), then the N responses produced and drained."""
    prefix = f"{stem.rstrip('.')}w{workers}."
    settings = Settings(topic_prefix=prefix)
    await ensure_topics(settings, kafka)
    group = [Worker(bootstrap=kafka.bootstrap_servers, prefix=prefix, app_id=f"{prefix}app",
                    data_dir=workdir / f"workers{workers}-{i}",
                    extra_env={"CX_SNAPSHOT_INTERVAL": "3600"})
             for i in range(workers)]  # fmt: skip
    count = len(messages)
    try:
        await asyncio.gather(*(asyncio.to_thread(w.start, 0, 180) for w in group))
        await wait_settled(group, prefix, f"{prefix}app", timeout=180)
        pids = [w.process.pid for w in group if w.process is not None]
        cpu_before = [cpu_seconds(pid) for pid in pids]
        began = time.perf_counter()
        produce_s = await preload(kafka.bootstrap_servers, settings.topic("responses"), messages)
        # Each worker answers /kpi for the segments it owns: (all, all) is on one of them.
        while (final := max(counted(w) for w in group)) < count:
            for worker in group:
                if worker.process is not None and worker.process.poll() is not None:
                    raise RuntimeError(f"worker exited:\n{worker.log_tail()}")
            await asyncio.sleep(0.5)
        elapsed = time.perf_counter() - began
        cpu = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu_before, strict=True)]
    finally:
        for worker in group:
            worker.stop()
    return {"workers": workers, "events": final, "seconds": elapsed,
            "events_per_s": count / elapsed, "produce_seconds_within": produce_s,
            "cpu_seconds": sum(cpu), "cpu_seconds_per_worker": cpu,
            "cpu_us_per_message_drain": sum(cpu) / count * 1e6}  # fmt: skip


def one_worker(b: dict[str, Any]) -> dict[str, Any]:
    """B_1_worker: the headline figures of B_worker (the 1-worker run), beside B_2_workers."""
    keys = ("events", "seconds", "events_per_s", "cpu_seconds", "cpu_us_per_message_drain")
    return {"workers": 1, **{key: b[key] for key in keys}}


def peer_drain(kafka: KafkaSettings, topic: str, count: int, late_grace: int,
               workdir: Path) -> Drain:  # fmt: skip
    """The peers' job: the worker's windows, and its lateness horizon as their grace, so that
    every response the worker accepts is counted."""
    windows = tuple(f"{w.name}:{w.width}" for w in WINDOWS)
    return Drain(kafka.bootstrap_servers, topic, count, windows=windows,
                 grace_seconds=LONGEST.seconds + late_grace, timeout=max(600.0, count / 200),
                 workdir=workdir)  # fmt: skip


def peer_run(drain: Drain, prefix: str, a_counts: Counts) -> dict[str, Any]:
    """(C): Quix Streams on the same topic, its own consumer group; checked against A."""
    c, c_counts = run_peer(drain, group=f"{prefix}quix")
    return c | compare(a_counts, c_counts)


def best_of_threads(
    run: Callable[[int], tuple[dict[str, Any], Counts]], a_counts: Counts
) -> dict[str, Any]:
    """A peer run with 1 and with 2 threads, each checked against A; the better is the peer."""
    runs = {}
    for threads in (1, 2):
        out, counts = run(threads)
        runs[f"threads_{threads}"] = out | compare(a_counts, counts)
    best = max(runs.values(), key=lambda run: run["events_per_s"])
    return {"events_per_s": best["events_per_s"], "best_threads": best["threads"],
            "counts_equal_A": all(run["counts_equal_A"] for run in runs.values()),
            **runs}  # fmt: skip


def kstreams_run(drain: Drain, prefix: str, a_counts: Counts) -> dict[str, Any]:
    """(D): Kafka Streams with 1 and with 2 stream threads (own application ids); the better."""
    return best_of_threads(
        lambda threads: run_kstreams(drain, app_id=f"{prefix}kstreams{threads}", threads=threads),
        a_counts,
    )


def latency_p99s(
    args: argparse.Namespace, latency: dict[str, Any], sustained: dict[str, Any] | None
) -> dict[str, float]:
    """p99 produce -> /metrics per (offered rate, scrape interval)."""
    out = {f"{args.latency_rate:.0f}_per_s_scrape_{args.scrape_interval:g}s": latency["p99_ms"]}
    if sustained is not None:
        key = f"{args.sustained_rate:.0f}_per_s_scrape_{args.sustained_scrape_interval:g}s"
        out[key] = sustained["p99_ms"]
    return out


async def own_drain(
    kafka: KafkaSettings, prefix: str, tag: str, events: int, late_grace: int, workdir: Path
) -> tuple[Drain, Counts, dict[str, Any]]:
    """The first `events` responses of the same workload on a topic of the peer's own, counted
    by A there too (the peer's counts must equal A's on what it read)."""
    own = Settings(topic_prefix=f"{prefix.rstrip('.')}{tag}.")
    await ensure_topics(own, kafka)
    peer_topic = own.topic("responses")
    await preload(kafka.bootstrap_servers, peer_topic, responses(events))
    a_own, own_counts = await ceiling(kafka.bootstrap_servers, peer_topic, events)
    drain = peer_drain(kafka, peer_topic, events, late_grace, workdir)
    return drain, own_counts, {"A_on_its_run_events_per_s": a_own["events_per_s"]}


async def quix_run(kafka: KafkaSettings, args: argparse.Namespace, prefix: str, topic: str,
                   a_counts: Counts, late_grace: int, workdir: Path) -> dict[str, Any]:  # fmt: skip
    """(C) on the first `--peer-events` responses of the same workload, preloaded to a topic of
    its own and counted by A there too (C's counts must equal A's on what C read)."""
    events = min(args.events, 200_000) if args.peer_events is None else args.peer_events
    if events >= args.events:
        drain = peer_drain(kafka, topic, args.events, late_grace, workdir)
        return peer_run(drain, prefix, a_counts) | {"events_of_its_run": args.events}
    drain, own_counts, extra = await own_drain(kafka, prefix, "quix", events, late_grace, workdir)
    return peer_run(drain, f"{prefix}own", own_counts) | {"events_of_its_run": events, **extra}


def pathway_threads(drain: Drain, prefix: str, a_counts: Counts) -> dict[str, Any]:
    """(E): Pathway with 1 and with 2 engine threads (own consumer groups); the better."""
    return best_of_threads(
        lambda threads: run_pathway(drain, group=f"{prefix}pathway{threads}", threads=threads),
        a_counts,
    )


async def pathway_run(
    kafka: KafkaSettings, args: argparse.Namespace, prefix: str, topic: str, a_counts: Counts,
    late_grace: int, workdir: Path,
) -> dict[str, Any]:  # fmt: skip
    """(E) on the first `--pathway-events` responses, like C (the whole topic when N <= that)."""
    events = min(args.events, 200_000) if args.pathway_events is None else args.pathway_events
    if events >= args.events:
        drain = peer_drain(kafka, topic, args.events, late_grace, workdir)
        return pathway_threads(drain, prefix, a_counts) | {"events_of_its_run": args.events}
    drain, own_counts, extra = await own_drain(
        kafka, prefix, "pathway", events, late_grace, workdir
    )
    return pathway_threads(drain, f"{prefix}own", own_counts) | {
        "events_of_its_run": events,
        **extra,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="N preloaded responses")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--chart", type=Path, help="also copy the PNG here (docs/bench.png)")
    parser.add_argument("--latency-rate", type=float, default=5000.0, help="offered events/s")
    parser.add_argument(
        "--sustained-rate", type=float, default=1000.0,
        help="a second latency run at a load the worker keeps up with (0 skips)",
    )  # fmt: skip
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument(
        "--scrape-interval", type=float, default=1.0, help="seconds, at --latency-rate"
    )
    parser.add_argument(
        "--sustained-scrape-interval", type=float, default=0.1, help="seconds, at --sustained-rate"
    )
    parser.add_argument(
        "--peer-events", type=int,
        help="responses of C's own run (default min(N, 200000)): Quix Streams drains ~500/s "
        "here, so 1M would take half an hour; its counts are checked against A on that topic",
    )  # fmt: skip
    parser.add_argument(
        "--pathway-events", type=int,
        help="responses of E's own run (default min(N, 200000)), like --peer-events for C",
    )  # fmt: skip
    parser.add_argument(
        "--no-pathway", action="store_true",
        help="skip E (Pathway, its own 1.6 GB venv): the smoke test does",
    )  # fmt: skip
    parser.add_argument(
        "--simulate-rate", type=float, default=200.0,
        help="the steady-load CPU phase's `simulate --rate` (0 skips)",
    )  # fmt: skip
    parser.add_argument(
        "--rss-events", type=int, help="M per memory round (default min(N, 100000)); 0 skips"
    )
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    kafka = KafkaSettings()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    settings = Settings(topic_prefix=prefix)
    workdir = PROJECT_ROOT / "var" / "bench" / prefix.rstrip(".")
    await ensure_topics(settings, kafka)
    messages = responses(args.events)
    topic = settings.topic("responses")
    preload_s = await preload(kafka.bootstrap_servers, topic, messages)
    a, a_counts = await ceiling(kafka.bootstrap_servers, topic, args.events)
    b = await worker_run(kafka.bootstrap_servers, prefix, args.events, workdir)
    b2 = await workers_run(kafka, prefix, messages, workdir, workers=2)
    f = floor_run(topic, args.events, f"{prefix}floor", workdir)
    drain = peer_drain(kafka, topic, args.events, settings.late_grace_seconds, workdir)
    d = kstreams_run(drain, prefix, a_counts)
    c = await quix_run(kafka, args, prefix, topic, a_counts, settings.late_grace_seconds, workdir)
    e = (
        None
        if args.no_pathway
        else await pathway_run(
            kafka, args, prefix, topic, a_counts, settings.late_grace_seconds, workdir
        )
    )
    latency = await latency_run(
        kafka, args.latency_rate, args.latency_seconds, args.scrape_interval, workdir
    )
    sustained = (
        await latency_run(
            kafka, args.sustained_rate, args.latency_seconds, args.sustained_scrape_interval,
            workdir,
        )
        if args.sustained_rate > 0
        else None
    )  # fmt: skip
    steady = (
        await steady_load_run(kafka, args.simulate_rate, args.latency_seconds, workdir)
        if args.simulate_rate > 0
        else None
    )
    rss_events = min(args.events, 100_000) if args.rss_events is None else args.rss_events
    memory = await memory_run(kafka, rss_events, workdir) if rss_events > 0 else None
    result = {
        "events": args.events,
        "message_bytes": sum(len(v) for _, v in messages) / len(messages),
        "preload_seconds": preload_s,
        "A_ceiling": a,
        "B_worker": b,
        "B_1_worker": one_worker(b),
        "B_2_workers": b2,
        "C_quixstreams": c,
        "D_kafkastreams": d,
        "E_pathway": e,
        "F_faust_floor": f,
        "ratio_B_over_A": b["events_per_s"] / a["events_per_s"],
        "ratio_F_over_A": f["events_per_s"] / a["events_per_s"],
        "ratio_B_over_F": b["events_per_s"] / f["events_per_s"],
        "ratio_B_over_C": b["events_per_s"] / c["events_per_s"],
        "ratio_B_over_D": b["events_per_s"] / d["events_per_s"],
        "ratio_B_over_E": b["events_per_s"] / e["events_per_s"] if e is not None else None,
        "ratio_B_2_workers_over_B_1_worker": b2["events_per_s"] / b["events_per_s"],
        "records_per_event": b["records_per_event"],
        "aggregate_records_per_event": b["aggregate_records_per_event"],
        "latency": latency,
        "latency_sustained": sustained,
        "latency_p99_ms": latency_p99s(args, latency, sustained),
        "steady_load": steady,
        "cpu_us_per_message_drain": b["cpu_us_per_message_drain"],
        "cpu_us_per_event_drain": b["cpu_us_per_message_drain"],
        "records_per_event_by_topic": b["records_per_event_by_topic"],
        "read_side_p99_ms": b["read_side_p99_ms"],
        "cpu_us_per_message_at_300_per_s": steady["cpu_us_per_message"] if steady else None,
        "memory": memory,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    chart = draw(result, args.output.with_suffix(".png"))
    if args.chart is not None:
        args.chart.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(chart, args.chart)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    asyncio.run(main())
