"""The benchmark's PNG: drain throughput of A, F, B, C and D; produce-to-/metrics latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on the benchmark machine or in CI

import matplotlib.pyplot as plt  # after the backend is chosen


def _bars(axis: Any, labels: list[str], values: list[float | None], unit: str) -> None:
    """Bars with their value on top; None (not measured within the wait) as an empty bar."""
    heights = [value or 0.0 for value in values]
    colors = ["#9e9e9e", "#bdbdbd", "#1f77b4", "#ff7f0e", "#2ca02c"]
    bars = axis.bar(labels, heights, color=colors[: len(values)])
    for bar, value in zip(bars, values, strict=True):
        text = "not counted in the wait" if value is None else f"{value:,.0f} {unit}"
        axis.annotate(text, (bar.get_x() + bar.get_width() / 2, value or 0.0),
                      ha="center", va="bottom", fontsize=8)  # fmt: skip


def draw(result: dict[str, Any], path: Path) -> Path:
    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(12, 4.4))
    # Two-line labels: five one-line ones overlap at this width.
    runs = [("A raw\naiokafka", "A_ceiling"), ("F bare\nFaust", "F_faust_floor"),
            ("B this\nworker", "B_worker"), ("C Quix\nStreams", "C_quixstreams"),
            ("D Kafka\nStreams", "D_kafkastreams")]  # fmt: skip
    _bars(throughput, [label for label, _ in runs],
          [result[key]["events_per_s"] for _, key in runs], "/s")  # fmt: skip
    # A is one to two orders of magnitude above B and C: a log scale keeps all three readable.
    throughput.set_yscale("log")
    throughput.set_ylabel("events/s (log scale)")
    throughput.set_title(f"Drain throughput, {result['events']:,} events")
    runs_lat = [r for r in (result["latency"], result.get("latency_sustained")) if r]
    labels, values = [], []
    for run in runs_lat:
        rate = f"{run['offered_rate_per_s']:,.0f}/s"
        labels += [f"p50 @ {rate}", f"p99 @ {rate}"]
        values += [run["p50_ms"], run["p99_ms"]]
    _bars(latency, labels, values, "ms")
    latency.set_yscale("log")
    latency.set_ylabel("ms (log scale)")
    latency.set_title("Produce to /metrics latency")
    machine = result["machine"]
    figure.suptitle(f"cx-stream benchmark: {machine['cpus']} cores, Python {machine['python']}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
