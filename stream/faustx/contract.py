"""Which faust-streaming this package was written against: its version and every attribute
it overrides or reads, with their signatures (`check`; tests/unit/faustx/ runs it against Faust's
real classes).
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import faust
import mode
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.consumer.subscription_state import Assignment, TopicPartitionState
from faust.sensors.monitor import Monitor
from faust.stores import memory as memory_store
from faust.stores import rocksdb as rocksdb_store
from faust.tables.base import Collection
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers import aiokafka as aiokafka_driver

SUPPORTED_VERSIONS = ("0.15.",)  # prefixes of the faust-streaming versions checked here


class IncompatibleFaust(RuntimeError):
    """The installed faust-streaming lacks something this module relies on."""


# (owner, attribute, the parameter names it must take or None for a non-callable)
_RELIED_ON: list[tuple[type, str, tuple[str, ...] | None]] = [
    (FaustConsumer, "_wait_next_records", ("self", "timeout")),
    (FaustConsumer, "_new_offset", ("self", "tp")),
    (FaustConsumer, "_filter_tps_with_pending_acks", ("self", "topics")),
    (FaustConsumer, "_acked", None),
    (FaustConsumer, "wait_empty", ("self",)),
    (FaustConsumer, "flow_active", None),
    (FaustConsumer, "resume_flow", ("self",)),
    (Recovery, "standby_tps", None),
    (Recovery, "standby_offsets", None),
    (FaustConsumer, "_seek", ("self", "partition", "offset")),
    (aiokafka_driver.ConsumerThread, "call_thread", ("self", "fun")),
    (aiokafka_driver.ConsumerThread, "seek", ("self", "partition", "offset")),
    (aiokafka_driver.Consumer, "_thread", None),
    (aiokafka_driver.Consumer, "seek_to_committed", ("self",)),
    (aiokafka_driver.Consumer, "seek_wait", ("self", "partitions")),
    (aiokafka_driver.Consumer, "seek", ("self", "partition", "offset")),
    (aiokafka_driver.Consumer, "assignment", ("self",)),
    (aiokafka_driver.Consumer, "highwater", ("self", "tp")),
    (aiokafka_driver.Consumer, "_new_consumer_thread", ("self",)),
    (aiokafka_driver.Consumer, "highwaters", ("self",)),
    (FaustConsumer, "on_partitions_assigned", ("self", "assigned", "generation_id")),
    (aiokafka_driver.AIOKafkaConsumerThread, "_create_worker_consumer", ("self", "transport")),
    (aiokafka_driver.AIOKafkaConsumerThread, "_ensure_consumer", ("self",)),
    (GroupCoordinator, "request_rejoin", ("self",)),
    (Assignment, "state_value", ("self", "tp")),
    (TopicPartitionState, "has_valid_position", None),
    (TopicPartitionState, "position", None),
    (aiokafka_driver.Transport, "Consumer", None),
    (rocksdb_store.Store, "_db_for_partition", ("self", "partition")),
    (rocksdb_store.Store, "set_persisted_offset", ("self", "tp", "offset")),
    (memory_store.Store, "set_persisted_offset", ("self", "tp", "offset")),
    (Collection, "_serializer_from_type", ("self", "typ")),
    (Collection, "send_changelog", ("self", "partition", "key", "value")),
    (Collection, "_new_changelog_topic", ("self",)),
    (Collection, "apply_changelog_batch", ("self", "batch")),
    (faust.App, "consumer_generation_id", None),
    (faust.App, "rebalancing", None),
    (faust.App, "_consumer", None),
    (aiokafka_driver.Producer, "_ensure_producer", ("self",)),
    (rocksdb_store.Store, "_dbs", None),
    (rocksdb_store.Store, "offset_key", None),
    (Monitor, "stream_inbound_time", None),
    (mode.Worker, "_on_sigint", ("self",)),
    (mode.Worker, "_schedule_shutdown", ("self", "signal")),
]


def check() -> None:
    """Refuse to run on a faust-streaming this module was not written against."""
    found = version("faust-streaming")
    problems = []
    if not found.startswith(SUPPORTED_VERSIONS):
        problems.append(f"faust-streaming {found} (supported: {', '.join(SUPPORTED_VERSIONS)}x)")
    for owner, name, params in _RELIED_ON:
        attribute = inspect.getattr_static(owner, name, None)
        if attribute is None and name not in getattr(owner, "__annotations__", {}):
            problems.append(f"{owner.__module__}.{owner.__qualname__}.{name} is missing")
            continue
        if params is None:
            continue
        try:
            actual = tuple(inspect.signature(getattr(owner, name)).parameters)
        except (TypeError, ValueError):
            problems.append(f"{owner.__qualname__}.{name} has no signature")
            continue
        if actual[: len(params)] != params:
            problems.append(f"{owner.__qualname__}.{name}{actual} (expected {params}...)")
    if problems:
        raise IncompatibleFaust(
            "stream.faustx cannot run on this Faust: "
            + "; ".join(problems)
            + ". Install the faust-streaming version pinned in pyproject.toml."
        )
