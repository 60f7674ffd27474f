"""The demo's history: accepted as it is, inside the time limits, and giving every KPI data."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson

from stream.backfill import SURVEYS, history
from stream.channels import Accepted, OptedOut, TimeLimits
from stream.kpi.windows import BY_NAME, WINDOWS
from stream.pipeline.topics import TopicNames
from stream.settings import Settings
from stream.simulate import CUSTOMERS, Simulator

SETTINGS = Settings()
NAMES = TopicNames.from_settings(SETTINGS)
ADAPTERS = {
    NAMES.raw_ivr: SETTINGS.channel_adapters()["ivr"],
    NAMES.raw_sms: SETTINGS.channel_adapters()["sms"],
    NAMES.raw_email: SETTINGS.channel_adapters()["email"],
}
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def event_time(record: dict[str, object]) -> datetime:
    for field in ("occurred_at", "ended_at", "received_at", "submitted_at"):
        if field in record:
            return datetime.fromisoformat(str(record[field]))
    raise AssertionError(f"no event time in {record}")


def test_history_is_modest_and_inside_the_time_limits() -> None:
    limits = TimeLimits(now=NOW, max_age=timedelta(days=7, seconds=SETTINGS.late_grace_seconds))
    messages = list(history(Simulator(NAMES, seed=42), NOW))
    assert 20_000 <= len(messages) <= 50_000, len(messages)
    lifecycle = 0
    for topic, _, value in messages:
        record = orjson.loads(value)
        if topic == NAMES.lifecycle:  # lifecycle events of any age are accepted
            lifecycle += 1
            continue
        assert limits.check(event_time(record)) is None, (topic, record)
        if topic in ADAPTERS:
            outcome = ADAPTERS[topic](value, limits)
            assert isinstance(outcome, Accepted | OptedOut), (topic, outcome)
    assert lifecycle >= CUSTOMERS


def test_the_customers_are_active_when_the_longest_window_starts() -> None:
    messages = list(history(Simulator(NAMES, seed=42), NOW))
    start = datetime.fromtimestamp(BY_NAME["7d"].start(NOW.timestamp()), UTC)
    active: set[str] = set()
    cancelled_in_window = 0
    for topic, key, value in messages:  # in production order, as the worker reads them
        if topic != NAMES.lifecycle:
            continue
        record = orjson.loads(value)
        assert key.decode() == record["customer_id"]
        customer = record["customer_id"]
        if event_time(record) < start:
            (active.add if record["type"] == "activated" else active.discard)(customer)
        elif record["type"] == "cancelled" and customer in active:
            cancelled_in_window += 1
    assert len(active) >= 0.99 * CUSTOMERS, len(active)
    assert cancelled_in_window > 0, "churn would be 0 in every window"


def test_the_four_windows_hold_different_answers_with_every_kind_of_score() -> None:
    now = NOW.timestamp()
    in_window: Counter[str] = Counter()
    scores: Counter[str] = Counter()
    for topic, _, value in history(Simulator(NAMES, seed=42), NOW):
        if topic not in (*ADAPTERS, NAMES.responses):
            continue
        record = orjson.loads(value)
        at = event_time(record).timestamp()
        for window in WINDOWS:
            if window.contains(window.bucket(at), now):
                in_window[window.name] += 1
        if topic == NAMES.responses:
            scores.update(list(record["scores"]))
        else:
            scores[str(record.get("survey", "ivr"))] += 1
    counts = [in_window[w.name] for w in WINDOWS]
    assert counts[0] == 0, "the 5m window is left to live traffic"
    assert 0 < counts[1] < counts[2] < counts[3], counts
    assert counts[3] > SURVEYS / 10, counts
    assert {"nps", "csat", "ces", "ivr", "thumbs", "csi", "acsi"} <= scores.keys(), scores
