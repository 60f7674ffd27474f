"""Consumer lag of the worker's batch partitions, from the offsets its agents finished."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from faust.types import TP
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class ConsumerLagCollector(Collector):
    """cx_consumer_lag{topic, partition}: records between what this worker finished and the
    partition's end (0 once it has drained it)."""

    def __init__(self, lag: Callable[[], Mapping[TP, int]]) -> None:
        self.lag = lag

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "cx_consumer_lag", "Records behind the end of an assigned input partition.",
            labels=["topic", "partition"],
        )  # fmt: skip
        for tp, behind in sorted(self.lag().items()):
            family.add_metric([tp.topic, str(tp.partition)], behind)
        yield family
