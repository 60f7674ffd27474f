"""`python -m stream demo`: everything a new user needs to see live KPIs on one machine.

It refuses to start when its web port is taken (another demo, a worker, anything else), backfills
a week of history so the four windows differ and churn has customers, shows "loading state"
until the worker says it is ready, then live tables read from /metrics (the contract's names):
the KPIs by window, the queues with their minimum-n gate, and the alerts pending or firing in a
local Prometheus (with Alertmanager) loaded with the project's rules, when Debian's binaries are
installed. The simulated traffic tells a story: one queue degrades from a few minutes before the
start, and its alerts, and only its, fire within the first minutes. On Ctrl-C it stops only what
it started itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table

from stream.backfill import backfill
from stream.kpi.windows import NAMES
from stream.kpi_cli import KPIS, WINDOW_KPIS, cell
from stream.localkafka import BrokerError, LocalBroker
from stream.pipeline.metrics import OUTCOMES
from stream.pipeline.topics import TopicNames, ensure_topics
from stream.promstack import (
    DEMO_FOR,
    HOME,
    MissingBinary,
    Servers,
    Stack,
    stack_notice,
    start_stack,
)
from stream.settings import PROJECT_ROOT, get_kafka_settings, get_settings
from stream.simulate import DEGRADED_QUEUE, Simulator, degradation_from, run_simulation

console = Console()
WINDOWS = NAMES
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


# --- queues and alerts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """What the KPI alerts compare with, from monitoring/config.yml (the one config)."""

    min_responses: int
    nps_target: float
    nps_window: str
    csat_target: float
    csat_ratio: str  # the CSAT ratio the alert watches: top_box or top2_box
    drop_baseline: str  # NpsSignificantDrop compares the 1h interval with this window's NPS


def load_thresholds() -> Thresholds | None:
    """None when monitoring/config.yml cannot be read (the queues are then shown ungated)."""
    try:
        from monitoring.config import load

        config = load()
    except (ImportError, OSError, ValueError):
        return None
    return Thresholds(
        config.min_responses, config.nps.target, config.nps.window, config.csat.target,
        config.csat.ratio, config.nps_drop.baseline,
    )  # fmt: skip


def labels_of(samples: Samples, name: str, **labels: str) -> list[dict[str, str]]:
    wanted = set(labels.items())
    return [dict(found) for n, found in samples if n == name and wanted <= found]


def queue_table(samples: Samples, limits: Thresholds | None) -> Table | None:
    """Each queue's NPS and CSAT over the alerts' window, all channels, with their n, the
    baseline NPS, and which KPIs are under the minimum n (never alerted, however low)."""
    window = limits.nps_window if limits else "1h"
    ratio = f"csat_{limits.csat_ratio if limits else 'top_box'}_ratio"
    queues = sorted(
        {found["queue"] for found in labels_of(samples, "cx_nps_responses", window=window,
                                               channel="all")} - {"all"}
    )  # fmt: skip
    if not queues:
        return None
    baseline = limits.drop_baseline if limits else "7d"
    table = Table(title=f"Queues, all channels ({window} unless said)")
    table.add_column("queue")
    for header in ("NPS", "NPS\nanswers", KPIS[ratio].label.replace(" (", "\n("), "CSAT\nanswers",
                   f"NPS\n{baseline}"):  # fmt: skip
        table.add_column(header, justify="right", no_wrap=True)
    if limits:
        table.add_column("under\nmin n")
    for queue in queues:
        at = {"window": window, "channel": "all", "queue": queue}
        nps, n = value(samples, "cx_nps", **at), value(samples, "cx_nps_responses", **at)
        csat, csat_n = (
            value(samples, f"cx_{ratio}", **at),
            value(samples, "cx_csat_responses", **at),
        )
        row = [
            queue,
            cell("nps", nps),
            cell("nps_responses", n),
            cell(ratio, csat),
            cell("csat_responses", csat_n),
            cell("nps", value(samples, "cx_nps", window=baseline, channel="all", queue=queue)),
        ]
        if limits:
            gated = [kpi for kpi, count in (("NPS", n), ("CSAT", csat_n))
                     if (count or 0) < limits.min_responses]  # fmt: skip
            row.append(", ".join(gated))
            if nps is not None and nps < limits.nps_target:
                row[1] = f"[red]{row[1]}[/]"
            if csat is not None and csat < limits.csat_target:
                row[3] = f"[red]{row[3]}[/]"
        table.add_row(*row)
    if limits:
        table.caption = (
            f"targets: NPS {limits.nps_target:g}, {KPIS[ratio].label.split(' (')[0]} "
            f"{limits.csat_target * 100:g}%; an alert needs at least {limits.min_responses} "
            f"answers in {window}: under min n, a queue is not alerted however low"
        )
    return table


def fetch_alerts(base: str) -> list[dict[str, Any]] | None:
    """The alerts pending or firing in the Prometheus at `base`; None when it does not answer."""
    try:
        status, body = get_json(f"{base}/api/v1/alerts", timeout=3)
    except OSError:
        return None
    if status != 200 or not isinstance(body, dict):
        return None
    alerts = body.get("data", {}).get("alerts", [])
    return [a for a in alerts if a.get("state") in ("pending", "firing")]


def fetch_series(base: str, query: str) -> Samples:
    """The result of an instant PromQL query at `base`, as samples without the scrape's job and
    instance labels (what the alerts saw: their data, not the worker's latest); empty when
    Prometheus does not answer."""
    try:
        status, body = get_json(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
    except OSError:
        return {}
    if status != 200 or not isinstance(body, dict):
        return {}
    found: Samples = {}
    for series in body.get("data", {}).get("result", []):
        labels = dict(series.get("metric", {}))
        name = labels.pop("__name__", "")
        for scraped in ("job", "instance"):
            labels.pop(scraped, None)
        found[(name, frozenset(labels.items()))] = float(series["value"][1])
    return found


def alert_value(alert: dict[str, Any], samples: Samples, limits: Thresholds | None) -> str:
    """The alert's value in its KPI's unit (a drop: the 1h upper bound < the baseline NPS)."""
    labels = alert.get("labels", {})
    try:
        number = float(alert["value"])
    except (KeyError, TypeError, ValueError):
        return "-"
    name = labels.get("alertname", "")
    if name == "NpsBelowTarget":
        return f"NPS {number:.1f}"
    if name in ("CsatBelowTarget", "ChurnAboveTarget", "DeadLetterRateHigh"):
        shown = f"{number * 100:.1f}%"
    elif name == "NpsSignificantDrop":
        window = limits.drop_baseline if limits else "7d"
        segment = {"channel": labels.get("channel", ""), "queue": labels.get("queue", "")}
        base = value(samples, "cx_nps", window=window, **segment)
        return f"{number:.1f} < {base:.1f}" if base is not None else f"{number:.1f}"
    else:
        shown = f"{number:,.0f}" if abs(number) >= 100 else f"{number:.3g}"
    return f"{labels['topic']} {shown}" if "topic" in labels else shown


def alert_table(
    alerts: list[dict[str, Any]] | None, samples: Samples, limits: Thresholds | None
) -> Table:
    table = Table(title=f"Alerts pending or firing (Prometheus; this demo's for: {DEMO_FOR})")
    for header in ("alert", "state", "queue", "channel", "value"):
        table.add_column(header, overflow="fold")
    if alerts is None:
        table.caption = "Prometheus does not answer"
        return table
    order = {"firing": 0, "pending": 1}
    for alert in sorted(
        alerts,
        key=lambda a: (order.get(a["state"], 2), a["labels"].get("alertname", ""),
                       a["labels"].get("queue", ""), a["labels"].get("channel", "")),
    ):  # fmt: skip
        labels = alert["labels"]
        state = alert["state"]
        table.add_row(
            labels.get("alertname", "?"),
            f"[bold red]{state}[/]" if state == "firing" else f"[yellow]{state}[/]",
            labels.get("queue", "-"),
            labels.get("channel", "-"),
            alert_value(alert, samples, limits),
        )
    if not alerts:
        table.caption = "none"
    elif any(a["labels"].get("alertname") == "NpsSignificantDrop" for a in alerts):
        window = limits.drop_baseline if limits else "7d"
        table.caption = f"NpsSignificantDrop: upper bound of the 1h NPS < the {window} NPS"
    return table


# --- the run ------------------------------------------------------------------------------------


class Display:
    """The table in place in a terminal; in a log, one table every REFRESH seconds."""

    def __init__(self) -> None:
        self.live = Live(console=console, auto_refresh=False) if console.is_terminal else None
        self.printed = (0.0, False)

    def __enter__(self) -> Callable[[RenderableType, bool], None]:
        if self.live is not None:
            self.live.start()
        return self.show

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def show(self, table: RenderableType, ready: bool) -> None:
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
    servers: Servers | None = None  # Prometheus and Alertmanager

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.servers is not None:
            pids = self.servers.stop()
            if pids:
                console.print(
                    f"Prometheus and Alertmanager stopped (pids {', '.join(map(str, pids))})"
                )
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


async def start_monitoring(worker_port: int, started: Started) -> Stack | None:
    """Prometheus and Alertmanager for the worker, when installed; one line says what came of it."""
    started.servers = servers = Servers(HOME)
    try:
        stack = await asyncio.to_thread(start_stack, servers, worker_port)
    except (MissingBinary, ImportError, OSError, ValueError) as exc:
        servers.stop()
        console.print(f"monitoring off: {exc}", soft_wrap=True)  # one line, even in a pipe
        return None
    console.print(stack_notice(stack))
    return stack


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


def content_seed(fresh: bool) -> int:
    """SEED on a fresh broker: the story its test checks. A later run draws another one: the
    same content again on top of a kept history would be copies, and copies make the KPI
    intervals (and so the drop alert) far more confident than the data allows."""
    return SEED if fresh else secrets.randbelow(2**31)


async def _run(rate: float, started: Started) -> None:
    began = time.monotonic()
    settings, kafka = get_settings(), get_kafka_settings()
    port, names = settings.web_port, TopicNames.from_settings(settings)
    check_port_free(port)  # before anything starts: nothing to undo
    main = asyncio.current_task()
    if main is not None:  # `kill` stops the demo as cleanly as Ctrl-C does
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    # Prometheus first: its start-up does not compete with the broker's and the worker's
    stack = await start_monitoring(port, started)
    limits = load_thresholds()
    await start_broker(settings.partitions, started)
    created = await ensure_topics(settings, kafka)
    started.worker = worker = start_worker()
    now = datetime.now(UTC)
    degraded = degradation_from(now)
    seed = content_seed(fresh=names.responses in created)
    simulator = Simulator(names, seed, degradation=degraded)
    sent = [0]

    def progress(n: int) -> None:
        sent[0] = n

    history = asyncio.create_task(
        backfill(simulator, kafka.aiokafka_kwargs(), now, on_progress=progress)
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
                    run_simulation(names, kafka.aiokafka_kwargs(), rate, None, seed,
                                   simulator=simulator)
                )  # fmt: skip
                started.tasks = (history, simulation)
                console.print(
                    f"offering {rate:g} surveys/s (run {simulator.run_id}, seed {seed}); queue "
                    f"{DEGRADED_QUEUE} answers badly from {degraded[0]:%H:%M} to "
                    f"{degraded[1]:%H:%M} UTC; Ctrl-C stops everything this command started"
                )
            backfilled = f"history: {sent[0]:,} messages sent" + (
                "" if history.done() else " (backfilling)"
            )
            samples = await asyncio.to_thread(fetch_samples, port) if state.ready else {}
            if first_kpis is None and value(samples, "cx_nps", window="7d", **ROLLUP) is not None:
                first_kpis = time.monotonic() - began
                console.print(f"first KPIs {first_kpis:.0f} s after start")
            parts: list[RenderableType] = [kpi_table(state, samples, names, note=backfilled)]
            if state.ready:
                queues = queue_table(samples, limits)
                parts += [queues] if queues is not None else []
            if stack is not None:
                alerts = await asyncio.to_thread(fetch_alerts, stack.prometheus)
                baseline = f'cx_nps{{window="{limits.drop_baseline if limits else "7d"}"}}'
                seen = await asyncio.to_thread(fetch_series, stack.prometheus, baseline)
                parts.append(alert_table(alerts, seen, limits))
            show(Group(*parts), state.ready)
            await asyncio.sleep(REFRESH if state.ready else 1)
