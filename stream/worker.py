"""Assembles the worker: the app, its agents and its web endpoints. `python -m stream` runs it."""

from __future__ import annotations

from stream.pipeline.app import create_app
from stream.pipeline.group_windows import GroupWindows
from stream.pipeline.health import register_health
from stream.pipeline.ingest import register_ingest
from stream.pipeline.kpi_engine import KpiEngine
from stream.pipeline.kpi_parts import KpiParts
from stream.pipeline.kpi_views import register_kpi_views
from stream.pipeline.normalise import register_normalisers
from stream.pipeline.read_model import KpiReader, ReadModel
from stream.pipeline.web import register_web

app = create_app()
register_normalisers(app)
engine = KpiEngine(app)
groups = GroupWindows.of(app, engine)
model = ReadModel(app, KpiReader(engine, KpiParts(app, engine, groups), groups))
register_kpi_views(app, engine, model)
register_web(app, model)
register_ingest(app)
register_health(app)
