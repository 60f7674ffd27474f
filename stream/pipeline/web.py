"""HTTP endpoints on the worker's web port."""

from __future__ import annotations

from collections.abc import Iterator

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from stream import faustx
from stream.exporter import KpiCollector
from stream.exporter.lag import ConsumerLagCollector
from stream.pipeline.app import CxApp
from stream.pipeline.read_model import ReadModel


def register_web(app: CxApp, model: ReadModel) -> None:
    app.registry.register(
        KpiCollector(
            lambda: model.snapshot.exported,
            top_k=app.settings.agent_top_k,
            queue_top_k=app.settings.queue_top_k,
            agent_rows=lambda: list(model.snapshot.top_agents),
        )
    )
    app.registry.register(SnapshotTimeCollector(model))
    app.registry.register(ConsumerLagCollector(lambda: faustx.lag(app)))

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            body = generate_latest(app.registry)
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    _ = Metrics


class SnapshotTimeCollector(Collector):
    """When the read model's snapshot that a scrape's KPI gauges come from was built: a scrape
    is one snapshot (the collectors run with no turn of the event loop in between), so its
    KPIs are those of this time; an age growing past CX_READ_REFRESH_SECONDS means the builds
    stopped."""

    def __init__(self, model: ReadModel) -> None:
        self.model = model

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshot = self.model.snapshot
        if snapshot.built:
            yield GaugeMetricFamily(
                "cx_kpi_snapshot_timestamp_seconds",
                "Unix time of the KPI snapshot that this scrape's KPI gauges show.",
                value=snapshot.at,
            )
