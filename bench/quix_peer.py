"""(C) the same windowed counts with Quix Streams, written as its documentation suggests.

Runs in the peer venv (var/bench-venv, see bench/peer.py), so it imports nothing from the
project: the window sizes and the lateness grace come on the command line from bench/run.py,
which takes them from stream/kpi/windows.py and the worker's settings.

Pipeline: one Application (its own consumer group, auto_offset_reset="earliest"), the event time
taken from `occurred_at`, each response expanded into its 4 segments, `group_by` the segment
(a repartition topic), then one branch per window size: tumbling window, `count()`,
`current()`. The last branch's update records the latest count of each (segment, window,
bucket); the app stops once every (response, segment, window) update has been seen.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from quixstreams import Application
from quixstreams.models import TimestampType

EPOCH_MS = 1000


def event_time_ms(value: dict[str, Any], headers: Any, timestamp: int, kind: TimestampType) -> int:
    """Event time (occurred_at), as the worker uses, instead of the Kafka timestamp."""
    return int(datetime.fromisoformat(value["occurred_at"]).timestamp() * EPOCH_MS)


def segments(value: dict[str, Any]) -> list[dict[str, str]]:
    """The 4 (channel, queue) segments a response counts in, as the project defines them."""
    channel, queue = value["channel"], value.get("queue") or "unassigned"
    pairs = ((channel, queue), (channel, "all"), ("all", queue), ("all", "all"))
    return [{"segment": f"{c}|{q}"} for c, q in pairs]


class Recorder:
    """Latest count per (segment, window, bucket); stops the app after the expected updates."""

    def __init__(self, app: Application, expected_updates: int) -> None:
        self.app = app
        self.expected = expected_updates
        self.updates = 0
        self.inputs = 0
        self.first: float | None = None
        self.last = 0.0
        self.counts: dict[tuple[str, str, int], int] = {}

    def saw_input(self, value: dict[str, Any]) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        self.inputs += 1

    def for_window(self, name: str, width_ms: int) -> Any:
        def record(value: dict[str, Any], key: Any, timestamp: int, headers: Any) -> None:
            self.counts[(str(key), name, value["start"] // width_ms)] = value["value"]
            self.updates += 1
            if self.updates >= self.expected:
                self.last = time.perf_counter()
                self.app.stop()

        return record


def build(args: argparse.Namespace) -> tuple[Application, Recorder]:
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    topic = app.topic(args.topic, value_deserializer="json", timestamp_extractor=event_time_ms)
    windows = [(name, int(width)) for name, width in (w.split(":") for w in args.windows)]
    recorder = Recorder(app, args.events * 4 * len(windows))
    sdf = app.dataframe(topic)
    sdf = sdf.update(recorder.saw_input)
    sdf = sdf.apply(segments, expand=True)
    sdf = sdf.group_by("segment")
    grace_ms = int(args.grace_seconds * EPOCH_MS)
    for name, width in windows:
        width_ms = width * EPOCH_MS
        counted = sdf.tumbling_window(duration_ms=width_ms, grace_ms=grace_ms).count().current()
        counted.update(recorder.for_window(name, width_ms), metadata=True)
    return app, recorder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--windows", nargs="+", default=["5m:15", "1h:300", "24h:3600", "7d:43200"])
    parser.add_argument("--grace-seconds", type=float, default=604800 + 3600)
    args = parser.parse_args()
    app, recorder = build(args)
    app.run()
    if recorder.first is None or recorder.updates < recorder.expected:
        raise SystemExit(f"stopped early: {recorder.updates} of {recorder.expected} updates")
    seconds = recorder.last - recorder.first
    result = {
        "events": recorder.inputs,
        "seconds": seconds,
        "events_per_s": recorder.inputs / seconds,
        "window_updates": recorder.updates,
        "counts": [[*seg.split("|", 1), w, b, n] for (seg, w, b), n in recorder.counts.items()],
    }
    args.output.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
