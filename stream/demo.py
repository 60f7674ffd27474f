"""`python -m stream demo`: everything a new user needs to see live KPIs on one machine.

It refuses to start when its web port is taken (another demo, a worker, anything else), backfills
a week of history so the four windows differ and churn has customers, shows "loading state"
until the worker says it is ready, then a live table read from /metrics (the contract's names),
and on Ctrl-C stops only what it started itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.live import Live
from rich.table import Table

from stream.backfill import backfill
from stream.kpi_cli import KPIS, WINDOW_KPIS, cell
from stream.localkafka import BrokerError, LocalBroker
from stream.pipeline.topics import TopicNames, ensure_topics
from stream.settings import PROJECT_ROOT, get_kafka_settings, get_settings
from stream.simulate import Simulator, run_simulation

console = Console()
WINDOWS = ("5m", "1h", "24h", "7d")
LOG = PROJECT_ROOT / "var" / "demo-worker.log"
SEED = 42
REFRESH = 5.0  # seconds between tables once the worker is ready
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class DemoError(RuntimeError):
    """Why the demo cannot start or go on, in words for the user."""


# --- the web port -------------------------------------------------------------------------------


def get_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    """(HTTP status, JSON body or None); OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            status, body = reply.status, reply.read()
    except urllib.error.HTTPError as error:  # 503 while not ready still carries a JSON body
        status, body = error.code, error.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def check_port_free(port: int) -> None:
    """Raise DemoError when something listens on `port`, saying what and what to do."""
    advice = (
        "stop it, or give this demo another port (e.g. CX_WEB_PORT=16066, and its own "
        "CX_DATA_DIR when a worker of this project runs here)"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        listening = probe.connect_ex(("127.0.0.1", port)) == 0
    if listening:
        try:
            _, body = get_json(f"http://127.0.0.1:{port}/healthz", timeout=2)
        except OSError:  # not HTTP, or too slow to say
            body = None
        if isinstance(body, dict) and "assigned" in body:
            raise DemoError(
                f"a cx-stream worker that this demo did not start (another demo, or `python -m "
                f"stream worker`) already answers on http://127.0.0.1:{port}: {advice}"
            )
        raise DemoError(f"port {port} is taken by another program: {advice}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the worker's web server does: a connection of a previous run in TIME_WAIT is fine.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((web_host(), port))  # where the worker will listen
        except OSError as exc:
            raise DemoError(f"port {port} cannot be used ({exc.strerror}): {advice}") from None


def listening_sockets(port: int) -> set[str]:
    """Inodes of the TCP sockets listening on `port` (Linux /proc; empty elsewhere)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes


def owns_port(pid: int, port: int) -> bool | None:
    """True when process `pid` holds a socket listening on `port`; None when it cannot be told."""
    inodes = listening_sockets(port)
    if not inodes:
        return None
    links = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return None
    for fd in fds:
        try:
            links.add(os.readlink(fd))
        except OSError:  # closed meanwhile
            continue
    return any(f"socket:[{inode}]" in links for inode in inodes)


# --- readiness ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Readiness:
    ready: bool
    detail: str = ""


def describe(recovery: object) -> str:
    """The worker's recovery detail in one line, whatever shape it has."""
    if isinstance(recovery, dict):
        return ", ".join(f"{key} {value}" for key, value in recovery.items())
    if isinstance(recovery, list):
        return ", ".join(map(str, recovery))
    return "" if recovery is None else str(recovery)


def readiness(port: int) -> Readiness:
    """Ready once /healthz/ready says "ok"; a worker without that endpoint: /healthz."""
    base = f"http://127.0.0.1:{port}"
    try:
        status, body = get_json(f"{base}/healthz/ready")
        if status == 404:
            status, body = get_json(f"{base}/healthz")
            ok = (
                isinstance(body, dict) and body.get("status") == "ok" and bool(body.get("assigned"))
            )
            return Readiness(ok, "" if ok else "waiting for partitions")
    except OSError:
        return Readiness(False, "worker starting")
    if not isinstance(body, dict):
        return Readiness(False, f"unexpected answer (HTTP {status})")
    ready = status == 200 and body.get("status") == "ok"
    detail = describe(body.get("recovery")) or ("" if ready else str(body.get("status", "")))
    return Readiness(ready, detail)


# --- the table ----------------------------------------------------------------------------------


def fetch_samples(port: int) -> Samples:
    """Every sample of the worker's /metrics; empty when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of `name` over the series that carry `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


# One row per KPI (its label and unit from stream.kpi_cli, like `python -m stream kpi`), one
# column per window: readable in 80 columns. Per segment (channel=all, queue=all), or per
# window only (churn, SCI: over every channel and queue).
ROWS: tuple[tuple[str, bool], ...] = (
    ("nps", False),
    ("nps_responses", False),
    ("csat_top_box_ratio", False),
    ("csat_top2_box_ratio", False),
    ("ces_average", False),
    ("thumbs_up_ratio", False),
    ("csi", False),
    ("acsi_index", False),
    ("response_ratio", False),
    ("churn_ratio", True),
    ("sci_secure_ratio", True),
)
ROLLUP = {"channel": "all", "queue": "all"}
OUTCOMES = ("accepted", "duplicate", "invalid", "opted_out", "revised")


def counts_line(samples: Samples, names: TopicNames) -> str:
    accepted = {
        label: total(samples, "cx_events_total", topic=topic, outcome="accepted")
        for label, topic in (
            ("responses", names.responses),
            ("dispatches", names.dispatches),
            ("lifecycle", names.lifecycle),
        )
    }
    others = {
        outcome: total(samples, "cx_events_total", outcome=outcome) for outcome in OUTCOMES[1:]
    }
    return (
        "accepted: "
        + ", ".join(f"{label} {n:,.0f}" for label, n in accepted.items())
        + " | "
        + ", ".join(f"{outcome} {n:,.0f}" for outcome, n in others.items())
    )


def _label(name: str) -> str:
    return (KPIS.get(name) or WINDOW_KPIS[name]).label


def kpi_table(state: Readiness, samples: Samples, names: TopicNames, note: str = "") -> Table:
    """The live table: "loading state" until the worker is ready, then the KPIs by window."""
    table = Table(title="Live KPIs (channel=all, queue=all)")
    table.add_column("KPI (unit)")
    for window in WINDOWS:
        table.add_column(window, justify="right", no_wrap=True, min_width=7)
    if not state.ready:
        for name, _ in ROWS:
            table.add_row(_label(name), *("…" for _ in WINDOWS))
        table.caption = "loading state…" + (f" ({state.detail})" if state.detail else "")
        if note:
            table.caption += f"\n{note}"
        return table
    shown_any = False
    for name, per_window in ROWS:
        cells = []
        for window in WINDOWS:
            labels = {} if per_window else ROLLUP
            found = value(samples, f"cx_{name}", window=window, **labels)
            cells.append(cell(name, found))
            shown_any = shown_any or found is not None
        table.add_row(_label(name) + (", all queues" if per_window else ""), *cells)
    if not any(total(samples, "cx_events_total", outcome=o) for o in OUTCOMES):
        table.caption = (
            "KPIs of the stored state; this worker has counted no new events yet…"
            if shown_any
            else "worker ready, waiting for its first events…"
        )
    else:
        table.caption = counts_line(samples, names)
    table.caption += f"\n{note}" if note else ""
    return table


# --- the run ------------------------------------------------------------------------------------


class Display:
    """The table in place in a terminal; in a log, one table every REFRESH seconds."""

    def __init__(self) -> None:
        self.live = Live(console=console, auto_refresh=False) if console.is_terminal else None
        self.printed = (0.0, False)

    def __enter__(self) -> Callable[[Table, bool], None]:
        if self.live is not None:
            self.live.start()
        return self.show

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def show(self, table: Table, ready: bool) -> None:
        if self.live is not None:
            self.live.update(table, refresh=True)
            return
        at, was_ready = self.printed
        if ready != was_ready or time.monotonic() - at >= REFRESH - 0.5:
            console.print(table)
            self.printed = (time.monotonic(), ready)


@dataclass
class Started:
    """What this demo started itself, and so stops on the way out (and nothing else)."""

    broker: LocalBroker | None = None
    worker: subprocess.Popen[bytes] | None = None
    tasks: tuple[asyncio.Task[int], ...] = ()
    kept: str = ""  # what this demo used but did not start, said when it stops

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGTERM)
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
            console.print(f"worker stopped (pid {self.worker.pid})")
        if self.broker is not None:
            # synchronously: the event loop may already be shutting down after Ctrl-C
            console.print(self.broker.stop())
        if self.kept:
            console.print(f"left running, as this demo did not start it: {self.kept}")


async def start_broker(partitions: int, started: Started) -> None:
    """The local broker unless KAFKA_BOOTSTRAP_SERVERS names one or it runs already."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        started.kept = f"the Kafka brokers of KAFKA_BOOTSTRAP_SERVERS ({configured})"
        return
    broker = LocalBroker(partitions=partitions)
    running, _ = await asyncio.to_thread(broker.status)
    try:
        console.print(await asyncio.to_thread(broker.start))
    except BrokerError as exc:
        raise DemoError(f"the local Kafka broker cannot start: {exc}") from None
    if running:
        started.kept = f"the Kafka broker on {broker.address} (python -m stream kafka stop)"
    else:
        started.broker = broker


def web_host() -> str:
    """The demo's worker listens on 127.0.0.1 unless CX_WEB_HOST says otherwise."""
    return os.environ.get("CX_WEB_HOST") or "127.0.0.1"


def start_worker() -> subprocess.Popen[bytes]:
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "stream", "worker", "-l", "info"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "CX_WEB_HOST": web_host()},
        )  # fmt: skip


async def run_demo(rate: float) -> None:
    started = Started()
    try:
        await _run(rate, started)
    except DemoError as exc:
        console.print(f"[bold red]demo:[/] {exc}")
        raise SystemExit(1) from None
    finally:
        started.stop()


async def _run(rate: float, started: Started) -> None:
    began = time.monotonic()
    settings, kafka = get_settings(), get_kafka_settings()
    port, names = settings.web_port, TopicNames.from_settings(settings)
    check_port_free(port)  # before anything starts: nothing to undo
    main = asyncio.current_task()
    if main is not None:  # `kill` stops the demo as cleanly as Ctrl-C does
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    await start_broker(settings.partitions, started)
    await ensure_topics(settings, kafka)
    started.worker = worker = start_worker()
    simulator = Simulator(names, SEED)
    sent = [0]

    def progress(n: int) -> None:
        sent[0] = n

    history = asyncio.create_task(
        backfill(simulator, kafka.aiokafka_kwargs(), datetime.now(UTC), on_progress=progress)
    )
    started.tasks = (history,)
    simulation: asyncio.Task[int] | None = None
    ready_after: float | None = None
    first_kpis: float | None = None
    with Display() as show:
        while True:
            if worker.poll() is not None:
                raise DemoError(f"the worker exited with code {worker.returncode}; see {LOG}")
            if history.done():
                history.result()  # a failed backfill stops the demo with its error
            if simulation is not None and simulation.done():
                simulation.result()
            state = await asyncio.to_thread(readiness, port)
            if state.ready and ready_after is None:
                if owns_port(worker.pid, port) is False:
                    raise DemoError(
                        f"another program answers on port {port}, not this demo's worker; see {LOG}"
                    )
                ready_after = time.monotonic() - began
                console.print(
                    f"worker ready after {ready_after:.0f} s: metrics at "
                    f"http://127.0.0.1:{port}/metrics, KPIs as JSON at "
                    f"http://127.0.0.1:{port}/kpi?window=1h&channel=all&queue=all"
                )
            if ready_after is not None and history.done() and simulation is None:
                simulation = asyncio.create_task(
                    run_simulation(names, kafka.aiokafka_kwargs(), rate, None, SEED,
                                   simulator=simulator)
                )  # fmt: skip
                started.tasks = (history, simulation)
                console.print(
                    f"offering {rate:g} surveys/s (run {simulator.run_id}); "
                    "Ctrl-C stops everything this command started"
                )
            backfilled = f"history: {sent[0]:,} messages sent" + (
                "" if history.done() else " (backfilling)"
            )
            samples = await asyncio.to_thread(fetch_samples, port) if state.ready else {}
            if first_kpis is None and value(samples, "cx_nps", window="7d", **ROLLUP) is not None:
                first_kpis = time.monotonic() - began
                console.print(f"first KPIs {first_kpis:.0f} s after start")
            show(kpi_table(state, samples, names, note=backfilled), state.ready)
            await asyncio.sleep(REFRESH if state.ready else 1)
