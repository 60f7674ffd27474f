"""The customers' delta log (stream.pipeline.kpi_engine.customer_chunks): its records,
replayed in order as recovery does, rebuild the customers' states that stage 2 built, and a
second replay changes nothing."""

from __future__ import annotations

import msgspec

from stream.aggregation.buckets import KeyPlan
from stream.aggregation.messages import BucketState, Contribution, IdState, Partial
from stream.aggregation.stage1 import PartialsBuilder
from stream.aggregation.stage2 import apply_batch
from stream.kpi import summary
from stream.pipeline.kpi_engine import customer_chunks

NOW = 1_765_000_000.0
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list[Partial]).decode


def batch(tag: int) -> list[Partial]:
    """One batch's partials in records of 3 entries: 12 customers answering 1-3 times within
    an hour, so a customer's sums share the hour's and the day's buckets."""
    builder = PartialsBuilder(lambda segment: 0, "t:0", NOW, max_entries=3)
    for i in range(30):
        t = NOW - 60 * ((i * 7) % 50) - tag
        sparse = [summary.SCI_SUM, 6 * (i % 11), summary.SCI_N, 1, summary.N, 1]
        segments = [f"c|k{i % 12}", "q|all|all"]
        builder.add_summed(IdState(0, "t:0", tag, Contribution(t, segments, sparse)))
    return builder.records(tag)[0]


def customers(states: dict[bytes, BucketState]) -> dict[bytes, list[float]]:
    return {k: s.vector for k, s in states.items() if k.startswith(b"c|")}


def test_the_customers_delta_log_replays_to_the_states_stage_2_built() -> None:
    plan = KeyPlan(NOW)
    live: dict[bytes, BucketState] = {}
    records: list[bytes] = []
    for tag in (100, 200):
        partials = batch(tag)
        apply_batch(live, partials, plan)
        # Smaller log records than a customer's sums: they must not be split apart.
        chunks = customer_chunks(partials, max_entries=2)
        assert len(chunks) > 1
        records += [_encode(chunk) for chunk in chunks]
    assert len(customers(live)) > 12  # several windows' buckets per customer

    rebuilt: dict[bytes, BucketState] = {}
    for _ in range(2):  # a second replay (a standby's, a recovery's) is a no-op
        apply_batch(rebuilt, [p for r in records for p in _decode(r)], plan)
        assert customers(rebuilt) == customers(live)
