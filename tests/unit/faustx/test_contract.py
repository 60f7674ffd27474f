"""stream.faustx against faust-streaming's real classes: what it overrides exists with the
signatures it expects, the app gets the project's transport and consumer, and a Faust
without one of those attributes is refused with a clear message."""

from __future__ import annotations

import inspect

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP

from stream import faustx
from stream.pipeline.app import create_app
from stream.settings import KafkaSettings, Settings


def test_the_installed_faust_passes_the_start_up_check() -> None:
    faustx.check()


@pytest.mark.parametrize(
    "name",
    [
        "_wait_next_records",
        "_new_offset",
        "_filter_tps_with_pending_acks",
        "seek_to_committed",
        "wait_empty",
        "_seek",
        "_new_consumer_thread",
        "on_partitions_assigned",
        "highwaters",
        "resume_flow",
        "seek_wait",
    ],
)
def test_each_override_matches_fausts_signature(name: str) -> None:
    ours = inspect.signature(getattr(faustx.BatchConsumer, name))
    theirs = inspect.signature(getattr(aiokafka_driver.Consumer, name))
    assert list(ours.parameters) == list(theirs.parameters)
    assert inspect.iscoroutinefunction(getattr(faustx.BatchConsumer, name)) == (
        inspect.iscoroutinefunction(getattr(aiokafka_driver.Consumer, name))
    )


def test_the_app_uses_the_batch_transport_and_consumer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(Settings(data_dir=tmp_path), KafkaSettings())
    assert all(url.scheme == faustx.SCHEME for url in app.conf.broker)
    assert isinstance(app.transport, faustx.BatchTransport)
    assert issubclass(app.transport.Consumer, aiokafka_driver.Consumer)
    assert app.transport.Consumer is faustx.BatchConsumer
    assert isinstance(app.batch_router, faustx.BatchRouter)


def test_a_faust_without_an_overridden_method_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(FaustConsumer, "_new_offset")
    with pytest.raises(faustx.IncompatibleFaust, match=r"Consumer\._new_offset is missing"):
        faustx.check()


def test_a_changed_signature_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async def wait_next(self, timeout_ms):  # type: ignore[no-untyped-def]
        return None

    monkeypatch.setattr(FaustConsumer, "_wait_next_records", wait_next)
    with pytest.raises(faustx.IncompatibleFaust, match="_wait_next_records"):
        faustx.check()


def test_an_unknown_faust_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faustx.contract, "version", lambda name: "0.16.0")
    with pytest.raises(faustx.IncompatibleFaust, match=r"faust-streaming 0\.16\.0"):
        faustx.check()


def delta_table(tmp_path, replayed: list, store: str = "memory://local") -> faustx.DeltaLogTable:  # type: ignore[no-untyped-def]
    app = create_app(Settings(data_dir=tmp_path), KafkaSettings())
    return faustx.DeltaLogTable(
        app, replay=lambda partition, values: replayed.append((partition, values)),
        retention=3600.0, value_codec="raw", encode=lambda v: v, decode=lambda b: b,
        name="deltas", store=store, partitions=4,
    )  # fmt: skip


def test_a_delta_table_logs_every_batch_and_writes_its_store_without_records(tmp_path) -> None:  # type: ignore[no-untyped-def]
    table = delta_table(tmp_path, [])
    table.log_deltas(0, b"0@10", b"first")
    table.put_many(0, {b"c|1": b"state"})  # stores never queue records here
    table.log_deltas(1, b"1@20", b"second")
    table.put_many(1, {b"c|1": None})
    assert {p: [k for k, _ in v] for p, v in table.pending.items()} == {0: [b"0@10"], 1: [b"1@20"]}
    topic = table.changelog_topic
    assert topic.compacting is False and topic.deleting is True
    assert topic.retention == 3600.0


def test_a_delta_table_replays_its_changelog_by_partition(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from faust.types import TP

    replayed: list = []
    table = delta_table(tmp_path, replayed, store="rocksdb://")
    tp = TP(table.changelog_topic.get_topic_name(), 2)

    def event(offset: int, value: bytes | None):  # type: ignore[no-untyped-def]
        return SimpleNamespace(
            message=SimpleNamespace(tp=tp, partition=2, offset=offset, value=value)
        )

    table.apply_changelog_batch([event(5, b"a"), event(6, None), event(7, b"b")])
    assert replayed == [(2, [b"a", b"b"])]
    assert table.data.persisted_offset(tp) == 7
    assert table.replayed == {2: 1}  # readers that cache the store start again


def test_a_codec_table_counts_the_changelog_batches_faust_applies(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from faust.types import TP

    app = create_app(Settings(data_dir=tmp_path), KafkaSettings())
    table = faustx.CodecTable(
        app, value_codec="raw", encode=lambda v: v, decode=lambda b: b, name="plain",
        store="memory://local", partitions=4,
    )  # fmt: skip
    tp = TP(table.changelog_topic.get_topic_name(), 3)
    events = [
        SimpleNamespace(
            key=k, value=v, message=SimpleNamespace(tp=tp, partition=3, offset=o, value=v)
        )
        for o, (k, v) in enumerate([(b"k1", b"v1"), (b"k2", b"v2")])
    ]
    table.apply_changelog_batch(events)  # Faust's own apply, after the count
    assert table.replayed == {3: 1}
    assert table.get_many(3, [b"k1", b"k2"]) == [b"v1", b"v2"]
    table.put_many(3, {b"k1": b"staged"})
    assert table.get_many(3, [b"k1"]) == [b"staged"]
    assert table.get_many(3, [b"k1"], staged=False) == [b"v1"]  # what is committed only


def test_get_many_copies_only_the_values_a_table_holds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    copies: list[object] = []

    def copy(value: list[int]) -> list[int]:
        copies.append(value)
        return list(value)

    memory = faustx.CodecTable(
        create_app(Settings(data_dir=tmp_path), KafkaSettings()), value_codec="raw",
        encode=lambda v: bytes(v), decode=list, name="held", store="memory://local",
        partitions=4,
    )  # fmt: skip
    memory.data.data[b"k"] = [1, 2]
    memory.put_many(0, {b"s": [3]})
    got = memory.get_many(0, [b"k", b"s", b"none"], copy=copy)
    assert got == [[1, 2], [3], None] and len(copies) == 2
    got[0].append(9)
    got[1].append(9)
    assert memory.get_many(0, [b"k", b"s"]) == [[1, 2], [3]]  # what the table holds is intact

    copies.clear()
    rocks = faustx.StateLogTable(
        create_app(Settings(data_dir=tmp_path / "r"), KafkaSettings()), retention=3600.0,
        value_codec="raw", encode=lambda v: bytes(v), decode=list, name="decoded",
        store="rocksdb://", partitions=4,
    )  # fmt: skip
    rocks.write_store(1, {b"k": [1, 2]})
    staged = [3]
    rocks.put_many(1, {b"s": staged})
    got = rocks.get_many(1, [b"k", b"s"], copy=copy)
    assert got == [[1, 2], [3]] and got[1] is not staged
    assert copies == []  # RocksDB's values, staged ones too, are decoded afresh
    assert rocks.staged[1][b"s"][0] is None  # a staged value is held as bytes only


def state_table(tmp_path, retention: float | None = 3600.0) -> faustx.StateLogTable:  # type: ignore[no-untyped-def]
    app = create_app(Settings(data_dir=tmp_path), KafkaSettings())
    return faustx.StateLogTable(
        app, retention=retention, value_codec="raw", encode=lambda v: v, decode=lambda b: b,
        name="states", store="rocksdb://", partitions=4,
    )  # fmt: skip


async def test_a_state_table_logs_one_record_per_batch_and_recovery_keeps_the_last_write(
    tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from faust.types import TP

    sent: list[tuple[int, list]] = []

    async def send_batched(app, topic, partition, records, producer):  # type: ignore[no-untyped-def]
        sent.append((partition, list(records)))
        return []

    monkeypatch.setattr(faustx.tables, "send_batched", send_batched)
    table = state_table(tmp_path)
    table.put_many(1, {b"id-1": b"v1", b"id-2": b"v2"})
    table.put_many(1, {b"id-1": b"v1'", b"mark": b"m"})  # one take, two writes
    assert table.get_many(1, [b"id-1"]) == [b"v1'"]  # staged writes read back at once
    _, count = await table.send_pending(None, 1)
    assert count == 1 and len(sent) == 1
    ((partition, [(_, value)]),) = sent
    assert partition == 1
    assert faustx.decode_state_log(value) == [(b"id-1", b"v1'"), (b"id-2", b"v2"), (b"mark", b"m")]
    table.put_many(2, {b"id-3": b"x"})
    table.discard_staged(2)  # a take that did not commit logs nothing
    assert (await table.send_pending(None, 2))[1] == 0

    # recovery: another worker's store, from the log's records in order
    replica = state_table(tmp_path / "replica")
    tp = TP(replica.changelog_topic.get_topic_name(), 1)
    later = faustx.pack_states({b"id-2": None, b"id-4": b"v4"})
    events = [
        SimpleNamespace(message=SimpleNamespace(tp=tp, partition=1, offset=o, value=v))
        for o, v in enumerate([value, *later])
    ]
    replica.apply_changelog_batch(events)
    assert replica.get_many(1, [b"id-1", b"id-2", b"id-4", b"mark"]) == [b"v1'", None, b"v4", b"m"]
    assert replica.data.persisted_offset(tp) == 1


def test_state_log_records_stay_far_below_the_broker_limit() -> None:
    states = {b"%08d" % i: b"s" * 200 for i in range(5000)}  # ~1 MB of states
    records = faustx.pack_states(states)
    assert len(records) > 1 and max(map(len, records)) < faustx.STATE_LOG_BYTES + 1024
    decoded = [item for record in records for item in faustx.decode_state_log(record)]
    assert decoded == list(states.items())


def test_a_state_table_kept_for_ever_asks_the_broker_for_no_retention(tmp_path) -> None:  # type: ignore[no-untyped-def]
    topic = state_table(tmp_path, retention=None).changelog_topic
    assert (topic.compacting, topic.deleting, topic.retention) == (False, True, None)
    assert topic.config["retention.ms"] == "-1"


async def test_the_worker_consumer_lets_the_broker_hold_a_fetch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, fetch_max_wait_ms=123, fetch_min_bytes=4567)
    app = create_app(settings, KafkaSettings())
    thread = app.consumer._thread
    assert isinstance(thread, faustx.LingeringConsumerThread)
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (4567, 123)
    finally:
        await consumer.stop()


def test_aiokafka_hands_the_fetch_options_to_its_fetcher() -> None:
    # What stream.faustx.apply_fetch_options relies on: start() builds the fetcher from them.
    import aiokafka

    source = inspect.getsource(aiokafka.AIOKafkaConsumer.start)
    for name in faustx.CONSUMER_OPTIONS:
        assert f"{name.removeprefix('_')}=self.{name}" in source


def test_an_aiokafka_consumer_without_the_fetch_options_is_refused() -> None:
    with pytest.raises(faustx.IncompatibleFaust, match="_fetch_min_bytes"):
        faustx.apply_fetch_options(object(), faustx.FetchOptions(1, 100))


def test_a_recovery_seek_without_a_start_reads_from_the_beginning() -> None:
    a, b, c = TP("t-changelog", 0), TP("t-changelog", 1), TP("t-changelog", 2)
    assert faustx.recovery_seeks({a: None, b: 0, c: 17}) == {a: 0, b: 0, c: 17}


async def test_recovery_seeks_reach_aiokafka_as_offsets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Through the real consumer class down to its thread's seek_wait."""
    app = create_app(Settings(data_dir=tmp_path), KafkaSettings())
    consumer = app.consumer
    assert isinstance(consumer, faustx.BatchConsumer)
    seen: list[dict[TP, int]] = []

    class Thread:
        async def seek_wait(self, partitions: dict[TP, int]) -> None:
            seen.append(dict(partitions))

    consumer._thread = Thread()  # type: ignore[assignment]
    tp = TP("t-changelog", 3)
    await consumer.seek_wait({tp: None})
    assert seen == [{tp: 0}]
