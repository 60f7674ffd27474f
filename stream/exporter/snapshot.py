"""The time of the read model's snapshot that a scrape's KPI gauges show."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry


class SnapshotTimeCollector(Collector):
    """cx_kpi_snapshot_timestamp_seconds: a scrape is one snapshot (the collectors run with
    no turn of the event loop in between), so its KPIs are those of this time; an age growing
    past CX_READ_REFRESH_SECONDS means the builds stopped. Absent before the first build."""

    def __init__(self, at: Callable[[], float | None]) -> None:
        self.at = at

    def collect(self) -> Iterator[GaugeMetricFamily]:
        at = self.at()
        if at is not None:
            yield GaugeMetricFamily(
                "cx_kpi_snapshot_timestamp_seconds",
                "Unix time of the KPI snapshot that this scrape's KPI gauges show.",
                value=at,
            )


class SnapshotExposition:
    """The text of a registry whose collectors read one immutable snapshot, made once per
    snapshot: scrapes of the same snapshot (Prometheus servers in a pair, a test's polling)
    share it. With a flood of names the KPI gauges are ~20,000 series, whose formatting
    costs more than everything else in a scrape (bench/read_side.py)."""

    def __init__(self, registry: CollectorRegistry, snapshot: Callable[[], object]) -> None:
        self.registry = registry
        self.snapshot = snapshot
        self._made_for: object = None
        self._text = b""

    def text(self) -> bytes:
        current = self.snapshot()
        if current is not self._made_for:
            self._text = generate_latest(self.registry)
            self._made_for = current
        return self._text
