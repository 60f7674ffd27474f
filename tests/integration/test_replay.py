"""`python -m stream replay FILE` on the real broker: a backfill of a few hundred historic
responses (event times over the last days, duplicates, revisions, invalid lines) from JSON Lines
and from CSV; the worker started afterwards must reach the batch KPIs of the valid records."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stream.settings import PROJECT_ROOT
from tests.integration.test_kpi_engine import wait_until_matches
from tests.support.kafka_io import read_exactly
from tests.support.traffic import Traffic, make_traffic

pytestmark = pytest.mark.kafka

CSV_COLUMNS = [
    "response_id",
    "channel",
    "occurred_at",
    "nps",
    "csat",
    "ces",
    "thumbs",
    "queue",
    "agent_id",
    "customer_id",
    "interaction_id",
    "region",
    "revision",
    "comment",
]


def historic(now: datetime, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(valid responses in file order, two too-old ones) from the shared test traffic: event
    times spread over the last 6.5 days, ~8 % revised ids, ~7 % exact re-deliveries."""
    traffic = make_traffic(now, responses=300, seed=seed)
    valid = [r for r in traffic.responses if not r["response_id"].startswith("old-")]
    old = [r for r in traffic.responses if r["response_id"].startswith("old-")][:2]
    assert len({r["response_id"] for r in valid}) < len(valid)  # duplicates and revisions
    assert any(r.get("revision") for r in valid)
    return valid, old


def with_bad_lines(
    good: list[str], bad: list[tuple[str, str]], first_line: int
) -> tuple[list[str], dict[str, list[int]]]:
    """`good` with each of `bad` (reason, line) spliced in; reason -> line numbers in the file."""
    lines = list(good)
    positions = [len(good) * (i + 1) // (len(bad) + 1) for i in range(len(bad))]
    for position, (_, line) in reversed(list(zip(positions, bad, strict=True))):
        lines.insert(position, line)
    expected: dict[str, list[int]] = {}
    for index, (reason, _) in enumerate(bad):
        expected.setdefault(reason, []).append(first_line + positions[index] + index)
    return lines, expected


def csv_line(row: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)
    return out.getvalue()


def csv_row(response: dict[str, Any]) -> list[Any]:
    flat = {**response, **response["scores"]}
    if "thumbs" in flat:
        flat["thumbs"] = "true" if flat["thumbs"] else "false"
    return [flat.get(column, "") for column in CSV_COLUMNS]


def run_replay(path: Path, bootstrap: str, prefix: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WEB_PORT", "BROKER_URL")}
    env.update(KAFKA_BOOTSTRAP_SERVERS=bootstrap, CX_TOPIC_PREFIX=prefix, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "stream", "replay", str(path)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def reported(output: str, label: str) -> tuple[int, str]:
    """(count, line numbers) of one row of the summary table."""
    match = re.search(rf"│\s*{label}\s*│\s*(\d+)\s*│([^│]*)│", output)
    assert match, f"no {label!r} row in:\n{output}"
    return int(match.group(1)), match.group(2).strip()


def assert_report(
    result: subprocess.CompletedProcess[str], sent: int, rejects: dict[str, list[int]]
) -> None:
    output = result.stdout
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert reported(output, "read")[0] == sent + sum(len(lines) for lines in rejects.values())
    assert reported(output, "sent")[0] == sent
    assert reported(output, "rejected")[0] == sum(len(lines) for lines in rejects.values())
    for reason, lines in rejects.items():
        assert reported(output, reason) == (len(lines), ", ".join(map(str, lines)))
    everything = result.stdout + result.stderr
    for secret in ("Call me", "+33", "cust-"):  # comments and customer ids are never echoed
        assert secret not in everything


async def test_jsonl_backfill_reaches_the_batch_kpis(
    kafka_bootstrap: str, topic_prefix: str, make_worker, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    valid, old = historic(now, seed=21)
    future = {**valid[0], "response_id": "future-1", "occurred_at": (now + timedelta(hours=2))}
    future["occurred_at"] = future["occurred_at"].isoformat()
    bad = [
        ("not_json", '{"response_id": "cut-1", "channel": "web", "comm'),
        ("too_old", json.dumps(old[0])),
        ("out_of_range", json.dumps({**valid[1], "scores": {"nps": 11}})),
        ("future_timestamp", json.dumps(future)),
        ("too_old", json.dumps(old[1])),
        ("missing_field", json.dumps({k: v for k, v in valid[2].items() if k != "channel"})),
    ]
    lines, rejects = with_bad_lines([json.dumps(r) for r in valid], bad, first_line=1)
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = await asyncio.to_thread(run_replay, path, kafka_bootstrap, topic_prefix)
    assert_report(result, sent=len(valid), rejects=rejects)

    records = await read_exactly(kafka_bootstrap, topic_prefix + "responses", len(valid))
    assert sorted(r.key.decode() for r in records) == sorted(r["response_id"] for r in valid)
    assert all(json.loads(r.value)["response_id"] == r.key.decode() for r in records)

    worker = make_worker().start(wait_for_partitions=4)
    await wait_until_matches(worker, Traffic(responses=valid))


async def test_csv_backfill_reaches_the_batch_kpis(
    kafka_bootstrap: str, topic_prefix: str, make_worker, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    valid, old = historic(now, seed=22)
    bad = [
        ("wrong_type", csv_line([*csv_row(valid[0])[:3], "nine", *csv_row(valid[0])[4:]])),
        ("too_old", csv_line(csv_row(old[0]))),
        ("invalid_value", csv_line(csv_row(valid[1])[:-2])),  # cells missing
        ("out_of_range", csv_line([*csv_row(valid[2])[:4], "9", *csv_row(valid[2])[5:]])),
    ]
    lines, rejects = with_bad_lines([csv_line(csv_row(r)) for r in valid], bad, first_line=2)
    path = tmp_path / "history.csv"
    path.write_text("\r\n".join([csv_line(CSV_COLUMNS), *lines]) + "\r\n", encoding="utf-8")

    result = await asyncio.to_thread(run_replay, path, kafka_bootstrap, topic_prefix)
    assert_report(result, sent=len(valid), rejects=rejects)

    worker = make_worker().start(wait_for_partitions=4)
    await wait_until_matches(worker, Traffic(responses=valid))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "id,channel,occurred_at,nps\r\nr-1,web,2025-01-01T00:00:00Z,9\r\n", "header"),
        ("export.txt", "{}\n", "--format"),
    ],
)
def test_unusable_file_exits_1_without_contacting_kafka(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = run_replay(path, "127.0.0.1:1", "unused.")  # nothing listens there
    assert result.returncode == 1, f"{result.stdout}\n{result.stderr}"
    assert message in result.stderr and "Kafka" not in result.stderr
