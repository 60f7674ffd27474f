"""Ids' partitions per key (aiokafka's pure-Python murmur2) against per batch (numpy), side
by side on the bench's response ids; both must give the same partitions.

    python -m bench.routing --keys 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import time

from bench.workload import responses
from stream.aggregation.routing import id_partition, id_partitions

PARTITIONS = 4


def run(keys: int, repeat: int) -> dict[str, float]:
    ids = [key for key, _ in responses(keys)]
    per_key = per_batch = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        one_by_one = [id_partition(key, PARTITIONS) for key in ids]
        middle = time.process_time()
        batched = id_partitions(ids, PARTITIONS).tolist()
        ended = time.process_time()
        assert batched == one_by_one
        per_key = min(per_key, (middle - began) / len(ids) * 1e6)
        per_batch = min(per_batch, (ended - middle) / len(ids) * 1e6)
    return {"us_per_key_loop": per_key, "us_per_key_batch": per_batch,
            "ratio": per_key / per_batch}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.keys, args.repeat), indent=2))


if __name__ == "__main__":
    main()
