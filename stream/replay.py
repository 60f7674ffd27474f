"""`python -m stream replay FILE`: backfill historic survey responses into cx.responses.

Input is JSON Lines (one SurveyResponse v1 object per line) or CSV (one response per row, the
columns below). Every record is validated exactly like a message on cx.responses
(`adapt_canonical`, including the `too_old` / `future_timestamp` limits of the worker, relative
to the start of the replay); accepted records are produced keyed by `response_id` with their
canonical JSON, so they keep their event times (`occurred_at`) and land on their id's partition.
Rejected records are not sent: they are counted by reason with their line numbers, and nothing
of their content is ever reported (no personal data in the output).

Replaying the same file twice is harmless: the worker counts each response_id once (a higher
`revision` replaces the earlier answer), so an interrupted replay can simply be run again.

CSV: a header row naming the columns; `response_id`, `channel` and `occurred_at` are required,
`nps`, `csat`, `ces` (integers), `thumbs` (true/false), `revision` (integer) and the strings
`queue`, `agent_id`, `customer_id`, `interaction_id`, `region`, `comment` are optional, other
columns are ignored (and listed in the summary). An empty cell means the field is absent. A row
whose number of cells differs from the header's is rejected (`invalid_value`). Line numbers are
the file's physical lines, starting at 1 (a CSV header is line 1; a record spanning several lines
is reported at its first).
"""

from __future__ import annotations

import asyncio
import csv
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import msgspec
from rich.table import Table
from rich.text import Text

from stream.channels import Accepted, Outcome, Reason, Rejected, TimeLimits, adapt_canonical
from stream.settings import KafkaSettings, Settings

Format = Literal["jsonl", "csv"]
EXTENSIONS: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
}
# How many line numbers the summary keeps per reason.
MAX_REPORTED_LINES = 10
# How many rejected lines the summary lists one by one, each with its own reason and detail.
MAX_LISTED_REJECTS = 20
# Deliveries awaited in batches, so a large file does not hold a future per record.
DELIVERY_BATCH = 5000

REQUIRED_COLUMNS = ("response_id", "channel", "occurred_at")
SCORE_COLUMNS = ("nps", "csat", "ces")
STRING_COLUMNS = ("queue", "agent_id", "customer_id", "interaction_id", "region", "comment")
KNOWN_COLUMNS = frozenset(
    (*REQUIRED_COLUMNS, *SCORE_COLUMNS, "thumbs", "revision", *STRING_COLUMNS)
)
_INTEGER = re.compile(r"[+-]?\d+")
_BOM = b"\xef\xbb\xbf"
_encode = msgspec.json.Encoder().encode


class ReplayError(Exception):
    """The file cannot be replayed at all (unreadable, unknown format, unusable CSV header)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One record of the file before validation: the JSON to validate, or why there is none."""

    line: int  # first physical line of the record, from 1
    payload: bytes | Rejected


@dataclass(frozen=True, slots=True)
class Checked:
    line: int
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class RejectedLine:
    """One rejected record: its first line, its reason and its own PII-free detail."""

    line: int
    reason: str
    detail: str


@dataclass
class ReplaySummary:
    """What a replay did. `rejected`: reason -> count; `reject_lines`: reason -> the first
    MAX_REPORTED_LINES line numbers; `rejects`: the first MAX_LISTED_REJECTS rejected records,
    each with its own reason and detail (two records of one reason may differ in detail)."""

    read: int = 0
    sent: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    reject_lines: dict[str, list[int]] = field(default_factory=dict)
    rejects: list[RejectedLine] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def reject(self, line: int, rejected: Rejected) -> None:
        self.rejected[rejected.reason] = self.rejected.get(rejected.reason, 0) + 1
        lines = self.reject_lines.setdefault(rejected.reason, [])
        if len(lines) < MAX_REPORTED_LINES:
            lines.append(line)
        if len(self.rejects) < MAX_LISTED_REJECTS:
            self.rejects.append(RejectedLine(line, rejected.reason, rejected.detail))


# --- format and files -------------------------------------------------------------------------


def detect_format(path: Path, requested: str = "auto") -> Format:
    """The format to read `path` with: `requested` unless "auto", else by file extension."""
    if requested in ("jsonl", "csv"):
        return requested  # type: ignore[return-value]
    if requested != "auto":
        raise ReplayError(f"unknown format {requested!r}: use auto, jsonl or csv")
    suffix = path.suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    known = ", ".join(EXTENSIONS)
    raise ReplayError(
        f"cannot tell the format of {path.name} from its extension (known: {known}); "
        "pass --format jsonl or --format csv"
    )


def count_lines(path: Path) -> int:
    """Physical lines of the file (a last line without a newline counts too)."""
    lines, last = 0, b"\n"
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return lines + (last != b"\n")


def _file_lines(path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as handle:
            yield from handle
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror or exc}") from exc


# --- JSON Lines ---------------------------------------------------------------------------------


def iter_jsonl(lines: Iterable[bytes]) -> Iterator[Candidate]:
    """One candidate per non-blank line; the line's bytes are validated as they are."""
    for number, line in enumerate(lines, start=1):
        if number == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        payload = line.rstrip(b"\r\n")
        if payload.strip():
            yield Candidate(number, payload)


# --- CSV --------------------------------------------------------------------------------------


def _cell_value(column: str, cell: str) -> Any:
    """A CSV cell as the JSON value of its field; text that is not of the field's type is kept
    as text, so validation rejects it (`wrong_type`) like any other badly typed field."""
    text = cell.strip()
    if column in SCORE_COLUMNS or column == "revision":
        return int(text) if _INTEGER.fullmatch(text) else cell
    if column == "thumbs":
        return {"true": True, "false": False}.get(text.lower(), cell)
    return cell


def csv_row_to_response(row: Mapping[str, str | None]) -> dict[str, Any]:
    """A CSV row (column -> cell) as a SurveyResponse v1 document. Empty cells are absent;
    unknown columns are dropped; `scores` holds whichever of nps/csat/ces/thumbs are given."""
    doc: dict[str, Any] = {}
    scores: dict[str, Any] = {}
    for column, cell in row.items():
        if column not in KNOWN_COLUMNS or cell is None or not cell.strip():
            continue
        value = _cell_value(column, cell)
        if column in SCORE_COLUMNS or column == "thumbs":
            scores[column] = value
        else:
            doc[column] = value
    doc["scores"] = scores
    return doc


def _has_surrogates(cells: Iterable[str]) -> bool:
    try:
        for cell in cells:
            cell.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class _LineFeed:
    """Decoded lines for the csv module, remembering how many it pulled (csv's own line_num
    does not count a leading byte-order mark or say where a record started)."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._lines = iter(lines)
        self.pulled = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.pulled += 1
        if self.pulled == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        # Undecodable bytes survive as lone surrogates; their record is rejected as not_utf8.
        return line.decode("utf-8", errors="surrogateescape")


def _read_header(rows: Iterator[list[str]]) -> list[str]:
    for cells in rows:
        if any(cell.strip() for cell in cells):
            if _has_surrogates(cells):
                raise ReplayError("the CSV header is not valid UTF-8")
            header = [cell.strip().lower() for cell in cells]
            missing = [column for column in REQUIRED_COLUMNS if column not in header]
            if missing:
                raise ReplayError(f"the CSV header lacks the column(s) {', '.join(missing)}")
            duplicates = sorted({column for column in header if header.count(column) > 1})
            if duplicates:
                raise ReplayError(f"the CSV header repeats the column(s) {', '.join(duplicates)}")
            return header
    raise ReplayError("the CSV file has no header row")


def iter_csv(lines: Iterable[bytes], ignored: list[str] | None = None) -> Iterator[Candidate]:
    """One candidate per non-blank CSV record after the header. The header is read (and checked)
    at once, so a file without a usable one fails before anything is sent; unknown header
    columns are appended to `ignored`."""
    feed = _LineFeed(lines)
    reader = csv.reader(feed)
    try:
        header = _read_header(reader)
    except csv.Error as exc:
        raise ReplayError(f"the CSV header cannot be parsed: {exc}") from None
    if ignored is not None:
        ignored.extend(column for column in header if column not in KNOWN_COLUMNS)
    return _csv_records(feed, reader, header)


def _csv_records(
    feed: _LineFeed, reader: Iterator[list[str]], header: list[str]
) -> Iterator[Candidate]:
    while True:
        start = feed.pulled + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader resets its state on the next call; only this record is lost.
            reason = Reason.OVERSIZED if "field larger" in str(exc) else Reason.INVALID_VALUE
            yield Candidate(start, Rejected(reason, "malformed CSV record"))
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            detail = f"record has {len(cells)} cells, the header {len(header)}"
            yield Candidate(start, Rejected(Reason.INVALID_VALUE, detail))
        elif _has_surrogates(cells):
            yield Candidate(start, Rejected(Reason.NOT_UTF8, "record is not valid UTF-8"))
        else:
            yield Candidate(
                start, _encode(csv_row_to_response(dict(zip(header, cells, strict=True))))
            )


# --- validation -------------------------------------------------------------------------------


def check_candidates(
    candidates: Iterable[Candidate], limits: TimeLimits, max_bytes: int
) -> Iterator[Checked]:
    for candidate in candidates:
        if isinstance(candidate.payload, Rejected):
            yield Checked(candidate.line, candidate.payload)
        else:
            yield Checked(candidate.line, adapt_canonical(candidate.payload, limits, max_bytes))


def read_candidates(
    path: Path, fmt: Format, ignored: list[str] | None = None
) -> Iterator[Candidate]:
    lines = _file_lines(path)
    return iter_jsonl(lines) if fmt == "jsonl" else iter_csv(lines, ignored)


def scan(path: Path, fmt: Format, limits: TimeLimits, max_bytes: int) -> ReplaySummary:
    """Validate a whole file without producing anything (`sent` stays 0)."""
    summary = ReplaySummary()
    for checked in check_candidates(
        read_candidates(path, fmt, summary.ignored_columns), limits, max_bytes
    ):
        summary.read += 1
        if isinstance(checked.outcome, Rejected):
            summary.reject(checked.line, checked.outcome)
    return summary


def encode_response(outcome: Accepted) -> tuple[bytes, bytes]:
    """(key, value) of an accepted record: its response_id and its canonical JSON."""
    response = outcome.response
    return response.response_id.encode(), _encode(response)


# --- producing --------------------------------------------------------------------------------


async def replay_file(
    path: Path,
    fmt: Format,
    settings: Settings,
    kafka: KafkaSettings,
    *,
    now: datetime | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Validate every record of `path` and produce the accepted ones to cx.responses, keyed by
    response_id, with acks=all; returns once every delivery is acknowledged. `on_progress` gets
    the number of lines read since its last call. Raises ReplayError when the file cannot be
    read, and the client's errors when Kafka fails (records already sent may be sent again)."""
    from aiokafka import AIOKafkaProducer

    from stream.pipeline.topics import TopicNames, ensure_topics

    summary = ReplaySummary()
    feed = _ProgressFeed(_file_lines(path), on_progress)
    candidates = iter_jsonl(feed) if fmt == "jsonl" else iter_csv(feed, summary.ignored_columns)
    await ensure_topics(settings, kafka)
    topic = TopicNames.from_settings(settings).responses
    limits = settings.time_limits(now)
    producer = AIOKafkaProducer(
        **kafka.aiokafka_kwargs(), acks="all", enable_idempotence=True, linger_ms=20
    )
    await producer.start()
    try:
        pending: list[asyncio.Future[Any]] = []
        for checked in check_candidates(candidates, limits, settings.max_message_bytes):
            summary.read += 1
            if isinstance(checked.outcome, Accepted):
                key, value = encode_response(checked.outcome)
                pending.append(await producer.send(topic, value=value, key=key))
                if len(pending) >= DELIVERY_BATCH:
                    summary.sent += len(await asyncio.gather(*pending))
                    pending.clear()
            elif isinstance(checked.outcome, Rejected):
                summary.reject(checked.line, checked.outcome)
        summary.sent += len(await asyncio.gather(*pending))
    finally:
        await producer.stop()
    feed.flush()
    return summary


class _ProgressFeed:
    """Passes lines through, reporting how many went by (in steps, to keep the bar cheap)."""

    def __init__(self, lines: Iterable[bytes], on_progress: Callable[[int], None] | None) -> None:
        self._lines = iter(lines)
        self._on_progress = on_progress
        self._unreported = 0

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = next(self._lines)
        self._unreported += 1
        if self._unreported >= 200:
            self.flush()
        return line

    def flush(self) -> None:
        if self._on_progress is not None and self._unreported:
            self._on_progress(self._unreported)
        self._unreported = 0


# --- report -----------------------------------------------------------------------------------


def summary_table(summary: ReplaySummary, title: str = "Replay") -> Table:
    """The counts as a rich table: read, sent, rejected, then one row per reject reason with
    its count and first line numbers."""
    table = Table(title=title)
    table.add_column("records")
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column(f"lines (first {MAX_REPORTED_LINES})")
    table.add_row("read", str(summary.read), "")
    table.add_row("sent", str(summary.sent), "")
    table.add_row("rejected", str(summary.rejected_total), "")
    for reason, count in sorted(summary.rejected.items(), key=lambda item: (-item[1], item[0])):
        lines = ", ".join(str(line) for line in summary.reject_lines.get(reason, []))
        if count > MAX_REPORTED_LINES:
            lines += ", …"
        table.add_row(f"  {reason}", str(count), lines)
    return table


def rejects_table(summary: ReplaySummary) -> Table | None:
    """The first rejected records one per row, each with its own reason and detail (PII-free:
    reasons and field paths only, never field values); None without rejects."""
    if not summary.rejects:
        return None
    listed = len(summary.rejects)
    more = summary.rejected_total - listed
    title = f"Rejected records (the first {listed})" if more else "Rejected records"
    table = Table(title=title)
    table.add_column("line", justify="right", no_wrap=True)
    table.add_column("reason", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for reject in summary.rejects:
        # Text, not markup: a detail may name a path like `$.scores[0]`
        table.add_row(str(reject.line), reject.reason, Text(reject.detail))
    if more:
        table.caption = f"and {more} more"
    return table
