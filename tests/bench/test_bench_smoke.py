"""A small run of the whole benchmark, so it cannot rot (no timing is asserted).

A, F, B (1 worker, then 2 in one group), C and D (Kafka Streams, 1 and 2 threads) drain the
same 3,000 responses, the latency phase runs 2 s at a low rate, the memory phase two tiny
rounds; the first run also builds the Quix Streams venv (var/bench-venv) and the Kafka Streams
jar (var/bench-kstreams). E (Pathway) is skipped (--no-pathway): its venv is 1.6 GB of packages
that CI would install for every new machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream.settings import PROJECT_ROOT

# The run itself may take up to its subprocess timeout (600 s, the first one building the peers).
pytestmark = [pytest.mark.kafka, pytest.mark.timeout(660)]
EVENTS = 3000


def test_bench_smoke_run(kafka_bootstrap: str, tmp_path: Path) -> None:
    output = tmp_path / "result.json"
    chart = tmp_path / "copy" / "bench.png"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--events", str(EVENTS), "--output", str(output),
         "--chart", str(chart), "--latency-rate", "200", "--latency-seconds", "2",
         "--sustained-rate", "0", "--scrape-interval", "0.1", "--rss-events", "500",
         "--simulate-rate", "20", "--no-pathway"],
        cwd=PROJECT_ROOT, env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["A_ceiling"]["events"] == EVENTS
    assert result["B_worker"]["events"] == EVENTS  # the worker's tables hold every response
    assert result["B_1_worker"]["events_per_s"] == result["B_worker"]["events_per_s"]
    assert result["B_2_workers"]["workers"] == 2
    assert result["B_2_workers"]["events"] == EVENTS
    assert result["ratio_B_2_workers_over_B_1_worker"] > 0
    assert result["E_pathway"] is None and result["ratio_B_over_E"] is None
    assert result["C_quixstreams"]["events"] == EVENTS
    assert result["C_quixstreams"]["window_updates"] == EVENTS * 4 * 4  # 4 segments x 4 windows
    assert result["C_quixstreams"]["counts_equal_A"], result["C_quixstreams"]
    kstreams = result["D_kafkastreams"]
    for threads in (1, 2):
        run = kstreams[f"threads_{threads}"]
        assert run["threads"] == threads
        assert run["events"] == EVENTS
        assert run["segment_records"] == EVENTS * 4  # one per segment, counted in every window
        assert run["counts_equal_A"], run
    assert kstreams["events_per_s"] == max(
        kstreams[f"threads_{threads}"]["events_per_s"] for threads in (1, 2)
    )
    assert result["ratio_B_over_D"] > 0
    assert result["F_faust_floor"]["events"] >= EVENTS  # batches may overshoot the goal
    assert result["ratio_B_over_F"] > 0
    assert result["latency_sustained"] is None
    assert result["ratio_B_over_A"] > 0
    assert result["ratio_B_over_C"] > 0
    assert result["B_worker"]["peak_rss_bytes"] > 0
    assert result["B_worker"]["changelog_records_per_event"] > 0
    by_topic = result["B_worker"]["records_per_event_by_topic"]
    # every bench response is a new id, yet the ids' states are one record per stage-1 take
    # and partition, not one per id
    assert 0 < by_topic["ids-responses"] < 0.05
    assert 0 < result["aggregate_records_per_event"] < result["records_per_event"]
    assert result["cpu_us_per_message_drain"] > 0
    assert result["cpu_us_per_event_drain"] == result["cpu_us_per_message_drain"]
    assert result["records_per_event_by_topic"] == by_topic
    read_side = result["read_side_p99_ms"]  # /metrics and /kpi timed during and after the drain
    assert set(read_side) == {"metrics_during", "kpi_during", "metrics_after", "kpi_after"}
    assert read_side["metrics_after"] > 0 and read_side["kpi_after"] > 0
    steady = result["steady_load"]
    assert steady["messages_per_s"] > 0 and result["cpu_us_per_message_at_300_per_s"] > 0
    latency = result["latency"]
    assert latency["sent"] == 400
    assert latency["counted"] == latency["sent"]  # 200/s is far below what a worker drains
    assert 0 <= latency["p50_ms"] <= latency["p99_ms"]
    memory = result["memory"]
    assert [p["events"] for p in memory["few_keys"]["points"]] == [0, 500, 1000]
    assert [p["events"] for p in memory["many_keys"]["points"]] == [0, 500]
    assert (
        memory["many_keys"]["points"][1]["live_keys"] > memory["few_keys"]["points"][1]["live_keys"]
    )
    assert output.with_suffix(".png").stat().st_size > 0
    assert chart.read_bytes() == output.with_suffix(".png").read_bytes()
