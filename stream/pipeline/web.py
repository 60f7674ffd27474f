"""HTTP endpoints on the worker's web port."""

from __future__ import annotations

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream import faustx
from stream.exporter import KpiCollector
from stream.exporter.lag import ConsumerLagCollector
from stream.pipeline.app import CxApp
from stream.pipeline.kpi_views import KpiReader


def register_web(app: CxApp, reader: KpiReader) -> None:
    app.registry.register(
        KpiCollector(
            reader.exported_rows,
            top_k=app.settings.agent_top_k,
            queue_top_k=app.settings.queue_top_k,
            agent_rows=reader.parts.agent_rows,
        )
    )
    app.registry.register(ConsumerLagCollector(lambda: faustx.lag(app)))

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            body = generate_latest(app.registry)
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    _ = Metrics
