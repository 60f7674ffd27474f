"""stream.replay: JSON Lines and CSV parsing, validation, reject accounting, the producer loop
(with a fake producer), and a report free of personal data."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
from rich.console import Console

from stream import replay
from stream.channels import Accepted, Rejected, TimeLimits
from stream.models import SurveyResponse
from stream.replay import (
    ReplayError,
    ReplaySummary,
    count_lines,
    csv_row_to_response,
    detect_format,
    encode_response,
    read_candidates,
    replay_file,
    scan,
    summary_table,
)
from stream.settings import KafkaSettings, Settings

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
LIMITS = TimeLimits(now=NOW)
MAX_BYTES = 65536
AT = "2025-01-15T13:50:00+02:00"  # ten minutes before NOW, with an offset to keep
OLD = (NOW - timedelta(days=9)).isoformat()
FUTURE = (NOW + timedelta(hours=1)).isoformat()
# Personal data that must never show up in a reject report.
COMMENT = "Call me at +33 6 12 34 56 78, jane.doe@example.com"
CUSTOMER = "cust-secret-4242"

HEADER = "response_id,channel,occurred_at,nps,csat,ces,thumbs,queue,agent_id,customer_id,"
HEADER += "interaction_id,region,revision,comment"


def response(rid: str = "r-1", **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "response_id": rid,
        "channel": "web",
        "occurred_at": AT,
        "scores": {"nps": 9},
        "customer_id": CUSTOMER,
        "comment": COMMENT,
    }
    doc.update(fields)
    return doc


def jsonl(tmp_path: Path, *lines: dict[str, Any] | str, name: str = "in.jsonl") -> Path:
    path = tmp_path / name
    text = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def csv_file(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text("\r\n".join([header, *rows]) + "\r\n", encoding="utf-8")
    return path


def checked(path: Path, fmt: replay.Format) -> list[replay.Checked]:
    return list(replay.check_candidates(read_candidates(path, fmt), LIMITS, MAX_BYTES))


def accepted(path: Path, fmt: replay.Format) -> list[SurveyResponse]:
    out = []
    for item in checked(path, fmt):
        assert isinstance(item.outcome, Accepted), (item.line, item.outcome)
        out.append(item.outcome.response)
    return out


def render(summary: ReplaySummary) -> str:
    """The summary as `replay` prints it: the counts, then the first rejects one by one."""
    console = Console(record=True, width=200)
    console.print(summary_table(summary))
    if (rejects := replay.rejects_table(summary)) is not None:
        console.print(rejects)
    return console.export_text()


# --- format ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.jsonl", "jsonl"), ("a.NDJSON", "jsonl"), ("a.json", "jsonl"), ("b.csv", "csv")],
)
def test_format_is_detected_by_extension(name: str, fmt: str) -> None:
    assert detect_format(Path(name)) == fmt


def test_format_option_overrides_the_extension() -> None:
    assert detect_format(Path("a.csv"), "jsonl") == "jsonl"
    assert detect_format(Path("export.txt"), "csv") == "csv"


def test_unknown_extension_asks_for_the_format() -> None:
    with pytest.raises(ReplayError, match="--format"):
        detect_format(Path("export.txt"))


def test_count_lines(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"1\n2\n3\n")
    (tmp_path / "b").write_bytes(b"1\n2\n3")
    (tmp_path / "c").write_bytes(b"")
    assert [count_lines(tmp_path / n) for n in "abc"] == [3, 3, 0]
    with pytest.raises(ReplayError):
        count_lines(tmp_path / "missing")


# --- JSON Lines --------------------------------------------------------------------------------


def test_jsonl_records_are_validated_and_keep_their_event_time(tmp_path: Path) -> None:
    full = response(
        "r-1",
        scores={"nps": 10, "csat": 5, "ces": 7, "thumbs": True},
        queue="billing",
        agent_id="agent-7",
        revision=2,
        unknown_field="ignored",
    )
    path = jsonl(tmp_path, full, "", "   ", response("r-2", channel="sms"))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # a byte-order mark is tolerated
    first, second = accepted(path, "jsonl")
    assert first.occurred_at == datetime.fromisoformat(AT)
    assert first.occurred_at.utcoffset() == timedelta(hours=2)
    assert (first.scores.nps, first.scores.csat, first.scores.ces, first.scores.thumbs) == (
        10, 5, 7, True,
    )  # fmt: skip
    assert (first.queue, first.agent_id, first.revision) == ("billing", "agent-7", 2)
    assert second.response_id == "r-2" and second.channel == "sms"
    assert [c.line for c in checked(path, "jsonl")] == [1, 4]  # blank lines are not records


def test_canonical_message_is_keyed_by_response_id(tmp_path: Path) -> None:
    path = jsonl(tmp_path, response("r-9", unknown_field="x", revision=1))
    (item,) = checked(path, "jsonl")
    assert isinstance(item.outcome, Accepted)
    key, value = encode_response(item.outcome)
    assert key == b"r-9"
    doc = json.loads(value)
    assert doc["occurred_at"] == AT and doc["revision"] == 1 and "unknown_field" not in doc
    assert msgspec.json.decode(value, type=SurveyResponse) == item.outcome.response


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_row_types_and_empty_cells() -> None:
    row = {
        "response_id": "r-1",
        "channel": "ivr",
        "occurred_at": AT,
        "nps": "9",
        "csat": "",
        "ces": " 6 ",
        "thumbs": "TRUE",
        "queue": "billing",
        "agent_id": "",
        "revision": "2",
        "comment": "fine, thanks",
        "extra": "dropped",
    }
    assert csv_row_to_response(row) == {
        "response_id": "r-1",
        "channel": "ivr",
        "occurred_at": AT,
        "scores": {"nps": 9, "ces": 6, "thumbs": True},
        "queue": "billing",
        "revision": 2,
        "comment": "fine, thanks",
    }
    assert csv_row_to_response({**row, "thumbs": "false"})["scores"]["thumbs"] is False
    # Text that is not of the field's type stays text, for validation to reject.
    assert csv_row_to_response({**row, "nps": "nine"})["scores"]["nps"] == "nine"


def test_csv_file_parses_into_survey_responses(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        f'r-1,web,{AT},10,5,7,true,billing,agent-7,{CUSTOMER},call-1,emea,1,"{COMMENT}"',
        f"r-2,sms,{AT},,4,,,,,,,,,",
        "",
        f'r-3,email,{AT},,,,false,,,,,,,"two\nlines, quoted"',
        f"r-4,ivr,{AT},3,,,,,,,,,0,",
    )
    r1, r2, r3, r4 = accepted(path, "csv")
    assert r1.scores.nps == 10 and r1.scores.csat == 5 and r1.scores.ces == 7
    assert r1.scores.thumbs is True
    assert (r1.queue, r1.agent_id, r1.customer_id, r1.interaction_id, r1.region) == (
        "billing", "agent-7", CUSTOMER, "call-1", "emea",
    )  # fmt: skip
    assert r1.revision == 1 and r1.comment == COMMENT
    assert r1.occurred_at == datetime.fromisoformat(AT)
    assert r2.scores == msgspec.convert({"csat": 4}, type=type(r2.scores))
    assert r2.queue is None and r2.customer_id is None and r2.revision == 0
    assert r3.scores.thumbs is False and r3.comment == "two\nlines, quoted"
    assert r4.revision == 0 and r4.scores.nps == 3
    assert [c.line for c in checked(path, "csv")] == [2, 3, 5, 7]


def test_csv_with_a_subset_of_columns_in_any_order(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path, f"7,{AT},r-1,web,x", header=" CSAT ,occurred_at,response_id,channel,note"
    )
    ignored: list[str] = []
    candidates = list(replay.iter_csv(replay._file_lines(path), ignored))
    assert ignored == ["note"]
    (item,) = replay.check_candidates(candidates, LIMITS, MAX_BYTES)
    assert isinstance(item.outcome, Rejected) and item.outcome.reason == "out_of_range"
    assert scan(path, "csv", LIMITS, MAX_BYTES).ignored_columns == ["note"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("response_id,channel,nps", "lacks the column"),
        ("response_id,channel,occurred_at,nps,nps", "repeats"),
        ("", "no header"),
    ],
)
def test_unusable_csv_header_is_a_file_error(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "in.csv"
    path.write_text(header, encoding="utf-8")
    with pytest.raises(ReplayError, match=message):
        scan(path, "csv", LIMITS, MAX_BYTES)


# --- rejects -----------------------------------------------------------------------------------


def test_jsonl_rejects_are_counted_by_reason_with_line_numbers(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path,
        response("ok-1"),
        "this is not json",
        response("old", occurred_at=OLD),
        response("future", occurred_at=FUTURE),
        response("bad-nps", scores={"nps": 11}),
        "",
        {k: v for k, v in response("no-channel").items() if k != "channel"},
        "[1, 2]",
        response("ok-2"),
        response("empty-scores", scores={}),
        response("bad-type", scores={"nps": "9"}),
    )
    path.write_bytes(path.read_bytes() + b'{"response_id": "\xff"}\n')
    summary = scan(path, "jsonl", LIMITS, MAX_BYTES)
    assert summary.read == 11 and summary.sent == 0
    assert summary.rejected == {
        "not_json": 1,
        "too_old": 1,
        "future_timestamp": 1,
        "out_of_range": 1,
        "missing_field": 1,
        "not_object": 1,
        "invalid_value": 1,
        "wrong_type": 1,
        "not_utf8": 1,
    }
    assert summary.reject_lines == {
        "not_json": [2],
        "too_old": [3],
        "future_timestamp": [4],
        "out_of_range": [5],
        "missing_field": [7],
        "not_object": [8],
        "invalid_value": [10],
        "wrong_type": [11],
        "not_utf8": [12],
    }
    assert summary.rejected_total == 9


def test_csv_rejects_are_counted_by_reason_with_line_numbers(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        f"ok-1,web,{AT},9,,,,,,,,,,",
        f"nine,web,{AT},nine,,,,,,,,,,",  # not an integer
        f"cells,web,{AT},9,,,,,,,,,",  # one cell short
        f"maybe,web,{AT},,,,maybe,,,,,,,",  # thumbs neither true nor false
        f"noscore,web,{AT},,,,,,,,,,,",
        f",web,{AT},9,,,,,,,,,,",  # empty required cell: absent
        f'old,web,{OLD},9,,,,,,,,{CUSTOMER},,,"{COMMENT}"',  # one cell too many
        f'old,web,{OLD},9,,,,,,{CUSTOMER},,,,"{COMMENT}"',
        f"rev,web,{AT},9,,,,,,,,,-1,",
        "tz,web,2025-01-15T11:50:00,9,,,,,,,,,,",
        f"chan,fax,{AT},9,,,,,,,,,,",
    )
    summary = scan(path, "csv", LIMITS, MAX_BYTES)
    assert summary.read == 11
    assert summary.rejected == {
        "wrong_type": 2,
        "invalid_value": 5,
        "missing_field": 1,
        "too_old": 1,
        "out_of_range": 1,
    }
    assert summary.reject_lines == {
        "wrong_type": [3, 5],
        "invalid_value": [4, 6, 8, 11, 12],
        "missing_field": [7],
        "too_old": [9],
        "out_of_range": [10],
    }


def test_only_the_first_ten_lines_of_a_reason_are_kept(tmp_path: Path) -> None:
    path = jsonl(tmp_path, *(["{"] * 25))
    summary = scan(path, "jsonl", LIMITS, MAX_BYTES)
    assert summary.rejected == {"not_json": 25}
    assert summary.reject_lines == {"not_json": list(range(1, 11))}
    assert "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, …" in render(summary)


def test_oversized_records_are_rejected(tmp_path: Path) -> None:
    big = "x" * 2000
    path = jsonl(tmp_path, response(comment=big))
    assert scan(path, "jsonl", LIMITS, 1000).rejected == {"oversized": 1}
    path = csv_file(tmp_path, f"r,web,{AT},9,,,,,,,,,,{big}")
    assert scan(path, "csv", LIMITS, 1000).rejected == {"oversized": 1}


def test_reject_report_holds_no_personal_data(tmp_path: Path) -> None:
    rows = [
        response("r-old", occurred_at=OLD),
        response("r-long", customer_id=CUSTOMER * 10),
        response("r-type", customer_id=12345, comment=COMMENT),
        response("r-chan", channel=COMMENT),
        response("r-bad", scores={"nps": CUSTOMER}),
        response("r-comment", comment=COMMENT * 50),
        {"response_id": CUSTOMER, "channel": "web", "occurred_at": COMMENT, "scores": {"nps": 1}},
    ]
    json_summary = scan(jsonl(tmp_path, *rows), "jsonl", LIMITS, MAX_BYTES)
    csv_summary = scan(
        csv_file(
            tmp_path,
            f'r-1,web,{OLD},9,,,,,,{CUSTOMER},,,,"{COMMENT}"',
            f'r-2,web,{AT},{CUSTOMER},,,,,,{CUSTOMER},,,,"{COMMENT}"',
            f'r-3,{CUSTOMER},{AT},9,,,,,,{CUSTOMER},,,,"{COMMENT}"',
            f'r-4,web,{AT},9,,,,,,{CUSTOMER},,,,"{COMMENT}",extra',
        ),
        "csv",
        LIMITS,
        MAX_BYTES,
    )
    assert json_summary.rejected_total == len(rows)
    assert csv_summary.rejected_total == 4
    for summary in (json_summary, csv_summary):
        text = render(summary) + repr(summary)
        for secret in (CUSTOMER, "+33", "jane.doe", "Call me"):
            assert secret not in text


# --- producing (fake producer) -----------------------------------------------------------------


class FakeProducer:
    instances: ClassVar[list[FakeProducer]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.delivered = 0
        self.stopped = False
        FakeProducer.instances.append(self)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[Any]:
        self.sent.append((topic, key, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def deliver() -> None:
            self.delivered += 1
            future.set_result(None)

        asyncio.get_running_loop().call_later(0.01, deliver)
        return future


async def test_replay_sends_accepted_records_and_awaits_their_delivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiokafka

    import stream.pipeline.topics as topics

    ensured: list[str] = []

    async def fake_ensure(settings: Settings, kafka: KafkaSettings) -> list[str]:
        ensured.append(settings.topic_prefix)
        return []

    FakeProducer.instances.clear()
    monkeypatch.setattr(aiokafka, "AIOKafkaProducer", FakeProducer)
    monkeypatch.setattr(topics, "ensure_topics", fake_ensure)
    monkeypatch.setattr(replay, "DELIVERY_BATCH", 3)
    now = datetime.now(UTC)
    at = (now - timedelta(days=3)).isoformat()
    good = [response(f"r-{i}", occurred_at=at, revision=i % 2) for i in range(7)]
    path = jsonl(tmp_path, good[0], "{", *good[1:], response("old", occurred_at=OLD))
    progress: list[int] = []
    summary = await replay_file(
        path,
        "jsonl",
        Settings(topic_prefix="p."),
        KafkaSettings(bootstrap_servers="127.0.0.1:1"),
        on_progress=progress.append,
    )
    (producer,) = FakeProducer.instances
    assert ensured == ["p."]
    assert producer.kwargs["acks"] == "all" and producer.kwargs["bootstrap_servers"]
    assert producer.stopped and producer.delivered == 7
    assert [(t, k) for t, k, _ in producer.sent] == [
        ("p.responses", f"r-{i}".encode()) for i in range(7)
    ]
    assert [msgspec.json.decode(v, type=SurveyResponse) for _, _, v in producer.sent] == [
        msgspec.json.decode(json.dumps(doc), type=SurveyResponse) for doc in good
    ]
    assert summary.read == 9 and summary.sent == 7
    assert summary.rejected == {"not_json": 1, "too_old": 1}
    assert summary.reject_lines == {"not_json": [2], "too_old": [9]}
    assert sum(progress) == 9


def test_csv_records_that_cannot_be_decoded_are_rejected_alone(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(
        b"\xef\xbb\xbfresponse_id,channel,occurred_at,nps\n"
        + b"r-1,web," + AT.encode() + b",\xff9\n"  # not UTF-8
        + b"r-2,web," + AT.encode() + b"," + b"9" * 200_000 + b"\n"  # beyond csv's field limit
        + b"r-3,web," + AT.encode() + b",9\n"
    )  # fmt: skip
    summary = scan(path, "csv", LIMITS, MAX_BYTES)
    assert summary.read == 3
    assert summary.rejected == {"not_utf8": 1, "oversized": 1}
    assert summary.reject_lines == {"not_utf8": [2], "oversized": [3]}
    assert [r.response_id for r in accepted_only(path)] == ["r-3"]


def accepted_only(path: Path) -> list[SurveyResponse]:
    return [c.outcome.response for c in checked(path, "csv") if isinstance(c.outcome, Accepted)]


async def test_unusable_csv_fails_before_touching_kafka(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiokafka

    import stream.pipeline.topics as topics

    async def fail(*args: Any) -> list[str]:
        raise AssertionError("Kafka must not be contacted")

    monkeypatch.setattr(aiokafka, "AIOKafkaProducer", FakeProducer)
    monkeypatch.setattr(topics, "ensure_topics", fail)
    path = csv_file(tmp_path, f"r-1,web,{AT},9", header="id,channel,occurred_at,nps")
    with pytest.raises(ReplayError, match="response_id"):
        await replay_file(path, "csv", Settings(), KafkaSettings())


def test_each_rejected_line_is_listed_with_its_own_reason_and_detail(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path,
        response("ok-1"),
        response("bad-time", occurred_at="yesterday"),
        response("ok-2"),
        response("no-scores", scores={}),
    )
    summary = scan(path, "jsonl", LIMITS, MAX_BYTES)
    assert summary.reject_lines == {"invalid_value": [2, 4]}
    (time_line, scores_line) = summary.rejects
    assert (time_line.line, time_line.reason) == (2, "invalid_value")
    assert (scores_line.line, scores_line.reason) == (4, "invalid_value")
    assert "occurred_at" in time_line.detail and "occurred_at" not in scores_line.detail
    assert time_line.detail != scores_line.detail
    console = Console(record=True, width=80)
    console.print(replay.rejects_table(summary))
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines()) and "…" not in text
    rows = [line for line in text.splitlines() if "invalid_value" in line]
    assert rows[0].split("│")[1].strip() == "2" and "occurred_at" in rows[0]
    assert rows[1].split("│")[1].strip() == "4" and "occurred_at" not in rows[1]


def test_the_listed_rejects_stop_at_twenty_and_say_how_many_more(tmp_path: Path) -> None:
    summary = scan(jsonl(tmp_path, *(["{"] * 25)), "jsonl", LIMITS, MAX_BYTES)
    assert [r.line for r in summary.rejects] == list(range(1, 21))
    console = Console(record=True, width=80)
    console.print(replay.rejects_table(summary))
    text = console.export_text()
    assert "Rejected records (the first 20)" in text and "and 5 more" in text
    assert replay.rejects_table(ReplaySummary()) is None
