"""The one place that touches faust-streaming's internals: record batches, commits, stores.

Modules, one concept each: `contract` (the Faust version and attributes relied on, `check`),
`batches` (RecordBatch, BatchRouter), `consumer` (BatchConsumer, its transport and fetch
options, `install`, assignment and lag), `producer` (produce batches), `tables` (CodecTable
and the delta and state logs), `sigint`. Everything is imported from `stream.faustx`.

Faust turns every Kafka message into an Event and walks it through several asyncio hops
(110-190 us each on our machine, ../docs/performance.md), and around a rebalance its fetch
loop can skip offsets and commit them anyway (docs/design.md, "Rebalances"). The KPI agents
therefore receive their topics as record *batches*, in offset order, and decide alone which
offsets of those topics may be committed. Faust keeps everything else: the App, its consumer
group and assignor, the commit loop, tables with changelogs, recovery, standbys, web views.

How: `install(app)` registers `BatchTransport` under the broker URL scheme `cxkafka://`
(Faust picks a transport by scheme). Its consumer, `BatchConsumer`, overrides these methods of
Faust's aiokafka consumer:
  * `_wait_next_records`: the records of a fetch that belong to batch topics are taken out
    and handed to `BatchRouter`, one list per partition; Faust sees only the other topics
    (changelogs during recovery), so it builds no Event for a batch topic's message. Nothing
    is handed on while a rebalance is under way (`App.rebalancing`): Faust clears the agents'
    queues on revocation and each time recovery resumes the flow;
  * `_new_offset`: for batch topics, the offset after the last batch an agent finished;
  * `_filter_tps_with_pending_acks`: Faust's commit also looks at the batch partitions;
  * `seek_to_committed`: reports Faust's seeks (after an assignment and after recovery);
  * `wait_empty`: a revocation also waits for the batch an agent is working on;
  * `_seek`: every seek runs in the consumer's own thread (`ConsumerThread.call_thread`);
  * `_new_consumer_thread`: the thread builds aiokafka's consumer with the app's fetch
    options (`LingeringConsumerThread`; Faust passes neither, so fetch_min_bytes stays 1);
  * `on_partitions_assigned`: the app's hook runs first (transactional producers, which
    fence the previous owner before recovery reads anything);
  * `highwaters`: a changelog ends at its last record, not at a trailing commit marker;
  * `resume_flow`: standbys are sought back to what recovery read (Faust drops fetched ones);
  * `seek_wait`: a changelog partition whose recovery start is unknown (None, after a
    rebalance during recovery) is read from its beginning instead of crashing the worker.
It adds `request_rejoin` (aiokafka's coordinator, in the consumer's thread): a worker whose
transactional producer died asks the group for a new generation (pipeline/transactions.py).
Tables: `CodecTable` reads and writes a table's per-partition store directly, in batches.
Ctrl-C: `hush_sigint` replaces mode's SIGINT handler (which prints `-INT-`) on a worker.
`check()` verifies the Faust version and every attribute used here, with its signature; the
app refuses to start otherwise. tests/unit/faustx/ runs these checks against Faust's classes.
"""

from __future__ import annotations

from stream.faustx.batches import BatchHandler, BatchRouter, RecordBatch, started_consumer
from stream.faustx.consumer import (
    CONSUMER_OPTIONS,
    SCHEME,
    AssignedHook,
    BatchConsumer,
    BatchTransport,
    EndsHook,
    FetchOptions,
    LingeringConsumerThread,
    apply_fetch_options,
    assigned,
    broker_urls,
    fetch_position,
    install,
    lag,
    recovery_seeks,
    request_rejoin,
)
from stream.faustx.contract import SUPPORTED_VERSIONS, IncompatibleFaust, check
from stream.faustx.producer import Sent, confirmed, kafka_producer, send_batched
from stream.faustx.sigint import hush_sigint
from stream.faustx.tables import (
    STATE_LOG_BYTES,
    CodecTable,
    DeltaLogTable,
    StateLog,
    StateLogTable,
    TableT,
    declare_table,
    decode_state_log,
    pack_states,
)

__all__ = [
    "CONSUMER_OPTIONS",
    "SCHEME",
    "STATE_LOG_BYTES",
    "SUPPORTED_VERSIONS",
    "AssignedHook",
    "BatchConsumer",
    "BatchHandler",
    "BatchRouter",
    "BatchTransport",
    "CodecTable",
    "DeltaLogTable",
    "EndsHook",
    "FetchOptions",
    "IncompatibleFaust",
    "LingeringConsumerThread",
    "RecordBatch",
    "Sent",
    "StateLog",
    "StateLogTable",
    "TableT",
    "apply_fetch_options",
    "assigned",
    "broker_urls",
    "check",
    "confirmed",
    "declare_table",
    "decode_state_log",
    "fetch_position",
    "hush_sigint",
    "install",
    "kafka_producer",
    "lag",
    "pack_states",
    "recovery_seeks",
    "request_rejoin",
    "send_batched",
    "started_consumer",
]
