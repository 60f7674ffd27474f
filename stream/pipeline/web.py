"""HTTP endpoints on the worker's web port."""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream.pipeline.app import CxApp


def register_web(app: CxApp) -> None:
    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            body = generate_latest(app.registry)
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    _ = Metrics

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            assigned = (
                sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
                if app.consumer
                else []
            )
            body: dict[str, Any] = {"status": "ok", "assigned": assigned}
            return self.json(body)

    _ = Health
