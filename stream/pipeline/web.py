"""HTTP endpoints on the worker's web port."""

from __future__ import annotations

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream import faustx
from stream.exporter import KpiCollector
from stream.exporter.lag import ConsumerLagCollector
from stream.exporter.snapshot import SnapshotExposition, SnapshotTimeCollector
from stream.pipeline.app import CxApp
from stream.pipeline.read_model import ReadModel


def register_web(app: CxApp, model: ReadModel) -> None:
    # The KPI gauges read the read model's snapshot: their text is made once per snapshot.
    kpis = CollectorRegistry(auto_describe=False)
    kpis.register(
        KpiCollector(
            lambda: model.snapshot.totals,
            top_k=app.settings.agent_top_k,
            queue_top_k=app.settings.queue_top_k,
            agent_rows=lambda: list(model.snapshot.top_agents),
            queue_members=lambda: model.snapshot.members("q"),
        )
    )
    kpis.register(SnapshotTimeCollector(model.snapshot_at))
    exposition = SnapshotExposition(kpis, lambda: model.snapshot)
    app.registry.register(ConsumerLagCollector(lambda: faustx.lag(app)))

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            body = exposition.text() + generate_latest(app.registry)
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    _ = Metrics
