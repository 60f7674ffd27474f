"""`deadletters`: masking of phone numbers and emails, --since, filters, the shown row, the
narrow (one block per letter) and wide layouts, --json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from rich.console import Console

from stream.deadletters import (
    Filters,
    as_documents,
    mask_personal_data,
    parse_since,
    print_letters,
    select,
    short_time,
    shown,
)
from stream.models import DeadLetter
from stream.pipeline.deadletter import dead_letter


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ('{"from": "+33698765432", "body": "9"}', '{"from": "<phone>", "body": "9"}'),
        ("call me on +33 6 12 34 56 78 please", "call me on <phone> please"),
        ("06.12.34.56.78", "<phone>"),
        ("(555) 123-4567", "<phone>"),
        ("+1-555-123-4567", "<phone>"),
        ('"recipient": "jane.doe+cx@example.co.uk"', '"recipient": "<email>"'),
        ("write to JANE@EXAMPLE.COM or 0612345678", "write to <email> or <phone>"),
        ('"ani": "+33612345678", "digits": {"1": "9"}', '"ani": "<phone>", "digits": {"1": "9"}'),
    ],
)
def test_phone_numbers_and_emails_are_masked(text: str, masked: str) -> None:
    assert mask_personal_data(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        '{"received_at": "2025-01-15T13:50:00+02:00"}',
        '{"ended_at": "2025-01-15 13:50:00Z"}',
        '{"call_id": "c-1234567", "message_id": "m-98765432"}',
        '{"score": "9/10", "nps": 10, "csat": 4}',
        '{"dispatch_id": "d-42-1234567"}',
        "I'd say 8 out of 10",
        "rated 123456",  # six digits: too short for a phone number
    ],
)
def test_timestamps_ids_and_scores_stay_readable(text: str) -> None:
    assert mask_personal_data(text) == text


NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("30m", NOW - timedelta(minutes=30)),
        ("24h", NOW - timedelta(hours=24)),
        (" 7D ", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2025-01-15T10:00:00+01:00", datetime(2025, 1, 15, 9, 0, tzinfo=UTC)),
        ("2025-01-14T08:00", datetime(2025, 1, 14, 8, 0, tzinfo=UTC)),
    ],
)
def test_since(value: str, expected: datetime) -> None:
    assert parse_since(value, NOW) == expected


@pytest.mark.parametrize("value", ["yesterday", "1y", "-3h", ""])
def test_since_refuses_what_it_cannot_read(value: str) -> None:
    with pytest.raises(ValueError, match="--since"):
        parse_since(value, NOW)


def letter(reason: str, topic: str, offset: int, original: bytes = b"{}") -> bytes:
    return dead_letter(original=original, key=b"k", topic=topic, partition=1, offset=offset,
                       timestamp_ms=None, reason=reason, detail="why")  # fmt: skip


def test_select_keeps_the_newest_matching_and_skips_foreign_records() -> None:
    values = [
        letter("not_json", "cx.raw.sms", 1),
        None,
        b"not a dead letter",
        letter("unparseable_reply", "cx.raw.sms", 2),
        letter("unparseable_reply", "cx.raw.ivr", 3),
        letter("unparseable_reply", "cx.raw.sms", 5),
        letter("unparseable_reply", "cx.raw.sms", 4),
    ]
    # read partition by partition: the Kafka timestamps, not the read order, say what is newest
    at = [50, 10, 20, 40, 30, 5, 60]
    records = list(zip(at, values, strict=True))
    chosen = select(records, Filters(reason="unparseable_reply", topic="cx.raw.sms"), limit=2)
    assert [d.source.offset for d in chosen] == [2, 4]
    assert [d.source.offset for d in select(records, Filters(), limit=10)] == [5, 3, 2, 1, 4]
    assert [d.source.offset for d in select(records, Filters(), limit=1)] == [4]


def test_a_shown_row_decodes_the_original_and_masks_it_unless_raw() -> None:
    original = b'{"from": "+33698765432", "body": "call me: jo@example.com \xff"}'
    record = msgspec.json.decode(letter("not_utf8", "cx.raw.sms", 7, original), type=DeadLetter)
    masked, raw = shown(record, raw=False), shown(record, raw=True)
    assert masked.source == "cx.raw.sms/1/7"
    assert masked.reason == "not_utf8" and masked.size == len(original)
    assert masked.original == '{"from": "<phone>", "body": "call me: <email> \\xff"}'
    assert "+33698765432" in raw.original and "jo@example.com" in raw.original
    assert len(shown(record, raw=True, width=20).original) == 20


PHONE, EMAIL = "+33698765432", "jo@example.com"
ORIGINAL = (
    f'{{"call_id": "call-1002", "ended_at": "2025-01-15T13:50:00Z", "ani": "{PHONE}", '
    f'"digits": {{"1": "12"}}, "note": "mail {EMAIL} [bold]"}}'
).encode()


def letters() -> list[DeadLetter]:
    raw = dead_letter(original=ORIGINAL, key=b"k", topic="cx.raw.ivr", partition=3, offset=1234,
                      timestamp_ms=None, reason="out_of_range",
                      detail="NPS answer 12 is outside 0..10 at `$.digits[1]`")  # fmt: skip
    return [msgspec.json.decode(raw, type=DeadLetter)]


def printed(width: int, raw: bool = False) -> str:
    console = Console(record=True, width=width)
    print_letters(console, letters(), raw, "1 newest dead letters on cx.deadletter")
    return console.export_text()


def test_80_columns_show_one_block_per_dead_letter_with_every_field_whole() -> None:
    text = printed(80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "┃" not in text and "…" not in text
    assert "out_of_range" in text and "source: cx.raw.ivr/3/1234" in text
    assert "detail: NPS answer 12 is outside 0..10 at `$.digits[1]`" in text
    assert f"original (phones, emails masked), {len(ORIGINAL)} B:" in text
    unfolded = "".join(text.splitlines()[5:])  # the original, folded at 80 columns
    assert '"ani": "<phone>"' in unfolded and "mail <email> [bold]" in unfolded
    assert PHONE not in text and EMAIL not in text


def test_a_wide_terminal_shows_the_table_with_every_field() -> None:
    text = printed(160)
    assert "┃ rejected at" in text and "…" not in text
    assert "cx.raw.ivr/3/1234" in text and "out_of_range" in text
    assert "<phone>" in text
    assert PHONE not in text and EMAIL not in text
    assert all(len(line) <= 160 for line in text.splitlines())


def test_raw_shows_the_personal_data_it_was_asked_for() -> None:
    text = printed(80, raw=True)
    assert "original (raw)" in text and PHONE in text


def test_json_documents_are_masked_like_the_table() -> None:
    (document,) = as_documents(letters(), raw=False)
    assert document["source"] == {"topic": "cx.raw.ivr", "partition": 3, "offset": 1234}
    assert document["reason"] == "out_of_range" and document["original_bytes"] == len(ORIGINAL)
    assert document["masked"] is True and '"ani": "<phone>"' in document["original"]
    assert PHONE not in json.dumps(document) and EMAIL not in json.dumps(document)
    assert PHONE in as_documents(letters(), raw=True)[0]["original"]


def test_times_are_shown_to_the_second_in_utc() -> None:
    assert short_time("2025-01-15T13:50:00.123456+02:00") == "2025-01-15T11:50:00Z"
    assert short_time("not a time") == "not a time"
