"""The time of the read model's snapshot that a scrape's KPI gauges show."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


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
