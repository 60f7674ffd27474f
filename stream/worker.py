"""Assembles the worker: the app, its agents and its web endpoints. `python -m stream` runs it."""

from __future__ import annotations

from stream.pipeline.app import create_app
from stream.pipeline.normalise import register_normalisers
from stream.pipeline.responses import register_responses
from stream.pipeline.web import register_web

app = create_app()
register_normalisers(app)
register_responses(app)
register_web(app)
