"""Fetch linger side by side: the worker with Faust's fetch options (the broker answers a fetch
as soon as one record is there) and with its own (`CX_FETCH_MAX_WAIT_MS`, `CX_FETCH_MIN_BYTES`),
alternately in one run: CPU per message at a steady `simulate --rate R` (bench/cpu.py) and
produce -> /metrics latency at a sustained rate with frequent scrapes (bench/latency.py).

    python -m bench.fetch_linger [--rounds 2] [--simulate-rate 200] [--latency-rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.cpu import steady_load_run
from bench.latency import latency_run
from stream.settings import PROJECT_ROOT, KafkaSettings

RESULTS = PROJECT_ROOT / "bench" / "results"
# aiokafka's fetch_min_bytes default and the fetch_max_wait_ms Faust passes
FAUST_OPTIONS = {"CX_FETCH_MIN_BYTES": "1", "CX_FETCH_MAX_WAIT_MS": "1500"}


async def one_round(args: argparse.Namespace, kafka: KafkaSettings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    workdir = PROJECT_ROOT / "var" / "bench" / "fetch-linger"
    for name, values in (("faust", FAUST_OPTIONS), ("worker", {})):
        cpu = await steady_load_run(
            kafka, args.simulate_rate, args.seconds, workdir, worker_env=values
        )
        latency = await latency_run(
            kafka, args.latency_rate, args.seconds, args.scrape_interval, workdir, values
        )
        out[name] = {"cpu": cpu, "latency": latency}
    return out


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def median(name: str, phase: str, field: str) -> float:
        return statistics.median(r[name][phase][field] for r in rounds)

    out = {}
    for name in ("faust", "worker"):
        out[name] = {
            "cpu_us_per_message": median(name, "cpu", "cpu_us_per_message"),
            "cpu_share_of_a_core": median(name, "cpu", "cpu_share_of_a_core"),
            "latency_p50_ms": median(name, "latency", "p50_ms"),
            "latency_p99_ms": median(name, "latency", "p99_ms"),
        }
    out["cpu_ratio_worker_over_faust"] = (
        out["worker"]["cpu_us_per_message"] / out["faust"]["cpu_us_per_message"]
    )
    return out


def show(result: dict[str, Any]) -> None:
    s = result["summary"]
    table = Table(title=f"fetch options, median of {len(result['rounds'])} alternating rounds")
    for column in ("options", "CPU us/msg", "share of a core", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    for name, label in (("faust", "Faust's (1 B, 1500 ms)"), ("worker", "the worker's")):
        row = s[name]
        table.add_row(
            label, f"{row['cpu_us_per_message']:.0f}", f"{row['cpu_share_of_a_core']:.3f}",
            f"{row['latency_p50_ms']:.0f}", f"{row['latency_p99_ms']:.0f}",
        )  # fmt: skip
    Console().print(table)
    Console().print(f"CPU per message, worker / Faust: {s['cpu_ratio_worker_over_faust']:.2f}")


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--simulate-rate", type=float, default=200.0)
    parser.add_argument("--latency-rate", type=float, default=1000.0)
    parser.add_argument("--scrape-interval", type=float, default=0.1)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--output", type=Path, default=RESULTS / "fetch-linger-latest.json")
    args = parser.parse_args(argv)
    kafka = KafkaSettings()
    rounds = [await one_round(args, kafka) for _ in range(args.rounds)]
    result = {"rounds": rounds, "summary": summary(rounds)}
    show(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    asyncio.run(main())
