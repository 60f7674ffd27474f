"""`python -m stream deadletters`: read cx.deadletter, newest last, personal data masked.

A plain consumer (no group, nothing committed) reads every partition from `since` up to the
end offsets taken at the start, keeps the last `limit` records that match the filters, and
prints reason, source topic/partition/offset and the original bytes. Phone numbers and email
addresses in the original are masked unless `raw`.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stream.models import DeadLetter

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 7 to 15 digits, maybe a leading +, single separators (space . - ( )) between them; not part
# of a longer token, so timestamps ("2025-01-15T13:50:00+02:00"), ids ("c-1234567") and
# decimals stay readable; nor a date (2025-01-15).
PHONE = re.compile(r"(?<![\w:/.+-])(?!\d{4}-\d\d-\d\d)\+?\(?\d(?:[ .()-]{0,2}\d){6,14}(?![\w:/-])")
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_decode = msgspec.json.Decoder(DeadLetter).decode


def mask_personal_data(text: str) -> str:
    """`text` with email addresses and phone numbers replaced by <email> and <phone>."""
    return PHONE.sub("<phone>", EMAIL.sub("<email>", text))


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """A duration back from now ("90s", "30m", "24h", "7d", "2w") or an RFC 3339 time."""
    now = now or datetime.now(UTC)
    if match := _DURATION.match(value.strip().lower()):
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"--since {value!r}: give a duration (30m, 24h, 7d) or a time (2025-01-15T12:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Filters:
    reason: str | None = None
    topic: str | None = None

    def match(self, letter: DeadLetter) -> bool:
        return (self.reason is None or letter.reason == self.reason) and (
            self.topic is None or letter.source.topic == self.topic
        )


@dataclass(frozen=True, slots=True)
class Shown:
    """One dead letter as printed."""

    rejected_at: str
    reason: str
    source: str
    detail: str
    original: str
    size: int


def short_time(value: str) -> str:
    """An RFC 3339 time to the second, in UTC ("2025-01-15T12:00:00Z"); as given if unreadable."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown(letter: DeadLetter, raw: bool, width: int = 300) -> Shown:
    text = letter.original.decode("utf-8", "backslashreplace")
    if not raw:
        text = mask_personal_data(text)
    if len(text) > width:
        text = text[: width - 1] + "…"
    source = f"{letter.source.topic}/{letter.source.partition}/{letter.source.offset}"
    return Shown(
        letter.rejected_at, letter.reason, source, letter.detail, text, letter.original_size
    )


def select(
    records: Iterable[tuple[int, bytes | None]], filters: Filters, limit: int
) -> list[DeadLetter]:
    """The newest `limit` decodable dead letters that match `filters`, oldest first.

    `records` are (Kafka timestamp in ms, value) pairs, in any order.
    """
    kept: deque[DeadLetter] = deque(maxlen=limit)
    for _, value in sorted(records, key=lambda record: record[0]):
        if value is None:
            continue
        try:
            letter = _decode(value)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue  # not a dead letter v1 record: nothing of ours to show
        if filters.match(letter):
            kept.append(letter)
    return list(kept)


async def read_values(
    topic: str, since: datetime | None, client: dict[str, Any], timeout: float = 30.0
) -> list[tuple[int, bytes | None]]:
    """(timestamp, value) of every record of `topic` from `since` (else the beginning) to its
    current end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    partitions = await _partitions(topic, client, timeout)
    if not partitions:
        return []
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer = AIOKafkaConsumer(**client, group_id=None, enable_auto_commit=False)
    await asyncio.wait_for(consumer.start(), timeout)
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp, offset in (await _starts(consumer, tps, since, ends)).items():
            consumer.seek(tp, offset)
        values: list[tuple[int, bytes | None]] = []
        pending = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
        while pending:
            batches = await asyncio.wait_for(consumer.getmany(*pending, timeout_ms=1000), timeout)
            for tp, records in batches.items():
                values += [(r.timestamp, r.value) for r in records if r.offset < ends[tp]]
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return values
    finally:
        await consumer.stop()


async def _partitions(topic: str, client: dict[str, Any], timeout: float) -> list[int]:
    """The topic's partitions (none when it does not exist)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**client)
    await asyncio.wait_for(admin.start(), timeout)
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described.get("error_code", 0) != 0:  # 3: unknown topic
        return []
    return sorted(p["partition"] for p in described["partitions"])


async def _starts(
    consumer: Any, tps: list[Any], since: datetime | None, ends: dict[Any, int]
) -> dict[Any, int]:
    """The first offset to read per partition: the first record at or after `since`."""
    if since is None:
        return dict(await consumer.beginning_offsets(tps))
    found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
    # no record that recent: nothing to read there
    return {tp: ends[tp] if found.get(tp) is None else found[tp].offset for tp in tps}


def as_documents(letters: list[DeadLetter], raw: bool) -> list[dict[str, Any]]:
    """The dead letters as `--json` prints them: the shown fields, the original as text masked
    like the table's unless `raw` (never its base64 bytes, which would carry personal data)."""
    out = []
    for letter in letters:
        row = shown(letter, raw)
        out.append({
            "rejected_at": row.rejected_at,
            "reason": row.reason,
            "source": {"topic": letter.source.topic, "partition": letter.source.partition,
                       "offset": letter.source.offset},
            "detail": row.detail,
            "original": row.original,
            "original_bytes": row.size,
            "masked": not raw,
        })  # fmt: skip
    return out


# The table only when its original column gets at least this many characters a line.
MIN_ORIGINAL_WIDTH = 40


def _original_header(raw: bool) -> str:
    return "original" + (" (raw)" if raw else " (phones, emails masked)")


def table(letters: list[DeadLetter], raw: bool, title: str) -> Table:
    out = Table(title=title)
    for column in ("rejected at", "reason", "source topic/partition/offset"):
        out.add_column(column, no_wrap=True)
    out.add_column("detail", min_width=20)
    # folded: a long JSON "word" is broken over lines, never cut
    out.add_column(_original_header(raw), overflow="fold", min_width=MIN_ORIGINAL_WIDTH)
    for letter in letters:
        row = shown(letter, raw)
        # Text, not markup: the original bytes may hold "[...]" that rich would interpret
        original = Text(row.original).append(f" ({row.size} B)", style="dim")
        cells = (short_time(row.rejected_at), row.reason, row.source, row.detail)
        out.add_row(*map(Text, cells), original)
    return out


def blocks(letters: list[DeadLetter], raw: bool) -> list[Text]:
    """One block per dead letter, every field on its own line(s): for narrow terminals."""
    out = []
    for letter in letters:
        row = shown(letter, raw)
        block = Text().append(f"{short_time(row.rejected_at)}  {row.reason}", style="bold")
        block.append(f"\n  source: {row.source}\n  detail: {row.detail}")
        block.append(f"\n  {_original_header(raw)}, {row.size} B:\n  {row.original}")
        out.append(block)
    return out


def fits(letters: list[DeadLetter], raw: bool, console: Console) -> bool:
    """Whether the table fits the console with every field whole: the fixed columns unwrapped,
    room for MIN_ORIGINAL_WIDTH characters of the original and 20 of the detail a line."""
    from stream.kpi_cli import needed_width

    return needed_width(table(letters, raw, "")) <= console.width


def print_letters(console: Console, letters: list[DeadLetter], raw: bool, title: str) -> None:
    """The table when the console is wide enough for every field, else one block per letter
    (a pipe is as wide as COLUMNS says, 80 by default)."""
    if fits(letters, raw, console):
        console.print(table(letters, raw, title))
        return
    console.print(Text(title, style="italic"))
    for block in blocks(letters, raw):
        console.print(block)
