"""adapt_canonical: SurveyResponse v1 sent directly to cx.responses, validated like a channel."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from stream.channels import Accepted, Reason, Rejected, adapt_canonical
from stream.models import Acsi, CsiRating, Scores, SurveyResponse
from tests.unit.channels.payloads import (
    AT,
    AT_DT,
    EMAIL,
    LIMITS,
    PHONE,
    assert_no_personal_data,
    assert_rejected,
    canonical_doc,
    encode,
    without,
)


def adapt(doc: dict[str, Any]) -> Any:
    return adapt_canonical(encode(doc), LIMITS)


FULL: dict[str, Any] = {
    "response_id": "resp-1",
    "channel": "web",
    "occurred_at": AT,
    "scores": {
        "nps": 10,
        "csat": 5,
        "ces": 7,
        "thumbs": True,
        "csi": {"speed": {"perceived": 8, "expected": 9}},
        "acsi": {"satisfaction": 9, "expectation": 8, "ideal": 10},
    },
    "customer_id": "cust-42",
    "interaction_id": "int-7",
    "queue": "billing",
    "agent_id": "agent-7",
    "region": "eu-west",
    "revision": 2,
    "comment": "Très bien 👍",
}


def test_a_full_response_is_accepted_field_for_field() -> None:
    outcome = adapt(FULL)

    assert outcome == Accepted(
        SurveyResponse(
            response_id="resp-1",
            channel="web",
            occurred_at=AT_DT,
            scores=Scores(
                nps=10,
                csat=5,
                ces=7,
                thumbs=True,
                csi={"speed": CsiRating(perceived=8, expected=9)},
                acsi=Acsi(satisfaction=9, expectation=8, ideal=10),
            ),
            customer_id="cust-42",
            interaction_id="int-7",
            queue="billing",
            agent_id="agent-7",
            region="eu-west",
            revision=2,
            comment="Très bien 👍",
        )
    )
    assert outcome.response.occurred_at.isoformat() == "2025-01-15T13:50:00+02:00"


def test_a_minimal_response_gets_the_defaults() -> None:
    outcome = adapt(canonical_doc(scores={"thumbs": False}))
    assert outcome == Accepted(
        SurveyResponse(
            response_id="resp-1", channel="web", occurred_at=AT_DT, scores=Scores(thumbs=False)
        )
    )
    assert outcome.response.revision == 0


@pytest.mark.parametrize("channel", ["ivr", "sms", "email", "web"])
def test_every_channel_is_accepted(channel: str) -> None:
    outcome = adapt(canonical_doc(channel=channel))
    assert isinstance(outcome, Accepted)
    assert outcome.response.channel == channel


def test_unknown_extra_fields_are_ignored() -> None:
    doc = canonical_doc(extra={"nested": [1, 2]}, version=1, scores={"nps": 3, "future_kpi": 1})
    outcome = adapt(doc)
    assert outcome == Accepted(
        SurveyResponse(response_id="resp-1", channel="web", occurred_at=AT_DT, scores=Scores(nps=3))
    )


def test_personal_fields_sent_by_a_producer_are_dropped() -> None:
    outcome = adapt(canonical_doc(ani=PHONE, recipient=EMAIL, sender=PHONE, **{"from": PHONE}))
    assert isinstance(outcome, Accepted)
    assert_no_personal_data(outcome, PHONE, EMAIL)
    encoded = msgspec.json.encode(outcome.response)
    for name in (b"ani", b"from", b"recipient", b"sender", PHONE.encode(), EMAIL.encode()):
        assert name not in encoded


def test_the_response_roundtrips_through_json() -> None:
    outcome = adapt(FULL)
    assert isinstance(outcome, Accepted)
    encoded = msgspec.json.encode(outcome.response)
    assert msgspec.json.decode(encoded, type=SurveyResponse) == outcome.response
    assert adapt_canonical(encoded, LIMITS) == outcome


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"channel": "phone"}, Reason.INVALID_VALUE),
        ({"channel": "WEB"}, Reason.INVALID_VALUE),
        ({"channel": 1}, Reason.WRONG_TYPE),
        ({"scores": {}}, Reason.INVALID_VALUE),
        ({"scores": {"csi": {}}}, Reason.INVALID_VALUE),
        ({"scores": {"nps": None}}, Reason.INVALID_VALUE),
        ({"scores": []}, Reason.WRONG_TYPE),
        ({"scores": {"nps": "9"}}, Reason.WRONG_TYPE),
        ({"scores": {"nps": 9.0}}, Reason.WRONG_TYPE),
        ({"scores": {"nps": True}}, Reason.WRONG_TYPE),
        ({"scores": {"thumbs": 1}}, Reason.WRONG_TYPE),
        ({"scores": {"nps": 11}}, Reason.OUT_OF_RANGE),
        ({"scores": {"nps": -1}}, Reason.OUT_OF_RANGE),
        ({"scores": {"csat": 0}}, Reason.OUT_OF_RANGE),
        ({"scores": {"csat": 6}}, Reason.OUT_OF_RANGE),
        ({"scores": {"ces": 0}}, Reason.OUT_OF_RANGE),
        ({"scores": {"ces": 8}}, Reason.OUT_OF_RANGE),
        ({"scores": {"csi": {"a": {"perceived": 0, "expected": 5}}}}, Reason.OUT_OF_RANGE),
        ({"scores": {"csi": {"a": {"perceived": 5}}}}, Reason.MISSING_FIELD),
        ({"scores": {"csi": {"": {"perceived": 5, "expected": 5}}}}, Reason.OUT_OF_RANGE),
        ({"scores": {"acsi": {"satisfaction": 11, "expectation": 1, "ideal": 1}}}, "out_of_range"),
        ({"scores": {"acsi": {"satisfaction": 1, "expectation": 1}}}, Reason.MISSING_FIELD),
        ({"response_id": ""}, Reason.OUT_OF_RANGE),
        ({"response_id": "r" * 129}, Reason.OUT_OF_RANGE),
        ({"response_id": 12}, Reason.WRONG_TYPE),
        ({"queue": ""}, Reason.OUT_OF_RANGE),
        ({"region": "r" * 65}, Reason.OUT_OF_RANGE),
        ({"revision": -1}, Reason.OUT_OF_RANGE),
        ({"revision": "2"}, Reason.WRONG_TYPE),
        ({"comment": "c" * 2001}, Reason.OUT_OF_RANGE),
        ({"occurred_at": "yesterday"}, Reason.INVALID_VALUE),
        ({"occurred_at": 1736942400}, Reason.WRONG_TYPE),
    ],
)
def test_invalid_responses(fields: dict[str, Any], reason: str) -> None:
    assert_rejected(adapt(canonical_doc(**fields)), reason)


def test_limits_are_inclusive() -> None:
    doc = canonical_doc(response_id="r" * 128, comment="c" * 2000, queue="q" * 64)
    assert isinstance(adapt(doc), Accepted)


@pytest.mark.parametrize("missing", ["response_id", "channel", "occurred_at", "scores"])
def test_required_fields(missing: str) -> None:
    rejected = assert_rejected(adapt(without(canonical_doc(), missing)), Reason.MISSING_FIELD)
    assert f"`{missing}`" in rejected.detail


@pytest.mark.parametrize(
    "channel",
    [
        EMAIL,
        f"mailto:{EMAIL}",
        f"{EMAIL}'",
        f"it's {EMAIL}",
        f'it\'s "{EMAIL}"',
        f'"{EMAIL}" isn\'t a channel',
        f"{EMAIL}\n - at `$.x`",
        f"' {EMAIL} '",
        f"{'x' * 300} {EMAIL}",
    ],
)
def test_a_bad_value_is_never_repeated_in_the_detail(channel: str) -> None:
    outcome = adapt(canonical_doc(channel=channel))
    rejected = assert_rejected(outcome, Reason.INVALID_VALUE)
    assert_no_personal_data(outcome, EMAIL, "jane.doe", "example.com")
    assert rejected.detail.endswith("- at `$.channel`")


@pytest.mark.parametrize(
    "fields",
    [
        {"occurred_at": EMAIL},
        {"scores": {"csi": {EMAIL: {"perceived": 11, "expected": 1}}}},
        {"scores": {"csi": {EMAIL: "x"}}},
        {"scores": {"csi": {EMAIL * 4: {"perceived": 1, "expected": 1}}}},
        {"customer_id": EMAIL * 4},
        {"revision": EMAIL},
    ],
)
def test_other_bad_values_are_never_repeated(fields: dict[str, Any]) -> None:
    outcome = adapt(canonical_doc(**fields))
    assert isinstance(outcome, Rejected)
    assert_no_personal_data(outcome, EMAIL, "jane.doe")
