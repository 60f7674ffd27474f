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
