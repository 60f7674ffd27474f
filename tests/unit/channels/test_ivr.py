"""adapt_ivr: post-call DTMF keypresses (cx.raw.ivr) -> SurveyResponse."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from stream.channels import Accepted, Reason, adapt_ivr
from stream.channels.ivr import parse_keypresses
from stream.models import Scores, SurveyResponse
from tests.unit.channels.payloads import (
    AT_DT,
    LIMITS,
    PHONE,
    assert_no_personal_data,
    assert_rejected,
    encode,
    ivr_doc,
    without,
)


def adapt(doc: dict[str, Any], **kwargs: Any) -> Any:
    return adapt_ivr(encode(doc), LIMITS, **kwargs)


def scores_of(digits: dict[str, str], **kwargs: Any) -> dict[str, Any]:
    outcome = adapt(ivr_doc(digits=digits), **kwargs)
    assert isinstance(outcome, Accepted), outcome
    return msgspec.to_builtins(outcome.response.scores)


def test_a_full_call_becomes_the_exact_canonical_response() -> None:
    outcome = adapt(ivr_doc())

    assert outcome == Accepted(
        SurveyResponse(
            response_id="ivr:call-1",
            channel="ivr",
            occurred_at=AT_DT,
            scores=Scores(nps=9, csat=4, ces=6),
            customer_id="cust-42",
            queue="billing",
            agent_id="agent-7",
        )
    )
    response = outcome.response
    assert response.interaction_id is None
    assert response.region is None
    assert response.revision == 0
    assert response.comment is None
    # The offset the IVR platform wrote is kept, not just the instant.
    assert response.occurred_at.isoformat() == "2025-01-15T13:50:00+02:00"


def test_a_minimal_call_has_no_optional_fields() -> None:
    doc = without(ivr_doc(digits={"1": "10"}), "ani", "queue", "agent_id", "customer_id")
    outcome = adapt(doc)

    assert outcome == Accepted(
        SurveyResponse(
            response_id="ivr:call-1", channel="ivr", occurred_at=AT_DT, scores=Scores(nps=10)
        )
    )


def test_the_response_id_is_prefixed_call_id() -> None:
    outcome = adapt(ivr_doc(call_id="x" * 120))
    assert isinstance(outcome, Accepted)
    assert outcome.response.response_id == "ivr:" + "x" * 120


@pytest.mark.parametrize(
    "skipped", ["", "*", "#", "timeout", "TIMEOUT", " ", " * ", "*#", "##", "timeout#"]
)
def test_unanswered_keys_are_skipped(skipped: str) -> None:
    assert scores_of({"1": skipped, "2": "4"}) == {"csat": 4}
    assert scores_of({"1": "9", "2": skipped, "3": skipped}) == {"nps": 9}


@pytest.mark.parametrize(
    ("dtmf", "value"),
    [("9#", 9), ("10#", 10), ("0#", 0), ("7##", 7), ("09", 9), ("00", 0), (" 8 ", 8)],
)
def test_a_trailing_hash_terminator_is_dropped(dtmf: str, value: int) -> None:
    assert scores_of({"1": dtmf}) == {"nps": value}


def test_unknown_question_keys_are_ignored() -> None:
    digits = {"1": "9", "4": "abc", "9": "99", "x": "*", "": "1", "12345678": "5"}
    assert scores_of(digits) == {"nps": 9}


def test_question_keys_follow_the_configured_mapping() -> None:
    questions = {"5": "csat", "6": "ces"}
    assert scores_of({"1": "9", "5": "5", "6": "7"}, questions=questions) == {"csat": 5, "ces": 7}


@pytest.mark.parametrize(
    "digits",
    [
        {"1": "11"},
        {"1": "99"},
        {"2": "0"},
        {"2": "6"},
        {"3": "0"},
        {"3": "8"},
        {"1": "9", "2": "7"},
    ],
)
def test_answers_off_the_scale_are_out_of_range(digits: dict[str, str]) -> None:
    rejected = assert_rejected(adapt(ivr_doc(digits=digits)), Reason.OUT_OF_RANGE)
    assert "score must be within" in rejected.detail


@pytest.mark.parametrize(
    "dtmf",
    [
        "9a",
        "a",
        "abc",
        "-1",
        "+9",
        "1.5",
        "1 0",
        "#9",
        "*9",
        "9*",
        "123",
        "\u0661",
        "\uff19",
        "t9",
        "#*",
    ],
)
def test_non_digit_answers_reject_the_whole_call(dtmf: str) -> None:
    assert_rejected(adapt(ivr_doc(digits={"1": "9", "2": dtmf})), Reason.INVALID_VALUE)


@pytest.mark.parametrize(
    "digits",
    [{}, {"1": "", "2": "*", "3": "#"}, {"1": "timeout"}, {"4": "9", "5": "3"}],
)
def test_a_call_without_any_answer_is_no_answer(digits: dict[str, str]) -> None:
    assert_rejected(adapt(ivr_doc(digits=digits)), Reason.NO_ANSWER)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"digits": ["9", "4"]}, Reason.WRONG_TYPE),
        ({"digits": "94"}, Reason.WRONG_TYPE),
        ({"digits": {"1": 9}}, Reason.WRONG_TYPE),
        ({"digits": {"1": None}}, Reason.WRONG_TYPE),
        ({"digits": {"1": "9" * 17}}, Reason.OUT_OF_RANGE),
        ({"digits": {"123456789": "9"}}, Reason.OUT_OF_RANGE),
        ({"call_id": 17}, Reason.WRONG_TYPE),
        ({"call_id": ""}, Reason.OUT_OF_RANGE),
        ({"call_id": "x" * 121}, Reason.OUT_OF_RANGE),
        ({"queue": ""}, Reason.OUT_OF_RANGE),
        ({"queue": "q" * 65}, Reason.OUT_OF_RANGE),
        ({"ani": 33612345678}, Reason.WRONG_TYPE),
        ({"ani": PHONE * 3}, Reason.OUT_OF_RANGE),
    ],
)
def test_malformed_fields(fields: dict[str, Any], reason: str) -> None:
    outcome = adapt(ivr_doc(**fields))
    assert_rejected(outcome, reason)
    assert_no_personal_data(outcome, PHONE, "33612345678")


@pytest.mark.parametrize("missing", ["call_id", "ended_at", "digits"])
def test_required_fields(missing: str) -> None:
    rejected = assert_rejected(adapt(without(ivr_doc(), missing)), Reason.MISSING_FIELD)
    assert missing in rejected.detail


def test_the_caller_number_never_reaches_the_response() -> None:
    outcome = adapt(ivr_doc())
    assert isinstance(outcome, Accepted)
    assert_no_personal_data(outcome, PHONE)
    assert PHONE.encode() not in msgspec.json.encode(outcome.response)
    assert not hasattr(outcome.response, "ani")


@pytest.mark.parametrize(
    "doc",
    [
        ivr_doc(digits={"1": "12"}),
        ivr_doc(digits={"1": "x"}),
        ivr_doc(digits={}),
        ivr_doc(digits={"1": PHONE}),
        ivr_doc(digits={"1": "9"}, ended_at="2030-01-01T00:00:00Z"),
        ivr_doc(ended_at=PHONE),
        ivr_doc(call_id=None),
    ],
)
def test_rejections_never_repeat_the_caller_number(doc: dict[str, Any]) -> None:
    outcome = adapt(doc)
    assert_no_personal_data(outcome, PHONE)


@pytest.mark.parametrize(
    ("dtmf", "expected"),
    [("", None), ("*", None), ("#", None), ("timeout", None), ("5", 5), ("5#", 5)],
)
def test_parse_keypresses(dtmf: str, expected: int | None) -> None:
    assert parse_keypresses(dtmf) == expected
