"""The demo: it refuses a taken port, waits for readiness, and shows "loading state" till then."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console

from stream.demo import (
    DemoError,
    Readiness,
    Samples,
    check_port_free,
    kpi_table,
    owns_port,
    readiness,
)
from stream.pipeline.topics import TopicNames
from stream.settings import Settings

REPO = Path(__file__).resolve().parents[2]
NAMES = TopicNames.from_settings(Settings())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeWorker:
    """An HTTP server answering like a worker would: path -> (status, JSON body)."""

    def __init__(self, answers: dict[str, tuple[int, object]]) -> None:
        self.answers = answers
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = fake.answers.get(self.path, (404, {"error": "not found"}))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])

    def __enter__(self) -> FakeWorker:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


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
