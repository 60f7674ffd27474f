"""(F) the Faust floor: a bare Faust agent that batches the topic with `take_events` and does
nothing else. No pipeline built on faust-streaming's streams can drain faster than this in
one process, so it shows how much of B's time is Faust's own per-message path.

    python -m bench.faust_floor   # (run by bench.run in a subprocess, configured by env)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import faust

from stream.settings import PROJECT_ROOT, KafkaSettings

BATCH = 2000  # as the worker's stage-1 agents
WITHIN = 0.2


def build_app() -> faust.App:
    kafka = KafkaSettings()
    app = faust.App(
        os.environ["BENCH_APP_ID"],
        broker=f"kafka://{kafka.bootstrap_servers}",
        broker_credentials=kafka.faust_credentials(),
        store="memory://",
        web_enabled=False,
        datadir=os.environ["BENCH_DATADIR"],
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(
        os.environ["BENCH_TOPIC"], key_serializer="raw", value_serializer="raw", partitions=4
    )
    goal, result = int(os.environ["BENCH_EVENTS"]), Path(os.environ["BENCH_RESULT"])
    state: dict[str, Any] = {"seen": 0, "began": None}

    @app.agent(topic)
    async def bare(stream: faust.StreamT[bytes]) -> None:
        async for batch in cast(faust.Stream[bytes], stream).take_events(BATCH, WITHIN):
            state["began"] = state["began"] or time.perf_counter()
            state["seen"] += len(batch)
            if state["seen"] >= goal:
                elapsed = time.perf_counter() - state["began"]
                result.write_text(json.dumps({"events": state["seen"], "seconds": elapsed}))

    _ = bare
    return app


def floor_run(topic: str, count: int, app_id: str, workdir: Path) -> dict[str, Any]:
    """Run the bare agent in a subprocess until it has seen `count` events; its figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    result = workdir / "faust-floor.json"
    result.unlink(missing_ok=True)
    env = dict(os.environ, BENCH_TOPIC=topic, BENCH_EVENTS=str(count), BENCH_APP_ID=app_id,
               BENCH_RESULT=str(result), BENCH_DATADIR=str(workdir / "faust-floor"))  # fmt: skip
    log = (workdir / "faust-floor.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.faust_floor", "worker", "-l", "info"],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + max(300.0, count / 500)
    try:
        while not result.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Faust floor run stopped early: see {log.name}")
            time.sleep(0.2)
        time.sleep(0.1)  # let the writer finish the file
        figures = json.loads(result.read_text())
    finally:
        process.terminate()
        process.wait(60)
    return figures | {"events_per_s": figures["events"] / figures["seconds"]}


if __name__ == "__main__":
    build_app().main()
