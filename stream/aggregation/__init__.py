"""Exactly-once, two-stage aggregation of KPI contributions (pure; the Faust agents call it).

Stage 1 runs on the partition that owns an input id (response_id, dispatch_id, customer_id). It
keeps that id's state, decides whether a message is new, a revision, a duplicate or a replay of a
message it already applied, and emits entries: (source offset, segment, event time, delta),
summed per (segment, 15 s bucket) over a batch (stage1.py).

Stage 2 runs on the partition that owns a segment (a customer or agent by its own id, a queue
group or rollup by crc32 of its key): it adds deltas into the segment's time buckets. Each
bucket remembers, per source partition, the highest source offset it applied, so entries
re-sent after a crash are applied once. Stage 1 re-sends exactly the same
entries for a replayed message (it stores the previous contribution next to the current one),
and Kafka keeps per-partition order, so no delta is lost or applied twice.

The final step (parts.py) merges each stage-2 partition's share of the series that span
partitions: the top-K agents and the SCI band counts.
"""
