"""Property: whatever bytes arrive, every adapter returns an Outcome and never raises.

An Accepted response must survive a JSON round trip as a valid SurveyResponse, an OptedOut carries
a valid response id, and a Rejected carries a known reason and never repeats the input's
personal data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stream.channels import Accepted, OptedOut, Outcome, Reason, Rejected
from stream.models import SurveyResponse
from tests.unit.channels.payloads import ADAPTERS, DOCS, EMAIL, LIMITS, NOW, TIME_FIELD, encode

CHANNELS = sorted(ADAPTERS)
FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DEEP_ARRAYS = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECTS = b'{"a":' * 10_000 + b"1" + b"}" * 10_000


def check(outcome: Outcome) -> None:
    """The contract of an adapter's result, whatever the input."""
    if isinstance(outcome, Accepted):
        response = outcome.response
        assert isinstance(response, SurveyResponse)
        again = msgspec.json.decode(msgspec.json.encode(response), type=SurveyResponse)
        assert again == response
        assert msgspec.json.encode(again) == msgspec.json.encode(response)
    elif isinstance(outcome, OptedOut):
        assert outcome.response_id.startswith("sms:")
        assert 4 < len(outcome.response_id) <= 128
    else:
        assert isinstance(outcome, Rejected), outcome
        assert outcome.reason in Reason.ALL
        assert isinstance(outcome.detail, str)
        assert 0 < len(outcome.detail) <= 200


def run_all(raw: bytes) -> None:
    for channel in CHANNELS:
        check(ADAPTERS[channel](raw, LIMITS))


# -- documents ---------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-2, max_value=12)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["", "9", " 9 ", "9.0", "10#", "*", "timeout", "STOP", "neuf", "4/5"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.one_of(
    # Mostly around NOW, so that the adapters get past the time checks.
    st.timedeltas(min_value=-timedelta(days=8), max_value=timedelta(minutes=10)).map(
        lambda delta: NOW + delta
    ),
    # Any time at all (the year 1 and 9999 edges are kept clear of the offset arithmetic).
    st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31), timezones=st.just(UTC)),
).flatmap(lambda moment: offsets.map(lambda tz: moment.astimezone(tz).isoformat()))


def raw_json(value: Any) -> bytes:
    """Non-strict JSON: NaN and Infinity come out as the bare literals some producers send."""
    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


@st.composite
def almost_right(draw: st.DrawFn, channel: str) -> bytes:
    """A valid document of `channel` with one field replaced, removed or added."""
    doc = DOCS[channel]()
    doc[TIME_FIELD[channel]] = draw(moments)
    name = draw(st.sampled_from([*doc, "digits", "body", "score", "scores", "extra"]))
    action = draw(st.sampled_from(["replace", "replace", "remove", "text"]))
    if action == "remove":
        doc.pop(name, None)
    elif action == "text":
        doc[name] = draw(st.text(max_size=40))
    else:
        doc[name] = draw(json_values)
    return raw_json(doc)


@st.composite
def free_answers(draw: st.DrawFn, channel: str) -> bytes:
    """Valid envelopes whose answer part (DTMF map, SMS body, email score, scores) is arbitrary."""
    answer_text = st.text(max_size=30) | st.from_regex(r"[0-9#*/ .,!a-z]{0,12}", fullmatch=True)
    doc = DOCS[channel]()
    if channel == "ivr":
        keys = st.sampled_from(["1", "2", "3", "4", "", "x"]) | st.text(max_size=9)
        keypresses = st.from_regex(r"[0-9]#?|10#?|[*#]#?|timeout", fullmatch=True)
        doc["digits"] = draw(st.dictionaries(keys, keypresses | answer_text, max_size=5))
    elif channel == "sms":
        doc["body"] = draw(answer_text)
        doc["survey"] = draw(st.sampled_from(["nps", "csat", "ces"]))
    elif channel == "email":
        doc["score"] = draw(answer_text | st.integers() | st.integers(-1, 11))
        doc["survey"] = draw(st.sampled_from(["nps", "csat", "ces"]))
    else:
        ints = st.integers(min_value=-1, max_value=11)
        rating = st.fixed_dictionaries({"perceived": ints, "expected": ints})
        doc["scores"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "nps": ints,
                    "csat": ints,
                    "ces": ints,
                    "thumbs": st.booleans() | st.none(),
                    "csi": st.dictionaries(st.text(max_size=70), rating, max_size=3),
                    "acsi": st.fixed_dictionaries(
                        {"satisfaction": ints, "expectation": ints, "ideal": ints}
                    ),
                },
            )
        )
        doc["revision"] = draw(st.integers(min_value=-1))
    return raw_json(doc)


# -- properties --------------------------------------------------------------------------------


@FUZZ
@given(raw=st.binary(max_size=300))
@example(raw=DEEP_ARRAYS)
@example(raw=DEEP_OBJECTS)
@example(raw=b"\xef\xbb\xbf{}")
@example(raw=b'{"a": "\\ud800"}')
@example(raw=b"\x00")
def test_arbitrary_bytes(raw: bytes) -> None:
    run_all(raw)


@FUZZ
@given(value=json_values)
@example(value=[[[[[[[[[[[[]]]]]]]]]]]])
@example(value={"scores": float("nan")})
def test_arbitrary_json_documents(value: Any) -> None:
    run_all(raw_json(value))


@pytest.mark.parametrize("channel", CHANNELS)
@FUZZ
@given(data=st.data())
def test_almost_right_documents(channel: str, data: st.DataObject) -> None:
    check(ADAPTERS[channel](data.draw(almost_right(channel)), LIMITS))


@pytest.mark.parametrize("channel", CHANNELS)
@FUZZ
@given(data=st.data())
def test_valid_envelopes_with_arbitrary_answers(channel: str, data: st.DataObject) -> None:
    check(ADAPTERS[channel](data.draw(free_answers(channel)), LIMITS))


@pytest.mark.parametrize("channel", CHANNELS)
@FUZZ
@given(
    name=st.sampled_from(["channel", "survey", "score", "ended_at", "queue", "ani", "body"]),
    before=st.text(max_size=5),
    after=st.text(max_size=5),
)
@example(name="channel", before="it's \"", after="\"'")
@example(name="survey", before="'", after="' - at `$.x`")
def test_rejections_never_repeat_a_bad_value(
    channel: str, name: str, before: str, after: str
) -> None:
    doc = DOCS[channel]()
    doc[name] = f"{before}{EMAIL}{after}"
    outcome = ADAPTERS[channel](encode(doc), LIMITS)
    check(outcome)
    if isinstance(outcome, Rejected):
        assert EMAIL not in outcome.detail
        assert "jane.doe" not in outcome.detail
