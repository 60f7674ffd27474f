"""The worker's pure stages without Kafka: where a drain's per-event CPU goes.

Bench responses, grouped by their id's partition in batches of `--batch`, go through stage 1
(`plan_batch`: parse, decide, pre-aggregate) and stage 2 (decode the partials, `apply_batch`),
with in-memory states: what the worker's agents do minus Kafka and RocksDB. For profiles
(`py-spy record -f raw -- python -m bench.pure`) and quick before/after checks; the drain's own
figures come from `python -m bench.run`.

    python -m bench.pure --events 100000 --batch 4000 [--shape live]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from typing import Any

import msgspec

from bench.workload import shaped
from stream.aggregation.buckets import KeyPlan
from stream.aggregation.messages import BucketState, IdState, Partial
from stream.aggregation.routing import id_partition, id_partitions
from stream.aggregation.stage1 import plan_batch
from stream.aggregation.stage2 import apply_batch

PARTITIONS = 4
_encode = msgspec.msgpack.Encoder().encode
_decode_partial = msgspec.msgpack.Decoder(Partial).decode


def batches(
    events: int, size: int, shape: str = "spread"
) -> list[tuple[int, list[tuple[int, bytes]]]]:
    """(partition, [(offset, value)]) in batches of `size` per partition, as a worker reads;
    `shape` as bench.workload.shaped: "spread" over six days, or "live" (the last four
    minutes)."""
    by_partition: dict[int, list[bytes]] = defaultdict(list)
    for key, value in shaped(events, shape):
        by_partition[id_partition(key, PARTITIONS)].append(value)
    out = []
    for partition, values in sorted(by_partition.items()):
        records = list(enumerate(values))
        out += [(partition, records[i : i + size]) for i in range(0, len(records), size)]
    return out


def run(
    events: int, size: int, gc_threshold: int | None = None, shape: str = "spread"
) -> dict[str, Any]:
    """`gc_threshold`: as the worker's CX_GC_THRESHOLD (None: the settings' default)."""
    from stream.pipeline.app import tune_gc
    from stream.worker import app, engine

    tune_gc(app.settings.gc_threshold if gc_threshold is None else gc_threshold)

    work = batches(events, size, shape)
    ids: dict[int, dict[bytes, IdState]] = defaultdict(dict)
    states: dict[int, dict[bytes, BucketState]] = defaultdict(dict)
    limits = app.settings.time_limits()
    began = time.process_time()
    stage1 = stage2 = 0.0
    entries = 0
    for partition, records in work:
        t0 = time.process_time()
        store = ids[partition]
        plan = plan_batch(
            f"responses:{partition}", partition, records, engine.parse_response, limits,
            lambda keys, store=store: [store.get(k) for k in keys],
            lambda keys: id_partitions(keys, PARTITIONS).tolist(), engine.owner_of,
            shards=PARTITIONS,
        )  # fmt: skip
        store.update(plan.states)
        sent = {dest: [_encode(p) for p in partials] for dest, partials in plan.partials.items()}
        t1 = time.process_time()
        plan_keys = KeyPlan(time.time(), PARTITIONS)
        for dest, values in sent.items():
            partials = [_decode_partial(v) for v in values]
            entries += sum(len(p.entries) for p in partials)
            apply_batch(states[dest], partials, plan_keys, engine.member_limits)
        stage2 += time.process_time() - t1
        stage1 += t1 - t0
    total = time.process_time() - began
    return {
        "events": events, "batch": size, "shape": shape,
        "entries_sent_per_event": entries / events,
        "us_per_event": {"stage1": stage1 / events * 1e6, "stage2": stage2 / events * 1e6,
                         "total": total / events * 1e6},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=4000)
    parser.add_argument("--gc-threshold", type=int, help="0: Python's default collections")
    parser.add_argument("--shape", choices=("spread", "live"), default="spread")
    args = parser.parse_args()
    print(json.dumps(run(args.events, args.batch, args.gc_threshold, args.shape), indent=2))


if __name__ == "__main__":
    main()
