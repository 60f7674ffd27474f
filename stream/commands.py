"""The project's own CLI commands, registered on the Faust app (Faust's click-based CLI)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from aiokafka.errors import KafkaError
from faust.cli import AppCommand, argument, option
from faust.cli.worker import worker as FaustWorker
from mode import Worker

from stream.channels import Reason
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


@app.command()
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
)
async def replay(self: AppCommand, file: Path, format: str) -> None:
    """Backfill historic responses (JSON Lines or CSV).

    Into cx.responses, as SurveyResponse v1 records.

    Event times are kept; invalid records are not sent but counted by reason, with their line
    numbers. Exit code 0 also with rejects, 1 when the file cannot be read, 3 when Kafka fails.
    """
    from aiokafka.errors import KafkaError
    from rich.console import Console
    from rich.progress import MofNCompleteColumn, Progress, TimeElapsedColumn

    from stream.replay import ReplayError, count_lines, detect_format, replay_file, summary_table

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


@app.command(
    option("--reason", type=click.Choice(Reason.ALL), help="only this rejection reason"),
    option("--topic", help="only messages rejected from this topic (e.g. cx.raw.sms or raw.sms)"),
    option(
        "--since",
        default="24h",
        show_default=True,
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
)
async def deadletters(
    self: AppCommand, reason: str | None, topic: str | None, since: str, limit: int, raw: bool
) -> None:
    """Show recent dead letters, phone numbers and emails masked.

    Reason, source topic/partition/offset and the original bytes of each, newest last. Reads
    cx.deadletter with a plain consumer: no consumer group, nothing committed. Exit code 3
    when Kafka fails.
    """
    from rich.console import Console

    from stream.deadletters import Filters, parse_since, read_values, select, table

    settings, kafka_settings = get_settings(), get_kafka_settings()
    quiet_kafka_logs(kafka_settings)
    try:
        start = parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    if topic is not None and not topic.startswith(settings.topic_prefix):
        topic = settings.topic(topic)
    name = TopicNames.from_settings(settings).deadletter
    with kafka_failures_exit("nothing read"):
        values = await read_values(name, start, kafka_settings.aiokafka_kwargs())
    letters = select(values, Filters(reason, topic), limit)
    title = (
        f"{len(letters)} newest dead letters on {name} since {start.isoformat(timespec='seconds')}"
    )
    Console().print(table(letters, raw, title))


@app.command(
    option("--window", type=click.Choice(["5m", "1h", "24h", "7d"]), default="1h",
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
)  # fmt: skip
async def kpi(
    self: AppCommand, window: str, channel: str, queue: str, agents: str | None,
    queues: str | None, sort: str, min_n: int, limit: int, url: str | None,
) -> None:  # fmt: skip
    """Show KPIs of a running worker, or rank its agents or queues.

    Reads the worker's /kpi, /kpi/agents and /kpi/queues (only the segments that worker owns,
    when several run). Exit code 3 when no worker answers.
    """
    from rich.console import Console

    from stream.kpi_cli import WorkerUnreachable, fetch, ranking_table, segment_table

    base = url or f"http://127.0.0.1:{get_settings().web_port}"
    ranked = ("agents", agents) if agents else ("queues", queues) if queues else None
    try:
        if ranked is None:
            segment = {"window": window, "channel": channel, "queue": queue}
            answer = fetch(base, "/kpi", segment)
            if "kpis" not in answer:
                click.echo(answer.get("error", "no KPIs"), err=True)
                sys.exit(1)
            Console().print(segment_table(answer, f"{window} channel={channel} queue={queue}"))
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
    title = f"{end} {who} by {sort} over {window} (at least {min_n} answers)"
    Console().print(ranking_table(answer, who[:-1], title))


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
HELP = """cx-stream: live customer-satisfaction KPIs from survey events in Kafka.

Settings come from the environment (KAFKA_BOOTSTRAP_SERVERS, CX_*; see the README).
Run `python -m stream COMMAND --help` for a command's options and an example.
"""


def tidy_cli() -> None:
    """`python -m stream --help` lists the project's commands, each with a one-line description
    and an example (click's `hidden`, `short_help` and `epilog` on Faust's click group)."""
    from faust.cli.faust import cli  # imports (registers) all of Faust's commands

    cli.help = HELP
    for name, command in cli.commands.items():
        if name in FAUST_INTERNAL:
            command.hidden = True
            continue
        command.short_help = (command.help or "").strip().splitlines()[0].rstrip(".")
        if name in EXAMPLES:
            # \b: click keeps the line as it is instead of rewrapping it
            command.epilog = f"\b\nExample:\n  {EXAMPLES[name]}"
