"""The project's own CLI commands, registered on the Faust app (Faust's click-based CLI)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import click
from faust.cli import AppCommand, argument, option

from stream.localkafka import BrokerError, LocalBroker
from stream.pipeline.topics import TopicNames, ensure_topics
from stream.settings import PROJECT_ROOT, get_kafka_settings, get_settings
from stream.worker import app


@app.command(
    argument("action", type=click.Choice(["start", "stop", "status"])),
    option("--port", type=int, default=9092, show_default=True, help="client port on 127.0.0.1"),
    option("--controller-port", type=int, default=9093, show_default=True),
    option(
        "--home",
        type=click.Path(path_type=Path),
        default=PROJECT_ROOT / "var" / "kafka",
        show_default=True,
        help="jars, data and logs of the local broker",
    ),
)
async def kafka(self: AppCommand, action: str, port: int, controller_port: int, home: Path) -> None:
    """Start, stop or check a real local Apache Kafka broker (KRaft, no Docker)."""
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
    """Create the contract's topics (explicit partition counts) if they do not exist."""
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
    """Produce synthetic call-center traffic into the raw topics."""
    from rich.progress import Progress, TimeElapsedColumn

    from stream.simulate import run_simulation

    settings, kafka_settings = get_settings(), get_kafka_settings()
    await ensure_topics(settings, kafka_settings)
    names = TopicNames.from_settings(settings)
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
    """The main job: local Kafka, one worker, live traffic, /metrics and /kpi. Ctrl-C stops it."""
    from stream.demo import run_demo

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
    """Backfill historic SurveyResponse v1 records (JSON Lines or CSV) into cx.responses.

    Event times are kept; invalid records are not sent but counted by reason, with their line
    numbers. Exit code 0 also with rejects, 1 when the file cannot be read, 3 when Kafka fails.
    """
    from aiokafka.errors import KafkaError
    from rich.console import Console
    from rich.progress import MofNCompleteColumn, Progress, TimeElapsedColumn

    from stream.replay import ReplayError, count_lines, detect_format, replay_file, summary_table

    settings, kafka_settings = get_settings(), get_kafka_settings()
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
