"""The project's own CLI commands, registered on the Faust app (Faust's click-based CLI)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import click
from aiokafka.errors import KafkaError
from faust.cli import AppCommand, argument, option
from faust.cli.worker import worker as FaustWorker
from mode import Worker

from stream import faustx
from stream.channels import Reason
from stream.kpi.windows import NAMES
from stream.localkafka import BrokerError, LocalBroker
from stream.logs import install_kafka_log_filter
from stream.pipeline.topics import TopicNames, ensure_topics
from stream.settings import KafkaSettings, get_kafka_settings, get_settings
from stream.worker import app


def quiet_kafka_logs(kafka: KafkaSettings) -> None:
    """For a CLI command: Kafka outages in one line per 10 s, the first failure left to
    `kafka_failures_exit` (see stream/logs.py)."""
    install_kafka_log_filter(kafka.bootstrap_servers, report_first=False)


@contextmanager
def kafka_failures_exit(consequence: str) -> Iterator[None]:
    """A Kafka failure ends the command with one line on stderr and exit code 3, no traceback."""
    try:
        yield
    except (TimeoutError, KafkaError, OSError) as exc:
        servers = get_kafka_settings().bootstrap_servers
        click.echo(
            f"error: Kafka unreachable or failing at {servers} ({type(exc).__name__}); "
            f"{consequence}",
            err=True,
        )
        sys.exit(3)


class Command(AppCommand):
    """The project's commands: Faust's AppCommand, quiet on Ctrl-C."""

    abstract: ClassVar[bool] = True  # a base, not a command of its own

    def on_worker_created(self, worker: Worker) -> None:
        faustx.hush_sigint(worker)
        super().on_worker_created(worker)


def print_json(document: Any) -> None:
    """`document` as JSON on stdout, plain (never wrapped or styled, whatever the terminal)."""
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


class worker(FaustWorker):  # the class name is the command's name
    """Run one worker: agents, tables, /metrics, /kpi and /healthz.

    Several workers share the partitions. The data dir (CX_DATA_DIR, default ./var/worker)
    is created with its parents.
    """

    def on_worker_created(self, worker: Worker) -> None:
        # Faust creates its data dir without parents: a fresh checkout or an installed package
        # has no var/ yet.
        Path(self.app.conf.datadir).mkdir(parents=True, exist_ok=True)
        install_kafka_log_filter(get_kafka_settings().bootstrap_servers)
        faustx.hush_sigint(worker)
        super().on_worker_created(worker)


@app.command(
    argument("action", type=click.Choice(["start", "stop", "status"])),
    option("--port", type=int, default=9092, show_default=True, help="client port on 127.0.0.1"),
    option("--controller-port", type=int, default=9093, show_default=True),
    option(
        "--home",
        type=click.Path(path_type=Path),
        default=Path("var") / "kafka",
        show_default=True,
        help="jars, data and logs of the local broker",
    ),
    base=Command,
)
async def kafka(self: AppCommand, action: str, port: int, controller_port: int, home: Path) -> None:
    """Start, stop or check a local Kafka broker (KRaft, no Docker).

    For development, demos and tests; idempotent. `start` returns once the broker accepts
    clients.
    """
    broker = LocalBroker(
        home=home.resolve(),
        port=port,
        controller_port=controller_port,
        partitions=get_settings().partitions,
    )
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if action == "start" and configured and configured != broker.address:
        click.echo(f"KAFKA_BOOTSTRAP_SERVERS={configured} points elsewhere: nothing started.")
        return
    try:
        if action == "start":
            began = time.monotonic()
            message = await asyncio.to_thread(broker.start)
            click.echo(f"{message} in {time.monotonic() - began:.1f}s")
        elif action == "stop":
            click.echo(await asyncio.to_thread(broker.stop))
        else:
            running, message = await asyncio.to_thread(broker.status)
            click.echo(message)
            if not running:
                sys.exit(3)
    except BrokerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@app.command(base=Command)
async def topics(self: AppCommand) -> None:
    """Create the contract's topics if they do not exist.

    Each with CX_PARTITIONS partitions (table changelogs must match them). Exit code 3 when
    Kafka fails.
    """
    quiet_kafka_logs(get_kafka_settings())
    with kafka_failures_exit("no topic created"):
        created = await ensure_topics(get_settings(), get_kafka_settings())
    click.echo(f"created: {', '.join(created)}" if created else "all topics exist")


@app.command(
    option(
        "--rate", type=float, default=50.0, show_default=True, help="surveys offered per second"
    ),
    option("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)"),
    option("--seed", type=int, default=42, show_default=True),
    base=Command,
)
async def simulate(self: AppCommand, rate: float, duration: float | None, seed: int) -> None:
    """Produce synthetic call-center traffic into the raw topics.

    Exit code 3, with one line on stderr, when Kafka fails.
    """
    from rich.progress import Progress, TimeElapsedColumn

    from stream.simulate import run_simulation

    settings, kafka_settings = get_settings(), get_kafka_settings()
    quiet_kafka_logs(kafka_settings)
    names = TopicNames.from_settings(settings)
    with kafka_failures_exit("messages already sent stay sent"):
        await ensure_topics(settings, kafka_settings)
        with Progress(*Progress.get_default_columns(), TimeElapsedColumn()) as progress:
            task = progress.add_task("offering surveys", total=duration)
            began = time.monotonic()

            def tick(sent: int) -> None:
                elapsed = time.monotonic() - began
                progress.update(task, completed=elapsed, description=f"{sent} messages sent")

            sent = await run_simulation(
                names, kafka_settings.aiokafka_kwargs(), rate, duration, seed, on_tick=tick
            )
    click.echo(f"sent {sent} messages")


@app.command(
    option(
        "--rate", type=float, default=50.0, show_default=True, help="surveys offered per second"
    ),
    base=Command,
)
async def demo(self: AppCommand, rate: float) -> None:
    """The main job: local Kafka, a worker, live traffic and KPIs.

    Starts what is missing (no local broker when KAFKA_BOOTSTRAP_SERVERS is set), prints a live
    KPI table; Ctrl-C stops everything it started.
    """
    from stream.demo import run_demo

    quiet_kafka_logs(get_kafka_settings())
    with kafka_failures_exit("the demo stopped"):
        await run_demo(rate)


@app.command(
    argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
    option(
        "--format",
        type=click.Choice(["auto", "jsonl", "csv"]),
        default="auto",
        show_default=True,
        help="input format (auto: .jsonl/.ndjson/.json are JSON Lines, .csv is CSV)",
    ),
    base=Command,
)
async def replay(self: AppCommand, file: Path, format: str) -> None:
    """Backfill historic responses (JSON Lines or CSV).

    Into cx.responses, as SurveyResponse v1 records.

    Event times are kept; invalid records are not sent but counted by reason, and the first
    ones listed by line, each with its own reason. Exit code 0 also with rejects, 1 when the
    file cannot be read, 2 when it does not exist (a usage error), 3 when Kafka fails.
    """
    from aiokafka.errors import KafkaError
    from rich.console import Console
    from rich.progress import MofNCompleteColumn, Progress, TimeElapsedColumn

    from stream.replay import (
        ReplayError,
        count_lines,
        detect_format,
        rejects_table,
        replay_file,
        summary_table,
    )

    settings, kafka_settings = get_settings(), get_kafka_settings()
    quiet_kafka_logs(kafka_settings)
    try:
        fmt = detect_format(file, format)
        total = count_lines(file)
        columns = (*Progress.get_default_columns()[:2], MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True)) as progress:
            task = progress.add_task(f"replay {file.name} ({fmt}) lines", total=total)
            summary = await replay_file(
                file,
                fmt,
                settings,
                kafka_settings,
                on_progress=lambda lines: progress.advance(task, lines),
            )
            progress.update(task, completed=total)
    except ReplayError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except (TimeoutError, KafkaError, OSError, RuntimeError) as exc:
        click.echo(
            f"error: Kafka failed ({type(exc).__name__}: {exc}); records already sent may be "
            "sent again: the same response_id counts once",
            err=True,
        )
        sys.exit(3)
    console = Console()
    if summary.ignored_columns:
        console.print(f"ignored CSV columns: {', '.join(summary.ignored_columns)}")
    topic = TopicNames.from_settings(settings).responses
    console.print(summary_table(summary, title=f"Replay of {file.name} into {topic}"))
    if (rejects := rejects_table(summary)) is not None:
        console.print(rejects)


def since_option(ctx: click.Context, param: click.Parameter, value: str) -> datetime:
    """--since read when the command line is: a bad value is a usage error (exit 2)."""
    from stream.deadletters import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r} is neither a duration (30m, 24h, 7d) nor an RFC 3339 time "
            "(2025-01-15T12:00Z)"
        ) from exc


@app.command(
    option("--reason", type=click.Choice(Reason.ALL), help="only this rejection reason"),
    option("--topic", help="only messages rejected from this topic (e.g. cx.raw.sms or raw.sms)"),
    option(
        "--since",
        default="24h",
        show_default=True,
        callback=since_option,
        help="a duration back from now (30m, 24h, 7d) or an RFC 3339 time",
    ),
    option(
        "--limit",
        type=click.IntRange(min=1),
        default=20,
        show_default=True,
        help="show the newest N matching dead letters",
    ),
    option("--raw", is_flag=True, help="show phone numbers and email addresses unmasked"),
    option("--json", "as_json", is_flag=True, help="print JSON (a list, oldest first)"),
    base=Command,
)
async def deadletters(
    self: AppCommand,
    reason: str | None,
    topic: str | None,
    since: datetime,
    limit: int,
    raw: bool,
    as_json: bool,
) -> None:
    """Show recent dead letters, phone numbers and emails masked.

    Reason, source topic/partition/offset, detail and the original bytes of each, newest last;
    one block per dead letter when the terminal is too narrow for the table. Reads
    cx.deadletter with a plain consumer: no consumer group, nothing committed. Exit code 3
    when Kafka fails.
    """
    from rich.console import Console

    from stream.deadletters import Filters, as_documents, print_letters, read_values, select

    settings, kafka_settings = get_settings(), get_kafka_settings()
    quiet_kafka_logs(kafka_settings)
    if topic is not None and not topic.startswith(settings.topic_prefix):
        topic = settings.topic(topic)
    name = TopicNames.from_settings(settings).deadletter
    with kafka_failures_exit("nothing read"):
        values = await read_values(name, since, kafka_settings.aiokafka_kwargs())
    letters = select(values, Filters(reason, topic), limit)
    if as_json or self.json:
        print_json(as_documents(letters, raw))
        return
    title = (
        f"{len(letters)} newest dead letters on {name} since {since.isoformat(timespec='seconds')}"
    )
    print_letters(Console(), letters, raw, title)


@app.command(
    option("--window", type=click.Choice(NAMES), default="1h",
           show_default=True),
    option("--channel", type=click.Choice(["ivr", "sms", "email", "web", "all"]), default="all",
           show_default=True),
    option("--queue", default="all", show_default=True, help="one segment's queue"),
    option("--agents", type=click.Choice(["worst", "best"]), help="rank agents instead"),
    option("--queues", type=click.Choice(["worst", "best"]), help="rank queues instead"),
    option("--sort", type=click.Choice(["nps", "csat", "csat_top2", "ces", "n"]), default="nps",
           show_default=True, help="the KPI agents or queues are ranked by"),
    option("--min-n", type=click.IntRange(min=0), default=30, show_default=True,
           help="rank only those with at least N answers to that KPI"),
    option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True),
    option("--url", help="the worker's base URL (default http://127.0.0.1:$CX_WEB_PORT)"),
    option("--json", "as_json", is_flag=True,
           help="print the worker's JSON (ratios 0..1, as their _ratio names say)"),
    base=Command,
)  # fmt: skip
async def kpi(
    self: AppCommand, window: str, channel: str, queue: str, agents: str | None,
    queues: str | None, sort: str, min_n: int, limit: int, url: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Show KPIs of a running worker, or rank its agents or queues.

    Reads the worker's /kpi (with the window's churn and SCI from /kpi/all), /kpi/agents and
    /kpi/queues (only the segments that worker owns, when several run). Tables show ratios in
    percent; --json the worker's own values. Exit code 1 when there is nothing to show (no
    answers in the segment, nobody with --min-n answers), 3 when no worker answers.
    """
    from rich.console import Console

    from stream.kpi_cli import (
        QUESTIONS,
        WorkerUnreachable,
        fetch,
        print_ranking,
        segment_table,
        why_empty,
        window_kpis,
    )

    base = url or f"http://127.0.0.1:{get_settings().web_port}"
    ranked = ("agents", agents) if agents else ("queues", queues) if queues else None
    as_json = as_json or self.json
    try:
        if ranked is None:
            segment = {"window": window, "channel": channel, "queue": queue}
            answer = fetch(base, "/kpi", segment)
            if "kpis" not in answer:
                why = answer.get("error") or json.dumps(answer)
                click.echo(f"error: {why}", err=True)
                sys.exit(1)
            extra = window_kpis(fetch(base, "/kpi/all", {}), window)
            if as_json:
                print_json(answer | {"window_kpis": extra})
                return
            Console().print(segment_table(answer, f"{window} channel={channel} queue={queue}",
                                          extra))  # fmt: skip
            return
        who, end = ranked
        params: dict[str, object] = {"window": window, "sort": sort, "min_n": min_n,
                                     "limit": limit,
                  "order": "asc" if end == "worst" else "desc"}  # fmt: skip
        if who == "queues":
            params["channel"] = channel
        answer = fetch(base, f"/kpi/{who}", params)
    except WorkerUnreachable as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    if "rows" not in answer:
        click.echo(f"error: {answer.get('error') or json.dumps(answer)}", err=True)
        sys.exit(1)
    if as_json:
        print_json(answer)
    if not answer["rows"]:
        click.echo(why_empty(who, sort, window, min_n, channel if who == "queues" else None),
                   err=True)  # fmt: skip
        sys.exit(1)
    if not as_json:
        title = (
            f"{end} {who} by {sort} over {window} "
            f"(n: answers to {QUESTIONS[sort]}, at least {min_n})"
        )
        print_ranking(Console(), answer, who[:-1], sort, title)


# Faust's commands for its own introspection and tooling; hidden from --help (still callable).
FAUST_INTERNAL = frozenset(
    {"agents", "clean-versions", "completion", "livecheck", "model", "models", "reset", "send",
     "tables"}
)  # fmt: skip
EXAMPLES = {
    "worker": "python -m stream worker -l info",
    "kafka": "python -m stream kafka start        # then: kafka status, kafka stop",
    "topics": "python -m stream topics",
    "simulate": "python -m stream simulate --rate 50 --duration 60",
    "demo": "python -m stream demo --rate 20",
    "replay": "python -m stream replay last-week.jsonl",
    "deadletters": "python -m stream deadletters --reason unparseable_reply --since 1h --limit 5",
    "kpi": "python -m stream kpi --agents worst --window 1h",
}
# Faust's options that do nothing useful for this project's commands; hidden from --help (they
# still parse). The app is fixed, its data dir is CX_DATA_DIR, the event loop asyncio.
HIDDEN_OPTIONS = frozenset(
    {"console_port", "blocking_timeout", "loop", "json", "datadir", "workdir", "debug", "app"}
)
HIDDEN_WORKER_OPTIONS = frozenset({"console_port", "blocking_timeout", "web_transport"})
HELP = """cx-stream: live customer-satisfaction KPIs from survey events in Kafka.

Settings come from the environment (KAFKA_BOOTSTRAP_SERVERS, CX_*; see the README).
Run `python -m stream COMMAND --help` for a command's options and an example.
"""


def tidy_cli() -> None:
    """`python -m stream --help` lists the project's commands, each with a one-line description
    and an example (click's `hidden`, `short_help` and `epilog` on Faust's click group)."""
    from faust.cli.faust import cli  # imports (registers) all of Faust's commands

    cli.help = HELP
    for param in cli.params:
        if isinstance(param, click.Option) and param.name in HIDDEN_OPTIONS:
            param.hidden = True
    for param in cli.commands["worker"].params:
        if isinstance(param, click.Option) and param.name in HIDDEN_WORKER_OPTIONS:
            param.hidden = True
    for name, command in cli.commands.items():
        if name in FAUST_INTERNAL:
            command.hidden = True
            continue
        command.short_help = (command.help or "").strip().splitlines()[0].rstrip(".")
        if name in EXAMPLES:
            # \b: click keeps the line as it is instead of rewrapping it
            command.epilog = f"\b\nExample:\n  {EXAMPLES[name]}"
