"""Readiness: a broker answered lately, partitions assigned, tables recovered (pure parts)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from stream.pipeline.health import BrokerProbe, Readiness, Recovery, table_recovery

RECOVERED = Recovery(recovered=16, total=16, done=True)
ASSIGNED = ["cx.responses:0", "cx.responses:1"]


def ready(probe: BrokerProbe, now: float = 100.0, **changes: Any) -> Readiness:
    fields: dict[str, Any] = {
        "broker_timeout": 10.0,
        "probe": probe,
        "assigned": ASSIGNED,
        "recovery": RECOVERED,
        "rebalancing": False,
        "now": now,
    }
    return Readiness(**(fields | changes))


def test_ready_when_a_broker_answered_lately_with_partitions_and_tables() -> None:
    state = ready(BrokerProbe(answered_at=95.0, brokers=3))
    assert state.reasons() == []
    assert state.body() == {
        "status": "ok",
        "reasons": [],
        "brokers": 3,
        "broker_answered_seconds_ago": 5.0,
        "partitions": 2,
        "assigned": ASSIGNED,
        "recovery": {"recovered": 16, "total": 16},
    }


def test_a_silent_cluster_makes_it_unready_after_the_timeout() -> None:
    probe = BrokerProbe(answered_at=90.0, brokers=1, error="KafkaConnectionError")
    assert ready(probe, now=100.0).reasons() == []  # exactly at the limit
    late = ready(probe, now=112.4)
    assert late.reasons() == [
        "no Kafka broker answered for 22 s (last error: KafkaConnectionError)"
    ]
    body = late.body()
    assert body["status"] == "unavailable" and body["brokers"] == 0


def test_every_missing_condition_is_a_reason() -> None:
    state = ready(
        BrokerProbe(),
        assigned=[],
        rebalancing=True,
        recovery=Recovery(recovered=3, total=16, done=False),
    )
    assert state.reasons() == [
        "no Kafka broker answered yet",
        "no partitions assigned",
        "partitions are being rebalanced",
        "tables recovering: 3 of 16 changelog partitions recovered",
    ]
    assert state.body()["broker_answered_seconds_ago"] is None


class FakeEvent:
    def __init__(self, is_set: bool) -> None:
        self._set = is_set

    def is_set(self) -> bool:
        return self._set


def app_with_recovery(completed: bool, in_recovery: bool, remaining: dict[TP, int]) -> Any:
    recovery = SimpleNamespace(
        active_tps={TP("c", 0), TP("c", 1), TP("c", 2)},
        active_remaining=lambda: remaining,
        completed=FakeEvent(completed),
        in_recovery=in_recovery,
    )
    return SimpleNamespace(tables=SimpleNamespace(recovery=recovery))


def test_recovery_progress_counts_partitions_with_nothing_left() -> None:
    during = table_recovery(app_with_recovery(False, True, {TP("c", 0): 40, TP("c", 1): 0}))
    assert during == Recovery(recovered=2, total=3, done=False)
    again = table_recovery(app_with_recovery(True, True, {TP("c", 2): 5}))
    assert again == Recovery(recovered=2, total=3, done=False), "a later rebalance's recovery"
    done = table_recovery(app_with_recovery(True, False, {}))
    assert done == Recovery(recovered=3, total=3, done=True)
