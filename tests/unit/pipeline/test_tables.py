"""The worker's tables use the stores and codecs the engine relies on (no broker needed)."""

from __future__ import annotations

from faust.stores.memory import Store as MemoryStore
from faust.stores.rocksdb import Store as RocksDBStore

from stream.aggregation.messages import BucketState
from stream.kpi.windows import LONGEST
from stream.pipeline.codecs import BUCKET_STATE
from stream.worker import app, engine


def table(name: str):  # type: ignore[no-untyped-def]
    return app.tables[name]


def test_bucket_sums_live_in_memory_and_ids_in_rocksdb() -> None:
    # faust falls back to the app's store on a falsy store URL: this pins the fix
    assert isinstance(engine.buckets.data, MemoryStore)
    for name in ("ids-responses", "ids-dispatches", "ids-lifecycle", "kpi-customers"):
        assert isinstance(table(name).data, RocksDBStore), name


def test_changelogs_use_the_state_codecs() -> None:
    # recovery decodes changelog records with the changelog topic's serializer
    assert engine.buckets.changelog_topic.value_serializer == BUCKET_STATE
    # the customers' changelog holds per-batch deltas, read only by the table's replay
    assert table("kpi-customers").changelog_topic.value_serializer == "raw"
    assert table("kpi-customers").changelog_topic.compacting is False
    # the ids' changelogs hold one record of states per batch, deleted once no window can
    # count them; lifecycle states are kept for ever (an activation months old still counts)
    for name in ("ids-responses", "ids-dispatches", "ids-lifecycle"):
        topic = table(name).changelog_topic
        assert (topic.value_serializer, topic.key_serializer) == ("raw", "raw"), name
        assert (topic.compacting, topic.deleting) == (False, True), name
    for name in ("ids-responses", "ids-dispatches"):
        retention = table(name).changelog_topic.retention
        assert LONGEST.seconds + app.settings.late_grace_seconds < retention, name
    lifecycle = table("ids-lifecycle").changelog_topic
    assert lifecycle.retention is None and lifecycle.config["retention.ms"] == "-1"


def test_bucket_codec_round_trips() -> None:
    codec = engine.buckets.changelog_topic
    state = BucketState([1.0, 2.5, 0.0], {"cx.responses:3": 42})
    encoded = app.serializers.dumps_value(None, state, serializer=codec.value_serializer)
    decoded = app.serializers.loads_value(None, encoded, serializer=codec.value_serializer)
    assert decoded == state
