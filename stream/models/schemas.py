"""JSON Schema (draft 2020-12) of every v1 topic model, rendered from the msgspec structs.

`render_schemas()` is the single source of the files in schemas/; `python scripts/gen_schemas.py`
writes them and `--check` fails when they are stale. The output is deterministic: sorted keys,
two-space indent, trailing newline.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any

import msgspec

from stream.models.deadletter import DeadLetter
from stream.models.dispatch import Dispatch
from stream.models.followup import Followup
from stream.models.lifecycle import LifecycleEvent
from stream.models.raw import EmailAnswer, IvrCall, SmsReply
from stream.models.response import SurveyResponse
from stream.models.snapshot import KpiSnapshot

DRAFT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True, slots=True)
class TopicSchema:
    filename: str
    model: type[msgspec.Struct]
    topic: str
    key: str


# Topic names carry the default CX_TOPIC_PREFIX ("cx.").
TOPICS: tuple[TopicSchema, ...] = (
    TopicSchema("survey_response.v1.json", SurveyResponse, "cx.responses", "response_id"),
    TopicSchema("raw_ivr.v1.json", IvrCall, "cx.raw.ivr", "call_id"),
    TopicSchema("raw_sms.v1.json", SmsReply, "cx.raw.sms", "message_id"),
    TopicSchema("raw_email.v1.json", EmailAnswer, "cx.raw.email", "event_id"),
    TopicSchema("dispatch.v1.json", Dispatch, "cx.dispatches", "dispatch_id"),
    TopicSchema("lifecycle.v1.json", LifecycleEvent, "cx.lifecycle", "customer_id"),
    TopicSchema("deadletter.v1.json", DeadLetter, "cx.deadletter", "the rejected message's key"),
    TopicSchema("followup.v1.json", Followup, "cx.followups", "response_id"),
    TopicSchema(
        "kpi_snapshot.v1.json", KpiSnapshot, "cx.kpi.snapshots", "window|kind|channel|queue"
    ),
)


def _at_least_one_score() -> list[dict[str, Any]]:
    """What Scores.__post_init__ enforces: one answer that is present and not null."""
    present: dict[str, dict[str, Any]] = {
        "nps": {"type": "integer"},
        "csat": {"type": "integer"},
        "ces": {"type": "integer"},
        "thumbs": {"type": "boolean"},
        "csi": {"type": "object", "minProperties": 1},
        "acsi": {"type": "object"},
    }
    return [{"required": [name], "properties": {name: rule}} for name, rule in present.items()]


def _tidy(definitions: dict[str, Any]) -> None:
    for definition in definitions.values():
        if "description" in definition:
            definition["description"] = inspect.cleandoc(definition["description"])
        if definition.get("title") == "Scores":
            definition["anyOf"] = _at_least_one_score()


def model_schema(spec: TopicSchema) -> dict[str, Any]:
    """The schema of one topic: the model inlined at the root, nested structs under $defs."""
    generated = msgspec.json.schema(spec.model)
    definitions: dict[str, Any] = generated.get("$defs", {})
    _tidy(definitions)
    root = dict(definitions.pop(generated["$ref"].rsplit("/", 1)[-1]))
    model_name = root.pop("title")
    model_doc = root.pop("description", "")
    root["$schema"] = DRAFT
    root["title"] = "cx-stream/" + spec.filename.removesuffix(".json")
    root["description"] = (
        f"{model_name} v1 on topic {spec.topic} (message key: {spec.key}). {model_doc}"
    ).strip()
    if definitions:
        root["$defs"] = definitions
    return root


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_schemas() -> dict[str, str]:
    """filename -> file text, for every topic model."""
    return {spec.filename: render(model_schema(spec)) for spec in TOPICS}
