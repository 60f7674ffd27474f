"""(E) the same windowed counts with Pathway, written as its documentation suggests.

Runs in its own venv (var/bench-venv-pathway, built by bench/peer.py), so it imports nothing
from the project: the window sizes and the lateness grace come on the command line from
bench/run.py, which takes them from stream/kpi/windows.py and the worker's settings. Pathway is
BSL licensed: a benchmark peer only, never a dependency of the project.

Pipeline: one `pw.io.kafka.read` in streaming mode (its own consumer group, earliest offsets,
JSON with the three fields the counts use), the event time parsed from `occurred_at`, each
response flattened into its 4 (channel, queue) segments, then one `windowby` per window size:
a tumbling window by event time with the segment as instance and the grace as cutoff,
`reduce(count)`, written by Pathway's own jsonlines sink (Rust side, no Python per update). A
subscription to each window's total (and one to the input count) tells when every window holds
4 x N segment records; then the run is stopped (SIGTERM, which Pathway turns into a graceful
shutdown that flushes the sinks), and the final counts are summed from the sinks' update
streams, outside the timed part. The engine's threads come from PATHWAY_THREADS (1 or 2 here).

Timing, as for the other peers: from the first batch of input seen (the input count's first
update, so the read of that first batch, at most --autocommit-ms, is not timed) until every
window is complete.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pathway as pw

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Response(pw.Schema):
    """The fields of a canonical SurveyResponse v1 that the windowed counts use."""

    channel: str
    queue: str | None
    occurred_at: str


class Recorder:
    """When the run began and ended: the first batch of input, then every window's total at 4 x N.

    The subscriptions see one row per window (its total) and one for the input count, so the
    Python side does a few calls per batch, never one per response or per bucket.
    """

    def __init__(self, windows: list[str], expected_per_window: int) -> None:
        self.expected = expected_per_window
        self.totals = {name: 0 for name in windows}
        self.ended = {name: -1 for name in windows}
        self.lock = threading.Lock()
        self.first: float | None = None
        self.last: float | None = None
        self.inputs = 0

    def saw_inputs(self, key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
        """The running count of responses read."""
        if self.first is None:
            self.first = time_now()
        if is_addition:
            self.inputs = row["n"]

    def for_window(self, name: str) -> tuple[Any, Any]:
        def total(key: Any, row: dict[str, Any], time: int, is_addition: bool) -> None:
            if is_addition:
                with self.lock:
                    self.totals[name] = row["n"]

        def time_end(time: int) -> None:
            with self.lock:
                self.ended[name] = time
                if self.last is not None or any(t != time for t in self.ended.values()):
                    return  # another window has not delivered this batch yet
                if any(t != self.expected for t in self.totals.values()):
                    return
                self.last = time_now()
            os.kill(os.getpid(), signal.SIGTERM)  # Pathway's graceful stop (flushes the sinks)

        return total, time_end


def time_now() -> float:
    return time.perf_counter()


def build(args: argparse.Namespace) -> tuple[Recorder, dict[str, tuple[int, Path]]]:
    windows = [(name, int(width)) for name, width in (w.split(":") for w in args.windows)]
    recorder = Recorder([name for name, _ in windows], args.events * 4)
    settings = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
    }
    responses = pw.io.kafka.read(
        settings, topic=args.topic, schema=Response, format="json",
        autocommit_duration_ms=args.autocommit_ms,
    )  # fmt: skip
    pw.io.subscribe(responses.reduce(n=pw.reducers.count()), on_change=recorder.saw_inputs)
    queue = pw.if_else(
        pw.this.queue.is_none() | (pw.this.queue == ""), "unassigned", pw.unwrap(pw.this.queue)
    )
    by_segment = responses.select(
        at=pw.this.occurred_at.dt.strptime("%Y-%m-%dT%H:%M:%S.%f%z"),
        segment=pw.make_tuple(
            pw.this.channel + "|" + queue, pw.this.channel + "|all", "all|" + queue, "all|all"
        ),
    ).flatten(pw.this.segment)
    grace = timedelta(seconds=args.grace_seconds)
    sinks = {}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, width in windows:
        counted = by_segment.windowby(
            pw.this.at,
            window=pw.temporal.tumbling(duration=timedelta(seconds=width), origin=EPOCH),
            instance=pw.this.segment,
            behavior=pw.temporal.common_behavior(cutoff=grace),
        ).reduce(segment=pw.this._pw_instance, n=pw.reducers.count(),
                 start=pw.this._pw_window_start.dt.timestamp(unit="s"))  # fmt: skip
        sink = args.out_dir / f"counts-{name}.jsonl"
        sink.unlink(missing_ok=True)
        pw.io.jsonlines.write(counted, sink)
        sinks[name] = (width, sink)
        total, time_end = recorder.for_window(name)
        pw.io.subscribe(counted.reduce(n=pw.reducers.sum(pw.this.n)), on_change=total,
                        on_time_end=time_end)  # fmt: skip
    return recorder, sinks


def final_counts(sinks: dict[str, tuple[int, Path]]) -> list[list[Any]]:
    """[channel, queue, window, bucket, n] from the sinks' update streams (n x diff summed)."""
    counts: dict[tuple[str, str, int], int] = {}
    for name, (width, sink) in sinks.items():
        with sink.open() as lines:
            for line in lines:
                row = json.loads(line)
                slot = (row["segment"], name, int(row["start"]) // width)
                counts[slot] = counts.get(slot, 0) + row["n"] * row["diff"]
    return [[*seg.split("|", 1), w, b, n] for (seg, w, b), n in counts.items() if n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, required=True, help="the jsonlines sinks")
    parser.add_argument("--windows", nargs="+", default=["5m:15", "1h:300", "24h:3600", "7d:43200"])
    parser.add_argument("--grace-seconds", type=float, default=604800 + 3600)
    parser.add_argument("--autocommit-ms", type=int, default=100)
    args = parser.parse_args()
    recorder, sinks = build(args)
    # The SIGTERM of Recorder, once every window is complete, ends the run as SystemExit.
    with contextlib.suppress(SystemExit):
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    if recorder.first is None or recorder.last is None:
        raise SystemExit(f"stopped early: totals {recorder.totals}, {recorder.expected} each")
    seconds = recorder.last - recorder.first
    result = {
        "events": recorder.inputs,
        "seconds": seconds,
        "events_per_s": recorder.inputs / seconds,
        "threads": int(os.environ.get("PATHWAY_THREADS", "1")),
        "segment_records": recorder.totals,
        "counts": final_counts(sinks),
    }
    args.output.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
