"""A small run of the scale-out benchmark (bench/scale.py), so it cannot rot: one worker on a
few hundred skewed responses, on the session broker (no timing or share is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stream.settings import PROJECT_ROOT

# Up to its subprocess's own timeout (400 s).
pytestmark = [pytest.mark.kafka, pytest.mark.timeout(460)]


def test_scale_bench_smoke_run(kafka_bootstrap: str, tmp_path: Path) -> None:
    output = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--bootstrap", kafka_bootstrap, "--responses",
         "400", "--customers", "500", "--agents", "50", "--workers", "1", "--shapes", "skewed",
         "--output", str(output)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(output.read_text())
    [run] = result["runs"]
    assert (run["workers"], run["shape"], run["exact"], run["exported_once"]) == (
        1, "skewed", True, True,
    )  # fmt: skip
    assert run["largest_cpu_share"] == run["largest_keys_share"] == 1.0
    assert run["per_worker"][0]["state_keys"] > 400  # at least one id state per response
    assert result["target_met"] is None  # the 4-worker skewed run was not part of it
    assert "largest CPU" in done.stdout
