"""adapt_sms: free-text SMS replies (cx.raw.sms) -> SurveyResponse, an opt-out, or a rejection."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from stream.channels import Accepted, OptedOut, Reason, adapt_sms
from stream.channels.sms import is_opt_out, parse_reply
from stream.models import Scores, SurveyResponse
from tests.unit.channels.payloads import (
    AT_DT,
    LIMITS,
    PHONE,
    assert_no_personal_data,
    assert_rejected,
    encode,
    sms_doc,
    without,
)


def adapt(doc: dict[str, Any]) -> Any:
    return adapt_sms(encode(doc), LIMITS)


def test_a_reply_becomes_the_exact_canonical_response() -> None:
    outcome = adapt(sms_doc(body="9/10"))

    assert outcome == Accepted(
        SurveyResponse(
            response_id="sms:msg-1",
            channel="sms",
            occurred_at=AT_DT,
            scores=Scores(nps=9),
            customer_id="cust-42",
            queue="billing",
            agent_id="agent-7",
        )
    )
    response = outcome.response
    assert (response.interaction_id, response.region, response.comment) == (None, None, None)
    assert response.revision == 0
    assert response.occurred_at.isoformat() == "2025-01-15T13:50:00+02:00"


def test_the_response_id_prefers_the_dispatch_id() -> None:
    with_dispatch = adapt(sms_doc(dispatch_id="disp-9"))
    without_dispatch = adapt(without(sms_doc(), "queue", "agent_id", "customer_id"))

    assert isinstance(with_dispatch, Accepted)
    assert with_dispatch.response.response_id == "sms:disp-9"
    assert without_dispatch == Accepted(
        SurveyResponse(
            response_id="sms:msg-1", channel="sms", occurred_at=AT_DT, scores=Scores(nps=9)
        )
    )


@pytest.mark.parametrize(
    ("body", "survey", "score"),
    [
        ("9", "nps", 9),
        ("0", "nps", 0),
        ("10", "nps", 10),
        ("9/10", "nps", 9),
        ("10 / 10", "nps", 10),
        ("10!!", "nps", 10),
        ("I'd say 8", "nps", 8),
        ("  7  ", "nps", 7),
        ("nine", "nps", 9),
        ("NINE!", "nps", 9),
        ("neuf", "nps", 9),
        ("dix", "nps", 10),
        ("Dix !", "nps", 10),
        ("zéro", "nps", 0),
        ("9 - nine", "nps", 9),
        ("4/5", "csat", 4),
        ("5", "csat", 5),
        ("quatre", "csat", 4),
        ("one", "csat", 1),
        ("7", "ces", 7),
        ("sept", "ces", 7),
        # what people really send
        ("9 out of 10", "nps", 9),
        ("9 OUT OF 10!", "nps", 9),
        ("nine out of ten", "nps", 9),
        ("4 out of 5", "csat", 4),
        ("8 sur 10", "nps", 8),
        ("8 Sur 10 !", "nps", 8),
        ("neuf sur dix", "nps", 9),
        ("4 sur 5", "csat", 4),
        ("je mets 8", "nps", 8),
        ("Je mets 10", "nps", 10),
        ("je mets huit", "nps", 8),
        ("je mets un 8", "nps", 8),
        ("je mets une 7", "nps", 7),
        ("je mets 6 sur 7", "ces", 6),
        ("un", "csat", 1),
    ],
)
def test_readable_replies_are_scores(body: str, survey: str, score: int) -> None:
    outcome = adapt(sms_doc(body=body, survey=survey))
    assert isinstance(outcome, Accepted), outcome
    assert msgspec.to_builtins(outcome.response.scores) == {survey: score}


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "Stop",
        "stop",
        " stop. ",
        "ARRÊT",
        "Arrêt",
        "arret",
        "UNSUBSCRIBE",
        "STOP ALL",
        "Stop sending me these",
        "STOP please",
        "stop, I already answered 9",
        "Arrêtez",
        "arrêtez de m'envoyer ces messages",
        "ARRETEZ SVP",
        "Désabonnez-moi",
        "désinscrire",
        "...STOP!!!",
    ],
)
def test_stop_words_are_opt_outs(body: str) -> None:
    assert adapt(sms_doc(body=body)) == OptedOut("sms:msg-1")
    assert adapt(sms_doc(body=body, dispatch_id="disp-9")) == OptedOut("sms:disp-9")


@pytest.mark.parametrize(
    ("body", "survey"),
    [
        ("great", "nps"),
        ("", "nps"),
        ("   ", "nps"),
        ("7 or 8", "nps"),
        ("8.5", "nps"),
        ("8,5", "nps"),
        ("9/5", "nps"),
        ("9/10", "csat"),
        ("1234", "nps"),
        ("nine or ten", "nps"),
        ("10 out of 10 but I waited 2 hours", "nps"),
        ("9 out of 5", "nps"),
        ("8 sur 5", "nps"),
        ("9/10", "ces"),
        ("4 sur 10", "csat"),
        ("9 out of 10 or 8 sur 10", "nps"),
        (f"call me back on {PHONE}", "nps"),
    ],
)
def test_unreadable_replies_are_unparseable(body: str, survey: str) -> None:
    outcome = adapt(sms_doc(body=body, survey=survey))
    assert_rejected(outcome, Reason.UNPARSEABLE_REPLY)
    assert_no_personal_data(outcome, PHONE)


@pytest.mark.parametrize(
    ("body", "survey"),
    [
        ("11", "nps"),
        ("11/10", "nps"),
        ("999", "nps"),
        ("6", "csat"),
        ("0", "csat"),
        ("6/5", "csat"),
        ("ten", "csat"),
        ("8", "ces"),
        ("zero", "ces"),
        # negative: never the absolute value ("-10" is no promoter)
        ("-3", "nps"),
        ("-10", "nps"),
        ("- 3", "nps"),
        ("\u221210", "nps"),
        ("score: -2", "csat"),
    ],
)
def test_numbers_off_the_scale_are_out_of_range(body: str, survey: str) -> None:
    assert_rejected(adapt(sms_doc(body=body, survey=survey)), Reason.OUT_OF_RANGE)


@pytest.mark.parametrize("missing", ["message_id", "received_at", "from", "body", "survey"])
def test_required_fields(missing: str) -> None:
    rejected = assert_rejected(adapt(without(sms_doc(), missing)), Reason.MISSING_FIELD)
    assert f"`{missing}`" in rejected.detail


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"survey": "thumbs"}, Reason.INVALID_VALUE),
        ({"survey": "NPS"}, Reason.INVALID_VALUE),
        ({"body": 9}, Reason.WRONG_TYPE),
        ({"body": None}, Reason.WRONG_TYPE),
        ({"body": "9" * 1601}, Reason.OUT_OF_RANGE),
        ({"from": 33612345678}, Reason.WRONG_TYPE),
        ({"from": PHONE * 3}, Reason.OUT_OF_RANGE),
        ({"message_id": ""}, Reason.OUT_OF_RANGE),
        ({"dispatch_id": 5}, Reason.WRONG_TYPE),
    ],
)
def test_malformed_fields(fields: dict[str, Any], reason: str) -> None:
    outcome = adapt(sms_doc(**fields))
    assert_rejected(outcome, reason)
    assert_no_personal_data(outcome, PHONE, "33612345678")


def test_the_sender_number_never_reaches_the_response() -> None:
    outcome = adapt(sms_doc())
    assert isinstance(outcome, Accepted)
    assert_no_personal_data(outcome, PHONE)
    encoded = msgspec.json.encode(outcome.response)
    assert PHONE.encode() not in encoded
    assert b'"from"' not in encoded
    assert b"sender" not in encoded


def test_an_opt_out_carries_only_the_response_id() -> None:
    outcome = adapt(sms_doc(body="STOP"))
    assert outcome == OptedOut("sms:msg-1")
    assert_no_personal_data(outcome, PHONE)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", True),
        ("arrêter", True),
        ("stop please", True),
        ("Stop sending me these", True),
        ("Arrêtez", True),
        ("9", False),
        ("don't stop", False),
        ("9 stop", False),
        ("please stop", False),
        ("stopped by, 9", False),
        ("arrêtez" * 3, False),
        ("", False),
    ],
)
def test_is_opt_out(body: str, expected: bool) -> None:
    assert is_opt_out(body) is expected


def test_parse_reply_explains_without_repeating_the_body() -> None:
    rejected = parse_reply(f"{PHONE} 7 or 8", "nps")
    assert not isinstance(rejected, int)
    assert PHONE not in rejected.detail
