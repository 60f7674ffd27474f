"""`python -m stream demo`: everything a new user needs to see live KPIs on one machine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request

from rich.console import Console
from rich.live import Live
from rich.table import Table

from stream.localkafka import LocalBroker
from stream.pipeline.topics import TopicNames, ensure_topics
from stream.settings import PROJECT_ROOT, get_kafka_settings, get_settings
from stream.simulate import run_simulation

console = Console()


def fetch_kpi(port: int, window: str) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/kpi?window={window}&channel=all&queue=all"
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return dict(json.load(reply).get("kpis", {}))
    except OSError:
        return {}


def kpi_table(port: int) -> Table:
    table = Table(title="Live KPIs (channel=all, queue=all)")
    for column in ("window", "NPS", "NPS 95% CI", "n", "CSAT top-2", "CES avg", "response ratio"):
        table.add_column(column, justify="right")
    for window in ("5m", "1h", "24h", "7d"):
        k = fetch_kpi(port, window)
        if not k:
            table.add_row(window, "-", "-", "0", "-", "-", "-")
            continue
        table.add_row(
            window,
            f"{k.get('nps', float('nan')):.1f}",
            f"[{k.get('nps_lower', 0):.1f}, {k.get('nps_upper', 0):.1f}]",
            str(int(k.get("nps_responses", 0))),
            f"{k.get('csat_top2_box_ratio', float('nan')):.2f}",
            f"{k.get('ces_average', float('nan')):.2f}",
            f"{k.get('response_ratio', float('nan')):.2f}",
        )
    return table


async def wait_healthy(port: int, worker: subprocess.Popen[bytes], timeout: float = 120) -> None:
    for _ in range(int(timeout * 2)):
        if worker.poll() is not None:
            raise RuntimeError("the worker exited; see var/demo-worker.log")
        url = f"http://127.0.0.1:{port}/healthz"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as reply:
            if json.load(reply).get("assigned"):
                return
        await asyncio.sleep(0.5)
    raise RuntimeError("the worker did not become ready; see var/demo-worker.log")


async def run_demo(rate: float) -> None:
    settings, kafka = get_settings(), get_kafka_settings()
    broker = None
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        broker = LocalBroker(partitions=settings.partitions)
        console.print(await asyncio.to_thread(broker.start))
    await ensure_topics(settings, kafka)
    log = (PROJECT_ROOT / "var" / "demo-worker.log").open("ab")
    worker = subprocess.Popen(
        [sys.executable, "-m", "stream", "worker", "-l", "info"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    port = settings.web_port
    main = asyncio.current_task()
    if main is not None:  # `kill` stops the demo as cleanly as Ctrl-C does
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    simulation: asyncio.Task[int] | None = None
    try:
        await wait_healthy(port, worker)
        console.print(f"worker ready: metrics at http://127.0.0.1:{port}/metrics")
        console.print(
            f"KPIs as JSON at http://127.0.0.1:{port}/kpi?window=1h&channel=all&queue=all"
        )
        console.print(f"offering {rate:g} surveys/s (Ctrl-C stops everything this command started)")
        simulation = asyncio.create_task(
            run_simulation(
                TopicNames.from_settings(settings), kafka.aiokafka_kwargs(), rate, None, 42
            )
        )
        with Live(kpi_table(port), console=console, auto_refresh=False) as live:
            while True:  # in a terminal the table refreshes in place; in a log, one per tick
                await asyncio.sleep(5)
                if simulation.done():
                    simulation.result()
                live.update(kpi_table(port), refresh=True)
                if not console.is_terminal:
                    console.print(kpi_table(port))
    finally:
        if simulation is not None:
            simulation.cancel()
        worker.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(30)
        if worker.poll() is None:
            worker.kill()
        if broker is not None:
            # synchronously: the event loop may already be shutting down after Ctrl-C
            console.print(broker.stop())
