"""The SCI band counts of one stage-2 partition: a scan of its customers' buckets (the read
side until core v3) against the per-customer sums held as arrays (CustomerSums), side by side.

The customers' bucket states come from bench responses (100,000 customers, 6 days), kept to
one partition's share (`--partitions`); both counts run on the same states at the same time
and must agree. Reported: ms per count for each, their ratio, the arrays' build from the
store's items (what a rebalance costs once) and their size.

    python -m bench.sci --events 1000000 --partitions 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from bench.workload import responses
from stream.aggregation.buckets import keys_for, parse_key
from stream.aggregation.customer_sums import CustomerSums
from stream.kpi import sci
from stream.kpi.segments import shard_of
from stream.kpi.windows import BY_NAME

Items = list[tuple[bytes, tuple[float, float]]]  # customer bucket key -> (sum, n)


def customer_buckets(events: int, partitions: int, now: float) -> Items:
    """Partition 0's customer bucket states for `events` bench responses."""
    states: dict[bytes, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for _, value in responses(events):
        r = orjson.loads(value)
        if shard_of(r["customer_id"], partitions) != 0:
            continue
        t = datetime.fromisoformat(r["occurred_at"]).timestamp()
        scores = r["scores"]
        answers = sci.sixtieths(scores.get("nps"), scores.get("csat"), scores.get("ces"))
        for key in keys_for(f"c|{r['customer_id']}", t, now):
            states[key][0] += sum(answers)
            states[key][1] += len(answers)
    return [(k, (v[0], v[1])) for k, v in states.items()]


def scan_counts(items: Iterable[tuple[bytes, tuple[float, float]]], now: float) -> dict:
    """The scan: every customer bucket parsed and summed per (window, customer), then banded."""
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    for key, (total, n) in items:
        segment, window, bucket = parse_key(key)
        if BY_NAME[window].contains(bucket, now):
            kept = sums[window][segment]
            kept[0] += total
            kept[1] += n
    out = {}
    for window, customers in sums.items():
        result = sci.sci(customers.values())
        if result is not None:
            out[window] = [result.customers[band] for band in sci.BANDS]
    return out


def build(items: Items) -> CustomerSums:
    sums = CustomerSums()
    sums.add((*parse_key(key), total, n) for key, (total, n) in items)
    return sums


def timed(fn: Any, rounds: int) -> tuple[Any, float]:
    start = time.perf_counter()
    for _ in range(rounds):
        result = fn()
    return result, (time.perf_counter() - start) / rounds * 1000


def run(events: int, partitions: int, rounds: int) -> dict[str, Any]:
    now = time.time()
    items = customer_buckets(events, partitions, now)
    arrays, build_ms = timed(lambda: build(items), 1)
    scanned, scan_ms = timed(lambda: scan_counts(items, now), rounds)
    counted, arrays_ms = timed(lambda: arrays.band_counts(now), rounds)
    assert counted == scanned, (counted, scanned)
    size = sum(a.nbytes for c in arrays.buckets.values() for chunk in c.chunks for a in chunk)
    size += sys.getsizeof(arrays.codes) + sum(sys.getsizeof(k) for k in arrays.codes)
    return {
        "events": events,
        "customer_buckets": len(items),
        "customers": len(arrays.codes),
        "scan_ms": round(scan_ms, 2),
        "arrays_ms": round(arrays_ms, 2),
        "ratio_scan_over_arrays": round(scan_ms / arrays_ms, 1),
        "arrays_build_ms": round(build_ms, 1),
        "arrays_bytes": size,
        "bytes_per_customer_bucket": round(size / max(1, len(items)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(args.events, args.partitions, args.rounds), indent=2))


if __name__ == "__main__":
    main()
