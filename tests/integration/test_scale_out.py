"""Four workers on skewed traffic (half of all answers to one queue and one agent): every series
is exact, and each worker's share of CPU and state is printed (run pytest with -s to see it).

CPU shares are not asserted: performance is measured by bench/scale.py, never here. The state
share of keys is asserted (see the comment at the assertion); the measurement is
tests/support/scale.py's `measure_run`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tests.support.scale import PARTIALS, measure_run
from tests.support.traffic import Population, make_traffic
from tests.support.worker import Worker

pytestmark = pytest.mark.kafka
WORKERS = 4
SKEWED = Population(customers=20_000, agents=500, skew=0.5)
LARGEST_KEYS_SHARE = 0.35  # the target for the largest state share, with 4 workers


@pytest.mark.timeout(600)
async def test_four_workers_on_skewed_traffic_are_exact_and_share_the_state(
    kafka_bootstrap: str, topic_prefix: str, make_worker: Callable[..., Worker]
) -> None:
    traffic = make_traffic(datetime.now(UTC), responses=3000, seed=43, who=SKEWED)
    workers = [make_worker(f"w{i}", CX_SNAPSHOT_INTERVAL="3600") for i in range(WORKERS)]
    run = await measure_run(kafka_bootstrap, topic_prefix, workers, traffic, timeout=300)
    print(f"\n{run.summary()}")
    for w in run.per_worker:
        tables = ", ".join(f"{t} {v['keys']}" for t, v in sorted(w.state_by_table.items()))
        print(f"  {w.name} {PARTIALS} {w.partitions}: cpu {w.cpu_seconds:.2f} s "
              f"({w.cpu_share:.2f}, idle {w.idle_cpu_per_second:.3f}/s), keys {w.state_keys} "
              f"({w.keys_share:.2f}: {tables}), bytes {w.state_bytes} ({w.bytes_share:.2f}), "
              f"standby keys {w.standby_keys}")  # fmt: skip

    assert not run.rebalanced, "the group rebalanced during the drain: the shares mean nothing"
    assert sorted(p for w in run.per_worker for p in w.partitions) == [0, 1, 2, 3]
    # Exact: the union of the workers' /kpi/all equals the batch computation, no segment on two
    # workers, and every /metrics series on exactly one worker with the batch's value.
    assert run.exact, run.exact_error
    assert run.exported_once, run.exported_error
    assert run.series > 0
    # STATE SHARE, the target (requirement 3): no worker holds more than 0.35 of the
    # keys of the table partitions it owns actively (standby copies not counted). This FAILS
    # on a core that keeps every customer on one stage-2 partition and every agent on another:
    # the assertion stays, it is the goal the scale-out change must reach.
    assert run.largest_keys_share <= LARGEST_KEYS_SHARE, run.summary()
