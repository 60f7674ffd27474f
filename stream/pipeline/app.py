"""The Faust application: settings -> faust.App, topics declared with explicit partitions."""

from __future__ import annotations

import functools
import gc
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from stream import faustx
from stream.pipeline.metrics import PipelineMetrics
from stream.pipeline.topics import PARTIAL_RECORD_MAX_BYTES, TopicNames, ensure_topics
from stream.pipeline.transactions import last_record_ends
from stream.settings import KafkaSettings, Settings, get_kafka_settings, get_settings


class CxApp(faust.App):
    """faust.App plus the project's settings, topic handles and metrics registry."""

    settings: Settings
    kafka: KafkaSettings
    names: TopicNames
    registry: CollectorRegistry
    metrics: PipelineMetrics
    topics_by_name: dict[str, faust.TopicT]
    batch_router: faustx.BatchRouter

    async def on_start(self) -> None:
        # Create the contract's topics (explicit partition counts) before any consumer subscribes.
        await ensure_topics(self.settings, self.kafka)
        tune_gc(self.settings.gc_threshold)
        await super().on_start()

    async def on_stop(self) -> None:
        await super().on_stop()  # the consumer commits what is finished first
        transactions = getattr(self, "transactions", None)  # the KPI engine's (fencing)
        if transactions is not None:
            await transactions.stop()

    def raw_topic(self, name: str) -> faust.TopicT:
        """A topic of raw bytes (we decode ourselves, to dead-letter what does not parse)."""
        topic = self.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=self.settings.partitions,
        )
        self.topics_by_name[name] = topic
        return topic


def tune_gc(threshold: int) -> None:
    """Collect garbage less often, and never walk what the start-up built.

    A worker allocates thousands of short-lived objects per batch (decoded messages, states,
    entries), so with Python's default (a young collection every 700 allocations) the
    collector walked them again and again: `python -m bench.pure` spent more than half of its
    CPU time in it. Nearly all of them are freed by reference counting anyway; the cycles
    left are still collected, less often. `gc.freeze` moves the objects alive at start-up
    (modules, the app, its tables) out of every later collection.
    """
    if threshold <= 0:
        return
    _, middle, old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(threshold, middle, old)


def create_app(settings: Settings | None = None, kafka: KafkaSettings | None = None) -> CxApp:
    settings = settings or get_settings()
    kafka = kafka or get_kafka_settings()
    options: dict[str, Any] = {
        # The project's transport (stream.faustx): Faust's, with batch topics taken out of its
        # per-message path.
        "broker": faustx.broker_urls(kafka.bootstrap_servers.split(",")),
        # The contract's KAFKA_SECURITY_* settings; Faust passes them to its consumer, producer
        # and topic admin alike.
        "broker_credentials": kafka.faust_credentials(),
        "store": "rocksdb://",
        "datadir": str(settings.data_dir),
        "topic_partitions": settings.partitions,
        "topic_replication_factor": 1,
        "topic_allow_declare": True,
        "topic_disable_leader": True,
        "web_port": settings.web_port,
        "web_bind": settings.web_host,
        "web_host": "0.0.0.0",
        "producer_acks": -1,
        # Agents send a batch's records as produce batches (stream.faustx.send_batched).
        "producer_max_batch_size": 512 * 1024,
        "producer_max_request_size": PARTIAL_RECORD_MAX_BYTES,
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": settings.session_timeout,
        "broker_heartbeat_interval": min(3.0, settings.session_timeout / 5),
    }
    app = CxApp(settings.app_id, **options)
    faustx.install(app, faustx.FetchOptions(settings.fetch_min_bytes, settings.fetch_max_wait_ms))
    # Changelogs written in transactions end with a commit marker, which Faust's recovery
    # would wait for: it is told where their last records are (faustx's
    # BatchConsumer.highwaters).
    app.changelog_ends_hook = functools.partial(last_record_ends, kafka)  # type: ignore[attr-defined]
    app.settings = settings
    app.kafka = kafka
    app.names = TopicNames.from_settings(settings)
    app.registry = CollectorRegistry()
    app.metrics = PipelineMetrics(app.registry)
    app.topics_by_name = {}
    for name in app.names.all():
        app.raw_topic(name)
    return app
