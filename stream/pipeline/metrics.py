"""Process-level counters. KPI gauges are read from the tables at scrape time (stream/exporter)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics

# `_created` series double the output and no dashboard or alert reads them.
disable_created_metrics()

OUTCOMES = ("accepted", "duplicate", "invalid", "opted_out", "revised")


class PipelineMetrics:
    """Counters of one worker, registered on the registry passed in."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events = Counter(
            "cx_events",
            "Input messages by topic and outcome (accepted|duplicate|invalid|opted_out|revised).",
            ["topic", "outcome"],
            registry=registry,
        )
        self.deadletters = Counter(
            "cx_deadletters",
            "Messages written to the dead-letter topic, by source topic and reason.",
            ["topic", "reason"],
            registry=registry,
        )

        self.records = Counter(
            "cx_kafka_records_written",
            "Kafka records this worker produced on behalf of its input, by topic (internal "
            "partials, table changelogs, follow-ups, re-published mis-keyed messages).",
            ["topic"],
            registry=registry,
        )

    def written(self, topic: str, n: int) -> None:
        if n:
            self.records.labels(topic).inc(n)

    def count(self, topic: str, outcome: str, n: int = 1) -> None:
        self.events.labels(topic, outcome).inc(n)
