"""Bad input every adapter handles the same way: bytes, JSON shape, size and event time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from stream.channels import Accepted, Reason, Rejected, TimeLimits
from stream.channels.outcome import Outcome
from tests.unit.channels.payloads import (
    ADAPTERS,
    DOCS,
    EMAIL,
    LIMITS,
    NOW,
    PHONE,
    REQUIRED,
    TIME_FIELD,
    assert_no_personal_data,
    assert_rejected,
    encode,
    without,
)

CHANNELS = sorted(ADAPTERS)


def run(channel: str, raw: bytes, limits: TimeLimits = LIMITS, **kwargs: Any) -> Outcome:
    return ADAPTERS[channel](raw, limits, **kwargs)


def valid(channel: str, /, **fields: Any) -> bytes:
    return encode(DOCS[channel](**fields))


def at(channel: str, moment: str) -> bytes:
    return valid(channel, **{TIME_FIELD[channel]: moment})


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_valid_document_is_accepted(channel: str) -> None:
    assert isinstance(run(channel, valid(channel)), Accepted)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe{}", b'{"a": "\xc3\x28"}', b"\x80", "{}".encode("utf-16")],
    ids=["bom", "bad-continuation", "lone-continuation", "utf16"],
)
def test_bytes_that_are_not_utf8(channel: str, raw: bytes) -> None:
    assert_rejected(run(channel, raw), Reason.NOT_UTF8)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "field", ["known", "ignored"], ids=["in-a-known-field", "in-an-ignored-field"]
)
def test_a_valid_document_with_one_bad_byte_is_not_utf8(channel: str, field: str) -> None:
    name = TIME_FIELD[channel] if field == "known" else "extra"
    raw = valid(channel, **{name: "@@"}).replace(b"@@", b"\xe9t\xe9")
    assert_rejected(run(channel, raw), Reason.NOT_UTF8)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b" ",
        b"{",
        b"hello",
        b"{'a': 1}",
        b'{"a": 1,}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b"NaN",
        b'{"a": 01}',
        b'{"a": "\\ud800"}',
    ],
)
def test_bytes_that_are_not_json(channel: str, raw: bytes) -> None:
    assert_rejected(run(channel, raw), Reason.NOT_JSON)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("garbage", [b"x", b"}", b" {}", b"\n{}"])
def test_a_valid_document_followed_by_garbage_is_not_json(channel: str, garbage: bytes) -> None:
    assert_rejected(run(channel, valid(channel) + garbage), Reason.NOT_JSON)


@pytest.mark.parametrize("channel", CHANNELS)
def test_nan_and_infinity_inside_a_valid_document(channel: str) -> None:
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        raw = valid(channel)[:-1] + b', "extra": ' + literal + b"}"
        assert_rejected(run(channel, raw), Reason.NOT_JSON)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("raw", [b"[]", b"null", b"1", b'"text"', b"true", b"1.5"])
def test_json_that_is_not_an_object(channel: str, raw: bytes) -> None:
    assert_rejected(run(channel, raw), Reason.NOT_OBJECT)


@pytest.mark.parametrize("channel", CHANNELS)
def test_an_array_holding_a_valid_object_is_not_an_object(channel: str) -> None:
    assert_rejected(run(channel, encode([DOCS[channel]()])), Reason.NOT_OBJECT)


@pytest.mark.parametrize("channel", CHANNELS)
def test_deep_nesting_is_rejected_not_raised(channel: str) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    assert_rejected(run(channel, deep), Reason.NOT_OBJECT)
    outcome = run(channel, valid(channel)[:-1] + b', "extra": ' + deep + b"}")
    assert_rejected(outcome, Reason.NOT_JSON)


@pytest.mark.parametrize(
    ("channel", "missing"),
    [(channel, name) for channel in CHANNELS for name in REQUIRED[channel]],
)
def test_missing_required_field(channel: str, missing: str) -> None:
    raw = encode(without(DOCS[channel](), missing))
    rejected = assert_rejected(run(channel, raw), Reason.MISSING_FIELD)
    assert rejected.detail == f"Object missing required field `{missing}`"


@pytest.mark.parametrize(
    ("channel", "field"),
    [(channel, name) for channel in CHANNELS for name in REQUIRED[channel]],
)
@pytest.mark.parametrize("value", [None, [], 1.5, False])
def test_required_field_of_the_wrong_type(channel: str, field: str, value: Any) -> None:
    outcome = run(channel, valid(channel, **{field: value}))
    rejected = assert_rejected(outcome, Reason.WRONG_TYPE)
    assert rejected.detail.endswith(f"- at `$.{field}`")


@pytest.mark.parametrize("channel", CHANNELS)
def test_oversized_messages(channel: str) -> None:
    raw = valid(channel)
    assert isinstance(run(channel, raw, max_bytes=len(raw)), Accepted)
    rejected = assert_rejected(run(channel, raw, max_bytes=len(raw) - 1), Reason.OVERSIZED)
    assert rejected.detail == f"message is {len(raw)} bytes, limit {len(raw) - 1}"


@pytest.mark.parametrize("channel", CHANNELS)
def test_oversized_is_checked_before_decoding(channel: str) -> None:
    huge = b"\xff" + b" " * 70_000
    assert_rejected(run(channel, huge), Reason.OVERSIZED)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "moment", ["2025-01-15T11:50:00", "2025-01-15 11:50:00", "2025-01-15", "11:50:00Z"]
)
def test_timestamps_without_offset_are_invalid(channel: str, moment: str) -> None:
    rejected = assert_rejected(run(channel, at(channel, moment)), Reason.INVALID_VALUE)
    assert rejected.detail.endswith(f"- at `$.{TIME_FIELD[channel]}`")


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "moment", ["not a time", "2025-13-01T00:00:00Z", "2025-01-15T25:00:00Z", "", "1736942400"]
)
def test_timestamps_that_are_not_rfc3339_are_invalid(channel: str, moment: str) -> None:
    assert_rejected(run(channel, at(channel, moment)), Reason.INVALID_VALUE)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "moment",
    [
        NOW.isoformat(),
        "2025-01-15T12:00:00Z",
        "2025-01-15T07:00:00-05:00",
        "2025-01-15T12:00:00.123456+00:00",
        (NOW + timedelta(minutes=5)).isoformat(),
        (NOW - timedelta(days=7, hours=1)).isoformat(),
    ],
)
def test_event_times_within_the_limits_are_accepted(channel: str, moment: str) -> None:
    assert isinstance(run(channel, at(channel, moment)), Accepted)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "moment",
    [
        (NOW + timedelta(minutes=5, seconds=1)).isoformat(),
        "2025-01-15T14:06:00+02:00",
        (NOW + timedelta(days=365)).isoformat(),
        "9999-12-31T23:59:59-23:59",
    ],
)
def test_event_times_more_than_five_minutes_ahead_are_future(channel: str, moment: str) -> None:
    assert_rejected(run(channel, at(channel, moment)), Reason.FUTURE_TIMESTAMP)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "moment",
    [
        (NOW - timedelta(days=7, hours=1, seconds=1)).isoformat(),
        (NOW - timedelta(days=30)).isoformat(),
        "0001-01-01T00:00:00+23:59",
    ],
)
def test_event_times_older_than_the_max_age_are_too_old(channel: str, moment: str) -> None:
    assert_rejected(run(channel, at(channel, moment)), Reason.TOO_OLD)


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_time_limits_are_configurable(channel: str) -> None:
    strict = TimeLimits(now=NOW, max_future=timedelta(0), max_age=timedelta(minutes=5))
    ahead = at(channel, (NOW + timedelta(seconds=1)).isoformat())
    behind = at(channel, (NOW - timedelta(minutes=6)).isoformat())
    assert_rejected(run(channel, ahead, strict), Reason.FUTURE_TIMESTAMP)
    assert_rejected(run(channel, behind, strict), Reason.TOO_OLD)
    assert isinstance(run(channel, at(channel, NOW.isoformat()), strict), Accepted)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "raw",
    [
        f'{{"x": "{PHONE} {EMAIL}"'.encode(),
        f'["{PHONE}", "{EMAIL}"]'.encode(),
        f'{{"x": "{EMAIL}", "y": NaN}}'.encode(),
        f'"{EMAIL}"'.encode(),
        f'{{"{EMAIL}": 1}}'.encode(),
    ],
)
def test_broken_documents_never_repeat_their_content(channel: str, raw: bytes) -> None:
    assert_no_personal_data(run(channel, raw), PHONE, EMAIL)


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_rejection_reason_is_a_known_code(channel: str) -> None:
    samples = [b"\xff", b"{", b"[]", encode({}), at(channel, "x"), at(channel, "2099-01-01T00:00Z")]
    for raw in samples:
        outcome = run(channel, raw)
        assert isinstance(outcome, Rejected), outcome
        assert outcome.reason in Reason.ALL
        assert outcome.detail
