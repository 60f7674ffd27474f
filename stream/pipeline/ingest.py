"""HTTP ingestion: POST /ingest/{ivr,sms,email,responses} produces call-center webhooks to Kafka.

Bearer-token auth (CX_INGEST_TOKEN, compared in constant time; without a token the endpoints
are disabled), a request size limit, and all-or-nothing validation: a body is one JSON object
or an array of them; if any object is unusable the reply is 422 with each one's reason and
nothing is produced. 202 means every object is in Kafka.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import orjson
from faust.web import Request, Response, View

from stream.channels import (
    Rejected,
)
from stream.pipeline.app import CxApp

# channel -> (topic attribute on TopicNames, id field used as the message key)
CHANNELS = {
    "ivr": ("raw_ivr", "call_id"),
    "sms": ("raw_sms", "message_id"),
    "email": ("raw_email", "event_id"),
    "responses": ("responses", "response_id"),
}


def error(view: View, status: int, reason: str, message: str, **extra: Any) -> Response:
    return view.json({"error": message, "reason": reason, **extra}, status=status)


def authorised(app: CxApp, request: Request) -> bool:
    expected = app.settings.ingest_token.get_secret_value()
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    # compare_digest: the time taken does not tell how much of a guess was right
    return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), expected.encode())


def register_ingest(app: CxApp) -> None:
    check = app.settings.channel_adapters()

    @app.page("/ingest/{channel}")
    class Ingest(View):
        async def post(self, request: Request, channel: str) -> Response:
            if not app.settings.ingest_token.get_secret_value():
                return error(self, 403, "disabled", "ingestion is disabled: set CX_INGEST_TOKEN")
            if not authorised(app, request):
                reply = error(self, 401, "unauthorized", "missing or wrong bearer token")
                reply.headers["WWW-Authenticate"] = 'Bearer realm="cx-ingest"'
                return reply
            if channel not in CHANNELS:
                return error(self, 404, "unknown_channel", f"use one of {sorted(CHANNELS)}")
            limit = app.settings.ingest_max_bytes
            declared = request.headers.get("Content-Length", "0")
            if declared.isdigit() and int(declared) > limit:
                return error(self, 413, "too_large", f"body larger than {limit} bytes")
            body = await request.read()
            if len(body) > limit:
                return error(self, 413, "too_large", f"body larger than {limit} bytes")
            try:
                document = orjson.loads(body)
            except orjson.JSONDecodeError:
                return error(self, 400, "not_json", "body is not valid JSON")
            items = document if isinstance(document, list) else [document]
            if not all(isinstance(item, dict) for item in items):
                return error(
                    self, 400, "not_object", "body must be an object or an array of objects"
                )
            return await ingest(self, app, channel, items, check[channel])

    _ = Ingest


async def ingest(
    view: View, app: CxApp, channel: str, items: list[dict[str, Any]], check: Any
) -> Response:
    limits = app.settings.time_limits()
    encoded = [orjson.dumps(item) for item in items]
    problems = [
        {"index": i, "reason": outcome.reason, "detail": outcome.detail}
        for i, raw in enumerate(encoded)
        if isinstance(outcome := check(raw, limits), Rejected)
    ]
    if problems:
        return error(view, 422, "invalid_items", "nothing was produced", items=problems)
    topic_attr, key_field = CHANNELS[channel]
    topic = app.topics_by_name[getattr(app.names, topic_attr)]
    futures = []
    for item, raw in zip(items, encoded, strict=True):
        key = item.get(key_field)
        futures.append(await topic.send(key=str(key).encode() if key else None, value=raw))
    await asyncio.gather(*futures)
    return view.json({"accepted": len(items)}, status=202)
