"""HTTP endpoints on the worker's web port."""

from __future__ import annotations

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream import faustx
from stream.exporter import KpiCollector
from stream.exporter.lag import ConsumerLagCollector
from stream.exporter.snapshot import SnapshotTimeCollector
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
    app.registry.register(SnapshotTimeCollector(model.snapshot_at))
    app.registry.register(ConsumerLagCollector(lambda: faustx.lag(app)))

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            body = generate_latest(app.registry)
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    _ = Metrics
