"""A py-spy profile of one worker draining bench responses (the drain of `bench.run`'s B).

Preloads `--events` responses (`--shape`: over 6 days, or live, as bench.cores) to fresh
topics, starts one worker, records it
with py-spy (`--rate` samples/s, raw stacks) from its start until it has counted every
response, and prints where the samples went: by leaf function and under chosen callers.

    python -m bench.profile --events 200000 --output var/profile-drain.txt
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

from bench.common import preload, wait_counted
from bench.workload import shaped
from stream.pipeline.topics import ensure_topics
from stream.settings import PROJECT_ROOT, KafkaSettings, Settings
from tests.support.worker import Worker

# Where a drain's samples go, by the first of these frames on a stack (else "other").
STAGES = (
    ("stage 1: plan", "plan_batch"),
    ("stage 1: send and log states", "_commit_plan"),
    ("stage 2: apply", "_aggregate_batch"),
    ("stage 2: take", "_aggregate_in_transaction"),
    ("read side", "kpi_views"),
    ("read side", "collector"),
    ("Kafka fetch", "aiokafka/consumer"),
    ("Kafka produce", "aiokafka/producer"),
    ("RocksDB", "rocksdict"),
)


def summarise(raw: Path, top: int = 25) -> str:
    stages: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        leaves[frames[-1]] += n
        stage = next((name for name, mark in STAGES if any(mark in f for f in frames)), "other")
        stages[stage] += n
    lines = [f"{total} samples"]
    lines += [f"{n / total:6.1%}  {name}" for name, n in stages.most_common()]
    lines += ["", "leaf functions:"]
    lines += [f"{n / total:6.1%}  {name[:110]}" for name, n in leaves.most_common(top)]
    return "\n".join(lines)


async def drain(events: int, shape: str, rate: int, output: Path) -> None:
    kafka = KafkaSettings()
    prefix = f"prof{uuid.uuid4().hex[:6]}."
    await ensure_topics(Settings(topic_prefix=prefix), kafka)
    await preload(kafka.bootstrap_servers, f"{prefix}responses", shaped(events, shape))
    workdir = Path(tempfile.mkdtemp(prefix="profile-", dir=PROJECT_ROOT / "var"))
    worker = Worker(bootstrap=kafka.bootstrap_servers, prefix=prefix, data_dir=workdir / "w",
                    app_id=f"{prefix}app", extra_env={"CX_SNAPSHOT_INTERVAL": "3600"})  # fmt: skip
    worker.start(wait_for_partitions=4, timeout=180)
    assert worker.process is not None
    spy = subprocess.Popen(
        [shutil.which("py-spy") or str(Path(__import__("sys").executable).parent / "py-spy"),
         "record", "--pid", str(worker.process.pid), "--rate", str(rate), "--format", "raw",
         "--output", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_counted(worker, events)
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
        worker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--shape", choices=("spread", "live"), default="spread")
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "var" / "profile-drain.txt")
    args = parser.parse_args()
    asyncio.run(drain(args.events, args.shape, args.rate, args.output))
    print(summarise(args.output))


if __name__ == "__main__":
    main()
