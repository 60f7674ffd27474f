"""schemas/*.json are generated from the msgspec models and agree with the contract.

Sample payloads are checked against both the schema (jsonschema, draft 2020-12) and the model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from stream.models import (
    DeadLetter,
    Dispatch,
    EmailAnswer,
    Followup,
    IvrCall,
    KpiSnapshot,
    LifecycleEvent,
    SmsReply,
    SurveyResponse,
)
from stream.models.schemas import DRAFT, TOPICS, render_schemas

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
REGENERATE = "schemas/ are stale: run `python scripts/gen_schemas.py` and commit the result"

EXPECTED = {
    "survey_response.v1.json": ("cx.responses", "response_id"),
    "raw_ivr.v1.json": ("cx.raw.ivr", "call_id"),
    "raw_sms.v1.json": ("cx.raw.sms", "message_id"),
    "raw_email.v1.json": ("cx.raw.email", "event_id"),
    "dispatch.v1.json": ("cx.dispatches", "dispatch_id"),
    "lifecycle.v1.json": ("cx.lifecycle", "customer_id"),
    "deadletter.v1.json": ("cx.deadletter", "key"),
    "followup.v1.json": ("cx.followups", "response_id"),
    "kpi_snapshot.v1.json": ("cx.kpi.snapshots", "window|kind|channel|queue"),
}
REQUIRED = {
    "survey_response.v1.json": ["response_id", "channel", "occurred_at", "scores"],
    "raw_ivr.v1.json": ["call_id", "ended_at", "digits"],
    "raw_sms.v1.json": ["message_id", "received_at", "from", "body", "survey"],
    "raw_email.v1.json": ["event_id", "submitted_at", "survey", "score"],
    "dispatch.v1.json": ["dispatch_id", "channel", "occurred_at"],
    "lifecycle.v1.json": ["event_id", "customer_id", "type", "occurred_at"],
    "deadletter.v1.json": [
        "version",
        "reason",
        "detail",
        "source",
        "original",
        "original_size",
        "rejected_at",
    ],
    "followup.v1.json": ["response_id", "occurred_at", "channel", "nps", "revision"],
    "kpi_snapshot.v1.json": ["window", "kind", "kpis", "at"],
}
AT = "2025-01-15T11:50:00+01:00"
VALID: dict[str, tuple[type[msgspec.Struct], list[dict[str, Any]]]] = {
    "survey_response.v1.json": (
        SurveyResponse,
        [
            {"response_id": "r1", "channel": "web", "occurred_at": AT, "scores": {"nps": 9}},
            {"response_id": "r2", "channel": "ivr", "occurred_at": AT, "scores": {"thumbs": False}},
            {
                "response_id": "r3",
                "channel": "email",
                "occurred_at": AT,
                "scores": {
                    "nps": 0,
                    "csat": 5,
                    "ces": 1,
                    "csi": {"speed": {"perceived": 3, "expected": 10}},
                    "acsi": {"satisfaction": 1, "expectation": 10, "ideal": 5},
                },
                "customer_id": "c1",
                "interaction_id": "i1",
                "queue": "billing",
                "agent_id": "a1",
                "region": "eu",
                "revision": 3,
                "comment": "ok",
                "unknown_extra": [1, 2],
            },
        ],
    ),
    "raw_ivr.v1.json": (
        IvrCall,
        [
            {"call_id": "c1", "ended_at": AT, "digits": {"1": "9", "2": "4#"}},
            {"call_id": "c2", "ended_at": AT, "digits": {}, "ani": "+33612345678", "queue": "q"},
        ],
    ),
    "raw_sms.v1.json": (
        SmsReply,
        [
            {
                "message_id": "m1",
                "received_at": AT,
                "from": "+33612345678",
                "body": "9/10",
                "survey": "nps",
            },
            {
                "message_id": "m2",
                "received_at": AT,
                "from": "+1555",
                "body": "STOP",
                "survey": "csat",
                "dispatch_id": "d1",
            },
        ],
    ),
    "raw_email.v1.json": (
        EmailAnswer,
        [
            {"event_id": "e1", "submitted_at": AT, "survey": "nps", "score": 9},
            {
                "event_id": "e2",
                "submitted_at": AT,
                "survey": "ces",
                "score": " 7.0 ",
                "recipient": "jane@example.com",
                "comment": "fine",
            },
        ],
    ),
    "dispatch.v1.json": (
        Dispatch,
        [{"dispatch_id": "d1", "channel": "sms", "occurred_at": AT, "queue": "billing"}],
    ),
    "lifecycle.v1.json": (
        LifecycleEvent,
        [{"event_id": "l1", "customer_id": "c1", "type": "cancelled", "occurred_at": AT}],
    ),
    "deadletter.v1.json": (
        DeadLetter,
        [
            {
                "version": 1,
                "reason": "not_json",
                "detail": "message is not a JSON document",
                "source": {"topic": "cx.raw.sms", "partition": 0, "offset": 12},
                "original": "e30=",
                "original_size": 2,
                "rejected_at": "2025-01-15T12:00:00+00:00",
                "original_key": None,
            }
        ],
    ),
    "followup.v1.json": (
        Followup,
        [
            {"response_id": "sms:d1", "occurred_at": AT, "channel": "sms", "nps": 3, "revision": 0},
            {
                "response_id": "ivr:c1",
                "occurred_at": AT,
                "channel": "ivr",
                "nps": 8,
                "revision": 2,
                "customer_id": "c1",
                "interaction_id": "i1",
                "queue": "billing",
                "agent_id": "a1",
                "retracted": True,
            },
        ],
    ),
    "kpi_snapshot.v1.json": (
        KpiSnapshot,
        [
            {
                "window": "1h",
                "kind": "q",
                "channel": "all",
                "queue": "billing",
                "kpis": {"nps": 12.5, "nps_responses": 8, "csat_top2_box_ratio": 0.75},
                "at": 1736941800.25,
            },
            {"window": "5m", "kind": "a", "agent_id": "agent-7", "kpis": {}, "at": 1736941800},
            {"window": "7d", "kind": "churn", "kpis": {"churn_ratio": 0.02}, "at": 1736941800},
            {"window": "24h", "kind": "sci", "kpis": {"sci_secure_ratio": 0.4}, "at": 1.0},
        ],
    ),
}
INVALID: dict[str, list[dict[str, Any]]] = {
    "survey_response.v1.json": [
        {"response_id": "r", "channel": "web", "occurred_at": AT, "scores": {}},
        {"response_id": "r", "channel": "web", "occurred_at": AT, "scores": {"nps": None}},
        {"response_id": "r", "channel": "web", "occurred_at": AT, "scores": {"csi": {}}},
        {"response_id": "r", "channel": "web", "occurred_at": AT, "scores": {"nps": 11}},
        {"response_id": "r", "channel": "fax", "occurred_at": AT, "scores": {"nps": 1}},
        {"response_id": "", "channel": "web", "occurred_at": AT, "scores": {"nps": 1}},
        {"channel": "web", "occurred_at": AT, "scores": {"nps": 1}},
        {"response_id": "r", "channel": "web", "occurred_at": AT, "scores": {"csat": True}},
        {
            "response_id": "r",
            "channel": "web",
            "occurred_at": AT,
            "scores": {"thumbs": True},
            "revision": -1,
        },
    ],
    "raw_sms.v1.json": [
        {"message_id": "m", "received_at": AT, "from": "x", "body": "9"},
        {"message_id": "m", "received_at": AT, "from": "x", "body": 9, "survey": "nps"},
    ],
    "raw_email.v1.json": [
        {"event_id": "e", "submitted_at": AT, "survey": "nps", "score": 9.5},
        {"event_id": "e", "submitted_at": AT, "survey": "nps", "score": None},
    ],
    "raw_ivr.v1.json": [{"call_id": "c", "ended_at": AT, "digits": {"1": 9}}],
    "lifecycle.v1.json": [
        {"event_id": "l", "customer_id": "c", "type": "paused", "occurred_at": AT}
    ],
    "followup.v1.json": [
        {"response_id": "r", "occurred_at": AT, "channel": "web", "nps": 11, "revision": 0},
        {"response_id": "r", "occurred_at": AT, "channel": "fax", "nps": 3, "revision": 0},
        {"response_id": "r", "occurred_at": AT, "channel": "web", "nps": 3, "revision": -1},
        {"response_id": "r", "occurred_at": AT, "channel": "web", "nps": 3},
        {
            "response_id": "r",
            "occurred_at": AT,
            "channel": "web",
            "nps": 3,
            "revision": 1,
            "retracted": "yes",
        },
    ],
    "kpi_snapshot.v1.json": [
        {"window": "2h", "kind": "q", "kpis": {}, "at": 1.0},
        {"window": "1h", "kind": "x", "kpis": {}, "at": 1.0},
        {"window": "1h", "kind": "q", "kpis": {"nps": "high"}, "at": 1.0},
        {"window": "1h", "kind": "q", "kpis": {"NPS!": 1.0}, "at": 1.0},
        {"window": "1h", "kind": "q", "channel": "fax", "kpis": {}, "at": 1.0},
        {"window": "1h", "kind": "q", "kpis": {}},
    ],
}


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return document


# -- a small validator for the keywords msgspec emits --------------------------------------------

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = load(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_one_schema_per_topic_model() -> None:
    assert sorted(render_schemas()) == sorted(EXPECTED)
    assert [spec.filename for spec in TOPICS] == list(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_checked_in_schema_is_up_to_date(name: str) -> None:
    path = SCHEMAS / name
    assert path.is_file(), f"{path} is missing; {REGENERATE}"
    assert path.read_text(encoding="utf-8") == render_schemas()[name], REGENERATE


def test_rendering_is_deterministic() -> None:
    first = render_schemas()
    assert first == render_schemas()
    for name, text in first.items():
        assert text.endswith("}\n") and not text.endswith("\n\n"), name
        document = json.loads(text)
        assert text == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_schema_header_names_topic_and_key(name: str) -> None:
    schema = load(name)
    topic, key = EXPECTED[name]
    assert schema["$schema"] == DRAFT
    assert schema["title"] == "cx-stream/" + name.removesuffix(".json")
    assert f"topic {topic} " in schema["description"]
    assert key in schema["description"]
    assert schema["type"] == "object"


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_required_fields_follow_the_contract(name: str) -> None:
    schema = load(name)
    assert schema["required"] == REQUIRED[name]
    assert set(schema["required"]) <= set(schema["properties"])


def test_survey_response_fields_follow_the_contract() -> None:
    schema = load("survey_response.v1.json")
    props, defs = schema["properties"], schema["$defs"]
    assert props["channel"]["enum"] == ["email", "ivr", "sms", "web"]
    assert props["occurred_at"]["format"] == "date-time"
    assert props["response_id"] == {"type": "string", "minLength": 1, "maxLength": 128}
    assert props["revision"] == {"type": "integer", "minimum": 0, "default": 0}
    for label in ("customer_id", "interaction_id", "queue", "agent_id", "region"):
        assert {"type": "string", "minLength": 1, "maxLength": 64} in props[label]["anyOf"]
    assert {"type": "string", "maxLength": 2000} in props["comment"]["anyOf"]
    scores = defs["Scores"]["properties"]
    for kind, (low, high) in {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}.items():
        assert {"type": "integer", "minimum": low, "maximum": high} in scores[kind]["anyOf"]
    assert len(defs["Scores"]["anyOf"]) == 6, "at least one answer is required"
    assert "ani" not in props and "from" not in props and "recipient" not in props


def test_followup_documents_the_retraction() -> None:
    schema = load("followup.v1.json")
    assert schema["properties"]["retracted"] == {"type": "boolean", "default": False}
    assert "retracted` true" in schema["description"]
    assert "comment" not in schema["properties"]


def test_the_followup_the_engine_encodes_matches_its_schema() -> None:
    record = Followup("email:d1", AT, "email", 6, 1, queue="billing", retracted=True)
    document = json.loads(msgspec.json.encode(record))
    validator("followup.v1.json").validate(document)
    assert document["retracted"] is True
    assert "customer_id" not in document, "omit_defaults: absent ids are left out"


def test_raw_sms_uses_the_wire_name_of_the_sender() -> None:
    props = load("raw_sms.v1.json")["properties"]
    assert "from" in props and "sender" not in props
    assert props["survey"]["enum"] == ["ces", "csat", "nps"]


def test_raw_email_score_is_an_int_or_a_string() -> None:
    score = load("raw_email.v1.json")["properties"]["score"]
    assert {option["type"] for option in score["anyOf"]} == {"integer", "string"}


@pytest.mark.parametrize(
    ("name", "payload"),
    [(name, payload) for name, (_, payloads) in VALID.items() for payload in payloads],
)
def test_valid_payloads_match_schema_and_model(name: str, payload: dict[str, Any]) -> None:
    validator(name).validate(payload)
    model, _ = VALID[name]
    msgspec.json.decode(json.dumps(payload).encode(), type=model)


@pytest.mark.parametrize(
    ("name", "payload"),
    [(name, payload) for name, payloads in INVALID.items() for payload in payloads],
)
def test_invalid_payloads_fail_schema_and_model(name: str, payload: dict[str, Any]) -> None:
    assert not validator(name).is_valid(payload)
    model = VALID[name][0]
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(json.dumps(payload).encode(), type=model)


def test_the_script_check_mode_passes(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "gen_schemas.py"
    checked = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr

    stale = subprocess.run(
        [sys.executable, str(script), "--check", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert stale.returncode == 1
    assert "gen_schemas.py" in stale.stderr

    written = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert written.returncode == 0, written.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(EXPECTED)
    (tmp_path / "dispatch.v1.json").write_text("{}\n")
    again = subprocess.run(
        [sys.executable, str(script), "--check", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 1
    assert "dispatch.v1.json" in again.stderr
