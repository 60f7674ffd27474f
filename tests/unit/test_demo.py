"""The demo: it refuses a taken port, waits for readiness, and shows "loading state" till then."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from stream.demo import (
    DemoError,
    Readiness,
    Samples,
    Started,
    Thresholds,
    alert_table,
    check_port_free,
    fetch_alerts,
    kpi_table,
    owns_port,
    queue_table,
    readiness,
    start_monitoring,
)
from stream.demo import console as demo_console
from stream.pipeline.topics import TopicNames
from stream.settings import Settings
from tests.support.fakehttp import FakeServer as FakeWorker

REPO = Path(__file__).resolve().parents[2]
NAMES = TopicNames.from_settings(Settings())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listener() -> Iterator[int]:
    """A port some other program listens on (not HTTP)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_the_demo_refuses_a_taken_port(listener: int) -> None:
    unused = free_port()  # no broker there: a demo that went on would fail differently
    env = os.environ | {
        "CX_WEB_PORT": str(listener),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{unused}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "stream", "demo"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, output
    assert f"port {listener} is taken by another program" in output, output
    assert "CX_WEB_PORT" in output, output
    assert "worker stopped" not in output and "offering" not in output, output


def test_a_worker_it_did_not_start_is_named_as_such() -> None:
    assigned = {"status": "ok", "brokers": 1, "assigned": ["cx.responses:0"]}
    with FakeWorker({"/healthz": (200, assigned)}) as fake, pytest.raises(DemoError) as error:
        check_port_free(fake.port)
    assert "a cx-stream worker that this demo did not start" in str(error.value)


def test_a_free_port_passes() -> None:
    check_port_free(free_port())


def test_ownership_of_a_port_is_told_by_the_listening_process(listener: int) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.fail("this check reads /proc (Linux)")
    assert owns_port(os.getpid(), listener) is True
    assert owns_port(os.getppid(), listener) is False
    assert owns_port(os.getpid(), free_port()) is None  # nobody listens: cannot tell


def test_readiness_follows_healthz_ready_and_its_recovery_detail() -> None:
    recovering = {"status": "recovering", "recovery": {"recovered": 3, "partitions": 20}}
    with FakeWorker({"/healthz/ready": (503, recovering)}) as fake:
        assert readiness(fake.port) == Readiness(False, "recovered 3, partitions 20")
        fake.answers["/healthz/ready"] = (200, {"status": "ok"})
        assert readiness(fake.port) == Readiness(True, "")


def test_readiness_falls_back_to_healthz_without_the_ready_endpoint() -> None:
    unassigned = {"status": "degraded", "brokers": 1, "assigned": []}
    with FakeWorker({"/healthz": (503, unassigned)}) as fake:
        assert not readiness(fake.port).ready
        fake.answers["/healthz"] = (200, unassigned | {"status": "ok", "assigned": ["t:0"]})
        assert readiness(fake.port).ready
    assert readiness(fake.port) == Readiness(False, "worker starting")  # nothing answers


def rendered(state: Readiness, samples: Samples, width: int = 200) -> str:
    console = Console(record=True, width=width)
    console.print(kpi_table(state, samples, NAMES))
    return console.export_text()


def sample(name: str, value: float, **labels: str) -> Samples:
    return {(name, frozenset(labels.items())): value}


ROLLUP = {"channel": "all", "queue": "all"}
SAMPLES = (
    sample("cx_nps", 42.5, window="7d", **ROLLUP)
    | sample("cx_acsi_index", 63.25, window="7d", **ROLLUP)
    | sample("cx_churn_ratio", 0.0125, window="7d")
    | sample("cx_sci_secure_ratio", 0.27, window="24h")
    | sample("cx_events_total", 4321, topic=NAMES.responses, outcome="accepted")
)


def test_the_table_says_loading_state_and_shows_no_numbers_until_ready() -> None:
    text = rendered(Readiness(False, "recovered 3, partitions 20"), SAMPLES)
    assert "loading state… (recovered 3, partitions 20)" in text
    assert "42.5" not in text and "4,321" not in text


def test_the_table_shows_the_numbers_once_ready() -> None:
    text = rendered(Readiness(True), SAMPLES)
    assert "loading state" not in text
    for shown in ("42.5", "63.2", "responses 4,321"):
        assert shown in text, (shown, text)


def cells(text: str) -> dict[str, list[str]]:
    """KPI label -> its cells (5m, 1h, 24h, 7d) of a rendered table."""
    rows = [line.split("│")[1:-1] for line in text.splitlines() if line.count("│") == 6]
    return {row[0].strip(): [c.strip() for c in row[1:]] for row in rows}


def test_the_table_is_whole_in_80_columns_with_units_and_ratios_in_percent() -> None:
    big = SAMPLES | sample("cx_nps_responses", 1_234_567, window="7d", **ROLLUP)
    big |= sample("cx_csat_top2_box_ratio", 0.7849, window="1h", **ROLLUP)
    text = rendered(Readiness(True), big, width=80)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "…" not in text
    table = cells(text)
    assert table["NPS (-100..100)"] == ["-", "-", "-", "42.5"]
    assert table["NPS answers"] == ["-", "-", "-", "1,234,567"]
    assert table["CSAT top-2 box (%)"] == ["-", "78.5", "-", "-"]
    assert table["churn (%), all queues"] == ["-", "-", "-", "1.2"]
    assert table["SCI secure (%), all queues"] == ["-", "-", "27.0", "-"]
    assert table["ACSI (0..100)"] == ["-", "-", "-", "63.2"]
    assert {"CSAT top box (%)", "CES average (1..7)", "CSI (-9..9)", "thumbs up (%)",
            "response ratio (%)"} <= set(table)  # fmt: skip


def test_kpis_of_the_stored_state_are_not_called_waiting_for_events() -> None:
    restarted = {k: v for k, v in SAMPLES.items() if k[0] != "cx_events_total"}
    text = rendered(Readiness(True), restarted)
    assert "waiting for its first events" not in text and "stored state" in text
    assert "waiting for its first events" in rendered(Readiness(True), {})


# --- the queues and the alerts ------------------------------------------------------------------

LIMITS = Thresholds(min_responses=30, nps_target=50, nps_window="1h", csat_target=0.8,
                    csat_ratio="top_box", drop_baseline="7d")  # fmt: skip


def queue_samples(
    queue: str, nps: float, n: int, top_box: float, csat_n: int, nps_7d: float
) -> Samples:
    at = {"window": "1h", "channel": "all", "queue": queue}
    return (
        sample("cx_nps", nps, **at)
        | sample("cx_nps_responses", n, **at)
        | sample("cx_csat_top_box_ratio", top_box, **at)
        | sample("cx_csat_responses", csat_n, **at)
        | sample("cx_nps", nps_7d, window="7d", channel="all", queue=queue)
    )


QUEUES = (
    queue_samples("billing", 63.4, 123_456, 0.8812, 65_432, 62.9)
    | queue_samples("escalations", -33.3, 3, 0.5, 2, -20.0)
    | queue_samples("retention", -12.5, 1_234, 0.4321, 987, 55.25)
    | queue_samples("all", 60.0, 200_000, 0.87, 100_000, 60.1)
)


def printed(renderable: object, width: int = 80) -> str:
    console = Console(record=True, width=width)
    console.print(renderable)
    return console.export_text()


def row_of(text: str, first: str) -> list[str]:
    for line in text.splitlines():
        parts = [c.strip() for c in line.split("│")[1:-1]]
        if parts and parts[0] == first:
            return parts
    raise AssertionError(f"no row {first!r} in\n{text}")


def test_the_queue_table_shows_the_minimum_n_gate_whole_in_80_columns() -> None:
    table = queue_table(QUEUES, LIMITS)
    assert table is not None
    text = printed(table)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "…" not in text, text
    assert row_of(text, "billing") == ["billing", "63.4", "123,456", "88.1", "65,432", "62.9", ""]
    assert row_of(text, "retention") == ["retention", "-12.5", "1,234", "43.2", "987", "55.2", ""]
    assert row_of(text, "escalations")[-1] == "NPS, CSAT"  # low, but under the minimum n
    assert "all" not in {line.split("│")[1].strip() for line in text.splitlines() if "│" in line}
    assert "at least 30" in " ".join(text.split())
    assert queue_table(SAMPLES, LIMITS) is None  # no queue in the samples: no table


def alert(name: str, state: str, value: str, **labels: str) -> dict[str, object]:
    return {"labels": {"alertname": name, "job": "cx-worker", **labels}, "state": state,
            "value": value, "activeAt": "2026-03-02T12:00:00Z"}  # fmt: skip


ALERTS = [
    alert("NpsSignificantDrop", "pending", "-1.0123e+01", window="1h", channel="sms",
          queue="retention"),
    alert("NpsBelowTarget", "firing", "-1.25e+01", window="1h", channel="all", queue="retention"),
    alert("CsatBelowTarget", "firing", "0.4321", window="1h", channel="all", queue="retention"),
    alert("ConsumerLagHigh", "pending", "123456", topic="cx.raw.email"),
]  # fmt: skip
DROP_BASE = sample("cx_nps", 55.25, window="7d", channel="sms", queue="retention")


def test_the_alert_table_lists_firing_then_pending_whole_in_80_columns() -> None:
    text = printed(alert_table(ALERTS, QUEUES | DROP_BASE, LIMITS))
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "…" not in text, text
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines()
            if line.count("│") == 6 and "alert" not in line]  # fmt: skip
    assert rows == [
        ["CsatBelowTarget", "firing", "retention", "all", "43.2%"],
        ["NpsBelowTarget", "firing", "retention", "all", "NPS -12.5"],
        ["ConsumerLagHigh", "pending", "-", "-", "cx.raw.email 123,456"],
        ["NpsSignificantDrop", "pending", "retention", "sms", "-10.1 < 55.2"],
    ], text
    assert "upper bound of the 1h NPS < the 7d NPS" in " ".join(text.split())


def test_the_alert_table_says_none_and_when_prometheus_does_not_answer() -> None:
    assert "none" in printed(alert_table([], {}, LIMITS))
    assert "Prometheus does not answer" in printed(alert_table(None, {}, LIMITS))


def test_the_alerts_are_read_from_prometheus_pending_and_firing_only() -> None:
    inactive = alert("NpsBelowTarget", "inactive", "1", queue="billing")
    body = {"status": "success", "data": {"alerts": [*ALERTS, inactive]}}
    with FakeWorker({"/api/v1/alerts": (200, body)}) as fake:
        assert fetch_alerts(f"http://127.0.0.1:{fake.port}") == ALERTS
    assert fetch_alerts(f"http://127.0.0.1:{fake.port}") is None  # nothing answers


async def test_without_the_binaries_the_demo_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither prometheus nor alertmanager there
    started = Started()
    with demo_console.capture() as captured:
        stack = await start_monitoring(free_port(), started)
        started.stop()
    assert stack is None
    assert captured.get().splitlines() == [
        "monitoring off: prometheus, prometheus-alertmanager missing (scripts/setup.sh)"
    ]


def test_a_fresh_broker_gets_the_checked_story_and_a_later_run_new_content() -> None:
    from stream.demo import SEED, content_seed

    assert content_seed(fresh=True) == SEED
    later = {content_seed(fresh=False) for _ in range(5)}
    assert SEED not in later and len(later) > 1
