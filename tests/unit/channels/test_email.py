"""adapt_email: email/web survey answers (cx.raw.email) -> SurveyResponse."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from stream.channels import Accepted, Reason, Rejected, adapt_email
from stream.channels.email import parse_score
from stream.models import Scores, SurveyResponse
from tests.unit.channels.payloads import (
    AT_DT,
    EMAIL,
    LIMITS,
    assert_no_personal_data,
    assert_rejected,
    email_doc,
    encode,
    without,
)


def adapt(doc: dict[str, Any]) -> Any:
    return adapt_email(encode(doc), LIMITS)


def test_an_answer_becomes_the_exact_canonical_response() -> None:
    outcome = adapt(email_doc(comment="Quick and friendly."))

    assert outcome == Accepted(
        SurveyResponse(
            response_id="email:evt-1",
            channel="email",
            occurred_at=AT_DT,
            scores=Scores(nps=9),
            customer_id="cust-42",
            queue="billing",
            agent_id="agent-7",
            comment="Quick and friendly.",
        )
    )
    response = outcome.response
    assert (response.interaction_id, response.region, response.revision) == (None, None, 0)
    assert response.occurred_at.isoformat() == "2025-01-15T13:50:00+02:00"


def test_the_response_id_prefers_the_dispatch_id() -> None:
    with_dispatch = adapt(email_doc(dispatch_id="disp-9"))
    minimal = adapt(without(email_doc(), "recipient", "queue", "agent_id", "customer_id"))

    assert isinstance(with_dispatch, Accepted)
    assert with_dispatch.response.response_id == "email:disp-9"
    assert minimal == Accepted(
        SurveyResponse(
            response_id="email:evt-1", channel="email", occurred_at=AT_DT, scores=Scores(nps=9)
        )
    )


@pytest.mark.parametrize(
    ("score", "survey", "expected"),
    [
        (9, "nps", 9),
        (0, "nps", 0),
        (10, "nps", 10),
        ("9", "nps", 9),
        (" 9 ", "nps", 9),
        ("9.0", "nps", 9),
        ("9.00", "nps", 9),
        ("09", "nps", 9),
        ("\t10\n", "nps", 10),
        (5, "csat", 5),
        ("1", "csat", 1),
        (7, "ces", 7),
        ("4.0", "ces", 4),
    ],
)
def test_integer_scores_and_numeric_strings_are_accepted(
    score: int | str, survey: str, expected: int
) -> None:
    outcome = adapt(email_doc(score=score, survey=survey))
    assert isinstance(outcome, Accepted), outcome
    assert msgspec.to_builtins(outcome.response.scores) == {survey: expected}


@pytest.mark.parametrize(
    "score",
    [
        "",
        " ",
        "nine",
        "9.5",
        "9,0",
        ".0",
        "-1",
        "+9",
        "1e1",
        "0x9",
        "9 10",
        "\uff19",
        "\u0669",
        "NaN",
        "½",
    ],
)
def test_non_integer_strings_are_invalid(score: str) -> None:
    rejected = assert_rejected(adapt(email_doc(score=score)), Reason.INVALID_VALUE)
    assert rejected.detail == "score is not an integer"


@pytest.mark.parametrize(
    ("score", "survey"),
    [
        (11, "nps"),
        (-1, "nps"),
        ("11", "nps"),
        ("100.0", "nps"),
        (10**20, "nps"),
        (0, "csat"),
        (6, "csat"),
        ("6", "csat"),
        (0, "ces"),
        (8, "ces"),
    ],
)
def test_scores_off_the_scale_are_out_of_range(score: int | str, survey: str) -> None:
    rejected = assert_rejected(adapt(email_doc(score=score, survey=survey)), Reason.OUT_OF_RANGE)
    assert rejected.detail.startswith(f"{survey} score must be within")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"score": 9.0}, Reason.WRONG_TYPE),
        ({"score": 9.5}, Reason.WRONG_TYPE),
        ({"score": True}, Reason.WRONG_TYPE),
        ({"score": None}, Reason.WRONG_TYPE),
        ({"score": [9]}, Reason.WRONG_TYPE),
        ({"score": {"value": 9}}, Reason.WRONG_TYPE),
        ({"score": "9" * 17}, Reason.OUT_OF_RANGE),
        ({"survey": "thumbs"}, Reason.INVALID_VALUE),
        ({"survey": 1}, Reason.WRONG_TYPE),
        ({"comment": "x" * 2001}, Reason.OUT_OF_RANGE),
        ({"recipient": 42}, Reason.WRONG_TYPE),
        ({"recipient": EMAIL * 20}, Reason.OUT_OF_RANGE),
        ({"event_id": ""}, Reason.OUT_OF_RANGE),
        ({"dispatch_id": "d" * 121}, Reason.OUT_OF_RANGE),
    ],
)
def test_malformed_fields(fields: dict[str, Any], reason: str) -> None:
    outcome = adapt(email_doc(**fields))
    assert_rejected(outcome, reason)
    assert_no_personal_data(outcome, EMAIL)


@pytest.mark.parametrize("missing", ["event_id", "submitted_at", "survey", "score"])
def test_required_fields(missing: str) -> None:
    rejected = assert_rejected(adapt(without(email_doc(), missing)), Reason.MISSING_FIELD)
    assert f"`{missing}`" in rejected.detail


def test_the_recipient_never_reaches_the_response() -> None:
    outcome = adapt(email_doc())
    assert isinstance(outcome, Accepted)
    assert_no_personal_data(outcome, EMAIL)
    encoded = msgspec.json.encode(outcome.response)
    assert EMAIL.encode() not in encoded
    assert b"recipient" not in encoded


@pytest.mark.parametrize(
    "fields",
    [
        {"score": EMAIL},
        {"survey": EMAIL},
        {"survey": f'it\'s "{EMAIL}"'},
        {"submitted_at": EMAIL},
        {"score": 42},
        {"submitted_at": "2030-01-01T00:00:00Z"},
    ],
)
def test_rejections_never_repeat_the_recipient(fields: dict[str, Any]) -> None:
    outcome = adapt(email_doc(**fields))
    assert isinstance(outcome, Rejected)
    assert_no_personal_data(outcome, EMAIL)


@pytest.mark.parametrize(("score", "expected"), [(3, 3), ("3", 3), (" 3.0 ", 3), ("10", 10)])
def test_parse_score(score: int | str, expected: int) -> None:
    assert parse_score(score) == expected
