"""A small run of the drain benchmark, so it cannot rot (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream.settings import PROJECT_ROOT

pytestmark = pytest.mark.kafka


def test_bench_smoke_run(kafka_bootstrap: str, tmp_path: Path) -> None:
    output = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--events", "3000", "--output", str(output)],
        cwd=PROJECT_ROOT, env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["A_ceiling"]["events"] == 3000
    assert result["B_worker"]["events"] == 3000  # the worker's tables hold every response
    assert result["ratio_B_over_A"] > 0
    assert result["B_worker"]["peak_rss_bytes"] > 0
    assert result["B_worker"]["changelog_records_per_event"] > 0
