"""Consumer lag of the worker's assigned partitions, read from the Faust consumer per scrape."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class ConsumerLagCollector(Collector):
    """cx_consumer_lag{topic, partition}: messages between the last one read and the end."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "cx_consumer_lag", "Messages behind the end of an assigned partition.",
            labels=["topic", "partition"],
        )  # fmt: skip
        consumer = self.app._consumer
        if consumer is not None:
            read_offsets = getattr(consumer, "_read_offset", {})
            for tp in consumer.assignment():
                if tp.topic.endswith("-changelog"):
                    continue  # read only while recovering: not a backlog
                with contextlib.suppress(Exception):  # no highwater known yet
                    end = consumer.highwater(tp)
                    read = read_offsets.get(tp)
                    behind = end - (read + 1 if read is not None else 0)
                    family.add_metric([tp.topic, str(tp.partition)], max(0, behind))
        yield family
