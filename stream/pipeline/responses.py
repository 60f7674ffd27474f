"""The agent on cx.responses: validate every canonical response, dead-letter what is unusable."""

from __future__ import annotations

import faust

from stream.channels import Accepted, adapt_canonical
from stream.pipeline.app import CxApp
from stream.pipeline.normalise import reject, safe_adapt, time_limits


def register_responses(app: CxApp) -> None:
    size = app.settings.max_message_bytes
    source = app.topics_by_name[app.names.responses]

    async def count_responses(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            outcome = safe_adapt(
                lambda raw, limits: adapt_canonical(raw, limits, size),
                event.value,
                time_limits(app),
            )
            if isinstance(outcome, Accepted):
                app.metrics.count(event.message.topic, "accepted")
            else:
                await reject(app, event, outcome)  # type: ignore[arg-type]

    app.agent(source, name="responses")(count_responses)
