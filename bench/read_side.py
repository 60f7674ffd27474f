"""The read side under a flood of names: every answer names a new agent and a new queue.

Flood-shaped state (`bench.workload.name_flood`, the cardinality attack of
tests/reliability/test_cardinality.py, with the default caps) goes through the worker's pure
stages (stage 1, stage 2) into in-memory bucket states; then, side by side on the same states
at the same time:

  - rows: every group's member rows, walking the buckets' member dicts (`segment_rows`, the
    read side before) against summing the cached member arrays (`group_rows` over
    `MemberArrays`, first from cold, then with only the newest buckets changed, as in a drain);
  - parts: the agents' top K and "other" of each partition (before: `window_vectors` and a
    sort; now: the arrays and `np.lexsort`);
  - scrape: `generate_latest` of the KPI collector over the rows.

Both sides must give equal rows and parts. Reported: ms each, and their ratios.

    python -m bench.read_side --events 200000
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, generate_latest

from bench.workload import name_flood
from stream.aggregation.buckets import KeyPlan, parse_key, window_vectors
from stream.aggregation.group_sums import MemberArrays
from stream.aggregation.messages import BucketState, IdState, Partial
from stream.aggregation.parts import make_part, sparse
from stream.aggregation.routing import id_partition, id_partitions
from stream.aggregation.stage1 import plan_batch
from stream.aggregation.stage2 import apply_batch
from stream.exporter import KpiCollector
from stream.kpi import summary
from stream.kpi.rows import KpiRow
from stream.kpi.segments import OTHER, Segment, agent_group, is_group
from stream.kpi.windows import WINDOWS
from stream.pipeline.read_model import Snapshot, segment_rows

PARTITIONS = 4
_encode = msgspec.msgpack.Encoder().encode
_decode_partial = msgspec.msgpack.Decoder(Partial).decode
States = dict[bytes, BucketState]


def flood_states(events: int) -> States:
    """Every partition's bucket states (one dict: the worker's memory store is one too)."""
    from stream.worker import app, engine

    by_partition: dict[int, list[bytes]] = defaultdict(list)
    for key, value in name_flood(events, datetime.now(UTC)):
        by_partition[id_partition(key, PARTITIONS)].append(value)
    ids: dict[int, dict[bytes, IdState]] = defaultdict(dict)
    states: States = {}
    limits = app.settings.time_limits()
    for partition, values in sorted(by_partition.items()):
        records = list(enumerate(values))
        for i in range(0, len(records), 4000):
            store = ids[partition]
            plan = plan_batch(
                f"responses:{partition}", partition, records[i : i + 4000], engine.parse_response,
                limits, lambda keys, store=store: [store.get(k) for k in keys],
                lambda keys: id_partitions(keys, PARTITIONS).tolist(), engine.owner_of,
                shards=PARTITIONS,
            )  # fmt: skip
            store.update(plan.states)
            keys = KeyPlan(time.time(), PARTITIONS)
            for partials in plan.partials.values():
                decoded = [_decode_partial(_encode(p)) for p in partials]
                apply_batch(states, decoded, keys, engine.member_limits)
    return states


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    out = fn()
    return (time.perf_counter() - began) * 1e3, out


def run(events: int) -> dict[str, Any]:
    states = flood_states(events)
    now = time.time()
    groups: dict[str, list[tuple[bytes, BucketState]]] = defaultdict(list)
    for key, state in states.items():
        segment = parse_key(key)[0]
        if is_group(segment):
            groups[segment].append((key, state))
    members = sum(len(s.members) for items in groups.values() for _, s in items)
    arrays = MemberArrays()

    def load(keys: list[bytes]) -> list[BucketState | None]:
        return [states.get(k) for k in keys]

    def build() -> Snapshot:
        """What a read-model build now does for the groups: each window's sums, no rows."""
        sums = [
            (g, {w.name: arrays.window(g, w, now, load) for w in WINDOWS}) for g in sorted(groups)
        ]
        return Snapshot(now, tuple(sums), ())

    def old_build() -> list[KpiRow]:
        """What it did before: every member's row (`segment_rows` over the bucket states)."""
        return [row for group in sorted(groups) for row in segment_rows(None, now, groups[group])]  # type: ignore[arg-type]

    before_ms, before = timed(old_build)
    cold_ms, snapshot = timed(build)
    newest = [bucket_of(w, now) for w in WINDOWS]
    arrays.forget(k for g in groups for k, _ in groups[g] if parse_key(k)[1:] in newest)
    warm_ms, snapshot = timed(build)
    rows_ms, after = timed(lambda: snapshot.rows)
    assert [r.as_dict() for r in after] == [r.as_dict() for r in before], "rows differ"

    def old_parts() -> list[Any]:
        return [old_candidates(window_vectors(agent_items(states, p), now), 100)
                for p in range(PARTITIONS)]  # fmt: skip

    def new_parts() -> list[Any]:
        out = []
        for p in range(PARTITIONS):
            agents = {w.name: arrays.window(agent_group(p), w, now, load) for w in WINDOWS}
            out.append(make_part(p, now, agents, {}, 100).agents)
        return out

    parts_before_ms, parts_before = timed(old_parts)
    parts_after_ms, parts_after = timed(new_parts)
    assert parts_before == parts_after, "parts differ"

    exported = [r for r in after if r.kind != "a"]
    rows_registry, arrays_registry = CollectorRegistry(), CollectorRegistry()
    rows_registry.register(KpiCollector(lambda: exported, 100, 50, agent_rows=list))
    arrays_registry.register(KpiCollector(lambda: snapshot.totals, 100, 50, agent_rows=list,
                                          queue_members=lambda: snapshot.members("q")))  # fmt: skip
    scrape_before_ms, body_before = timed(lambda: generate_latest(rows_registry))
    scrape_after_ms, body_after = timed(lambda: generate_latest(arrays_registry))
    assert sorted(body_before.splitlines()) == sorted(body_after.splitlines()), "scrapes differ"
    return {
        "events": events,
        "group_members": members,
        "rows": len(after),
        "build_ms": {"rows_before": round(before_ms, 1), "arrays_cold": round(cold_ms, 1),
                     "arrays_newest_changed": round(warm_ms, 1)},
        "build_ratio": round(before_ms / warm_ms, 1),
        "rows_on_request_ms": round(rows_ms, 1),
        "parts_ms": {"before": round(parts_before_ms, 1), "arrays": round(parts_after_ms, 1)},
        "parts_ratio": round(parts_before_ms / parts_after_ms, 1),
        "scrape_ms": {"rows": round(scrape_before_ms, 1), "arrays": round(scrape_after_ms, 1)},
        "scrape_ratio": round(scrape_before_ms / scrape_after_ms, 1),
        "scrape_bytes": len(body_after),
    }  # fmt: skip


def old_candidates(vectors: dict[tuple[str, str], list[float]], top_k: int) -> dict[str, Any]:
    """The parts' agent candidates before the arrays (a sort of every agent's vector)."""
    by_window: dict[str, list[tuple[str, list[float]]]] = defaultdict(list)
    for (segment, window), vector in vectors.items():
        by_window[window].append((Segment.parse(segment).agent_id, vector))
    out: dict[str, Any] = {}
    for window, agents in by_window.items():
        ranking = sorted(
            (a for a in agents if a[0] != OTHER), key=lambda a: (-a[1][summary.N], a[0])
        )
        rest = ranking[top_k:] + [a for a in agents if a[0] == OTHER]
        chosen = [(agent, sparse(vector)) for agent, vector in ranking[:top_k]]
        if rest:
            chosen.append((OTHER, sparse(summary.merge_all(v for _, v in rest))))
        out[window] = chosen
    return out


def bucket_of(window: Any, now: float) -> tuple[str, int]:
    return window.name, window.bucket(now)


def agent_items(states: States, partition: int) -> list[tuple[bytes, BucketState]]:
    group = agent_group(partition).encode()
    return [(k, s) for k, s in states.items() if k.startswith(group + b"\x1f")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    print(json.dumps(run(args.events), indent=2))


if __name__ == "__main__":
    main()
