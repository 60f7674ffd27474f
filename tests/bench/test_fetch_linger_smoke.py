"""Small runs of bench.fetch_linger, bench.cpu and bench.transactions, so they cannot rot (no
timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.fetch_linger import FAUST_OPTIONS
from stream.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.kafka


def test_faust_options_are_the_workers_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FAUST_OPTIONS:
        monkeypatch.delenv(name, raising=False)
    assert (Settings().fetch_min_bytes, Settings().fetch_max_wait_ms) == (1024 * 1024, 100)
    for name, value in FAUST_OPTIONS.items():
        monkeypatch.setenv(name, value)
    assert (Settings().fetch_min_bytes, Settings().fetch_max_wait_ms) == (1, 1500)


def run(module: str, *args: str, bootstrap: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=PROJECT_ROOT,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def test_fetch_linger_smoke_run(kafka_bootstrap: str, tmp_path: Path) -> None:
    output = tmp_path / "fetch.json"
    run("bench.fetch_linger", "--rounds", "1", "--seconds", "2", "--simulate-rate", "20",
        "--latency-rate", "50", "--output", str(output), bootstrap=kafka_bootstrap)  # fmt: skip
    result = json.loads(output.read_text())
    (round_,) = result["rounds"]
    for name in ("faust", "worker"):
        assert round_[name]["cpu"]["messages_per_s"] > 0
        latency = round_[name]["latency"]
        assert latency["counted"] == latency["sent"] > 0  # every response reached /metrics
    assert result["summary"]["cpu_ratio_worker_over_faust"] > 0


def test_cpu_phases_smoke_run(kafka_bootstrap: str) -> None:
    done = run("bench.cpu", "--simulate-rate", "20", "--seconds", "2", bootstrap=kafka_bootstrap)
    result = json.loads(done.stdout)
    assert result["steady_load"]["messages_per_s"] > 0
    assert 0 < result["idle"]["cpu_share_of_a_core"] < 2  # a share of the machine's 2 cores


def test_transactions_smoke_run(kafka_bootstrap: str) -> None:
    done = run("bench.transactions", "--takes", "3", "--records", "2", "--rounds", "1",
               bootstrap=kafka_bootstrap)  # fmt: skip
    figures = json.loads(done.stdout)
    assert figures["takes"] == 3 and len(figures["plain"]["ms_per_take"]) == 1
    assert {"transaction_backoff_5ms", "transaction_backoff_100ms"} <= set(figures)
