"""Side by side: this checkout's worker (B) against another git revision's (the baseline), on the
same preloaded responses, with the raw consumer's ceiling (A) of the same topic.

Two event-time shapes: `spread` (over the last 6 days, as bench.run: a backfill, where every
batch touches thousands of 15 s buckets) and `live` (the last 4 minutes, as a contact
center's live traffic). The baseline runs from a git worktree of REV under var/bench, with
this checkout's venv (same dependencies). Each figure is a ratio measured in this one run.

    python -m bench.cores --baseline b757fcc --events 200000 [--this-first]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import bench.run as bench_run
from bench.common import preload
from bench.workload import shaped
from stream.pipeline.topics import ensure_topics
from stream.settings import PROJECT_ROOT, KafkaSettings, Settings

RESULTS = PROJECT_ROOT / "bench" / "results"


def checkout(rev: str) -> Path:
    """A worktree of `rev` (made once, reused)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=PROJECT_ROOT, check=True,
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    path = PROJECT_ROOT / "var" / "bench" / f"rev-{sha}"
    if not path.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), sha], cwd=PROJECT_ROOT, check=True
        )
    return path


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="b757fcc", help="git revision to compare with")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--shapes", default="spread,live")
    parser.add_argument("--output", type=Path, default=RESULTS / "cores-latest.json")
    parser.add_argument(
        "--this-first", action="store_true",
        help="run this checkout before the baseline (alternate the order to tell a "
        "revision's effect from its position's)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    kafka = KafkaSettings()
    baseline = checkout(args.baseline)
    order = [("baseline", baseline), ("this", PROJECT_ROOT)]
    if args.this_first:
        order.reverse()
    result: dict[str, Any] = {"baseline": args.baseline, "events": args.events, "runs": {},
                              "order": [name for name, _ in order]}  # fmt: skip
    for shape in args.shapes.split(","):
        messages = shaped(args.events, shape)
        run: dict[str, Any] = {}
        for name, cwd in order:
            # each run its own topics (the internal ones too), the same messages preloaded
            prefix = f"cores{uuid.uuid4().hex[:6]}."
            settings = Settings(topic_prefix=prefix)
            await ensure_topics(settings, kafka)
            topic = settings.topic("responses")
            await preload(kafka.bootstrap_servers, topic, messages)
            if "A" not in run:
                run["A"], _ = await bench_run.ceiling(kafka.bootstrap_servers, topic, args.events)
            workdir = PROJECT_ROOT / "var" / "bench" / prefix.rstrip(".")
            run[name] = await bench_run.worker_run(
                kafka.bootstrap_servers, prefix, args.events, workdir, cwd
            )
        result["runs"][shape] = run
    show(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return result


def show(result: dict[str, Any]) -> None:
    table = Table(title=f"this checkout vs {result['baseline']}, {result['events']:,} responses")
    for column in ("shape", "A /s", "baseline /s", "this /s", "this / baseline", "this / A",
                   "CPU us/msg base", "CPU us/msg this", "peak RSS MB base", "this"):  # fmt: skip
        table.add_column(column, justify="right")
    for shape, run in result["runs"].items():
        a, base, this = run["A"], run["baseline"], run["this"]
        table.add_row(
            shape, f"{a['events_per_s']:,.0f}", f"{base['events_per_s']:,.0f}",
            f"{this['events_per_s']:,.0f}", f"{this['events_per_s'] / base['events_per_s']:.2f}",
            f"{this['events_per_s'] / a['events_per_s']:.3f}",
            f"{base['cpu_us_per_message_drain']:.0f}", f"{this['cpu_us_per_message_drain']:.0f}",
            f"{base['peak_rss_bytes'] / 2**20:.0f}", f"{this['peak_rss_bytes'] / 2**20:.0f}",
        )  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    asyncio.run(main())
