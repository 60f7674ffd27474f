"""KafkaOutageFilter: a Kafka outage is one line per cause every 10 s, without tracebacks."""

from __future__ import annotations

import logging

import pytest
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError, NotLeaderForPartitionError

from stream.logs import KafkaOutageFilter, broker_address, install_kafka_log_filter, is_unreachable


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, *args: object, level: int = logging.ERROR, exc: BaseException | None = None,
           name: str = "aiokafka.client") -> logging.LogRecord:  # fmt: skip
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord(name, level, __file__, 1, msg, args, exc_info)


def refused(port: int = 9092) -> OSError:
    return ConnectionRefusedError(111, f"Connect call failed ('127.0.0.1', {port})")


OUTAGE = [
    record("Unable connect to node with id %s: %s", 1, refused()),
    record("Unable to update metadata from %s", [1]),
    record("Failed fetch messages from %s: %s", 1, NodeNotReadyError("node 1")),
    record("Group Coordinator Request failed: %s", NodeNotReadyError("node 1")),
    record("Heartbeat session expired - marking coordinator dead"),
    record("Error: %r", KafkaConnectionError("Unable to bootstrap"), name="faust.worker"),
]


def test_an_outage_is_one_line_per_cause_every_interval() -> None:
    clock = Clock()
    guard = KafkaOutageFilter("127.0.0.1:9092", interval=10.0, clock=clock)
    shown: list[str] = []
    for tick in range(200):  # 20 s, 10 records a second
        clock.now = tick / 10
        rec = OUTAGE[tick % len(OUTAGE)]
        rec = logging.makeLogRecord(rec.__dict__)
        if guard.filter(rec):
            shown.append(rec.getMessage())
    assert shown == [
        "Kafka unreachable at 127.0.0.1:9092, retrying; 1 attempts",
        "Kafka unreachable at 127.0.0.1:9092, retrying; 101 attempts",
    ]


def test_the_collapsed_line_has_no_traceback() -> None:
    try:
        raise KafkaConnectionError("Unable to bootstrap from [('10.0.0.7', 9093, 2)]")
    except KafkaConnectionError as exc:
        rec = record("Error: %r", exc, exc=exc, name="mode.worker")
    assert KafkaOutageFilter("fallback:1").filter(rec)
    assert rec.getMessage() == "Kafka unreachable at 10.0.0.7:9093, retrying; 1 attempts"
    assert rec.exc_info is None and rec.exc_text is None
    assert "Traceback" not in logging.Formatter().format(rec)


def test_causes_are_counted_apart_and_an_outage_ends_after_quiet() -> None:
    clock = Clock()
    guard = KafkaOutageFilter("bootstrap:9092", interval=10.0, clock=clock)
    assert guard.filter(record('Unable connect to "%s:%s": %s', "b1", 9092, refused()))
    assert guard.filter(record('Unable connect to "%s:%s": %s', "b2", 9092, refused()))
    assert not guard.filter(record('Unable connect to "%s:%s": %s', "b1", 9092, refused()))
    clock.now = 31.0  # quiet for more than 3 intervals: a new outage, counted from 1
    rec = record('Unable connect to "%s:%s": %s', "b1", 9092, refused())
    assert guard.filter(rec)
    assert rec.getMessage() == "Kafka unreachable at b1:9092, retrying; 1 attempts"


def test_commands_report_the_first_failure_themselves() -> None:
    clock = Clock()
    guard = KafkaOutageFilter("h:1", interval=10.0, report_first=False, clock=clock)
    assert not guard.filter(record("Unable to update metadata from %s", [1]))
    clock.now = 9.9
    assert not guard.filter(record("Unable to update metadata from %s", [1]))
    clock.now = 10.0
    rec = record("Unable to update metadata from %s", [1])
    assert guard.filter(rec)
    assert rec.getMessage() == "Kafka unreachable at h:1, retrying; 3 attempts"


@pytest.mark.parametrize(
    "rec",
    [
        record("Heartbeat failed: %r", "RebalanceInProgressError"),
        record("Auto offset commit failed: %s", "CommitFailedError"),
        record("Unable connect to node with id %s: %s", 1, refused(), level=logging.INFO),
        record("Got error produce response: %s", "MessageSizeTooLargeError"),
    ],
)
def test_other_records_pass_unchanged(rec: logging.LogRecord) -> None:
    before = rec.getMessage()
    assert KafkaOutageFilter("h:1").filter(rec)
    assert rec.getMessage() == before


@pytest.mark.parametrize(
    ("rec", "address"),
    [
        (record('Unable connect to "%s:%s": %s', "kafka-0.kafka", 9093, "x"), "kafka-0.kafka:9093"),
        (record("Unable connect to node with id %s: %s", 1, refused(39192)), "127.0.0.1:39192"),
        (record("Connection at 10.1.2.3:9092 closed"), "10.1.2.3:9092"),
        (record("Unable to update metadata from %s", [1]), None),
    ],
)
def test_broker_address(rec: logging.LogRecord, address: str | None) -> None:
    assert is_unreachable(rec)
    assert broker_address(rec) == address


def test_installed_on_the_clients_loggers_once() -> None:
    guard = install_kafka_log_filter("h:1")
    again = install_kafka_log_filter("h:2", report_first=False)
    assert again is guard and guard.fallback == "h:2" and not guard.report_first
    clients = ("aiokafka", "aiokafka.conn", "aiokafka.consumer.fetcher", "faust.worker", "mode")
    for name in (*clients, "aiokafka.consumer.group_coordinator", "faust.transport.consumer"):
        assert logging.getLogger(name).filters.count(guard) == 1, name
    assert guard not in logging.getLogger("stream").filters


def test_leader_moves_while_a_broker_restarts_are_one_line_per_error_type() -> None:
    clock = Clock()
    guard = KafkaOutageFilter("127.0.0.1:9092", interval=10.0, clock=clock)
    shown = []
    for tick in range(60):
        clock.now = tick / 10
        rec = record(
            "Got error produce response on topic-partition %s, retrying. Error: %s",
            f"TopicPartition(topic='cx.raw.sms', partition={tick % 4})",
            NotLeaderForPartitionError,
            level=logging.WARNING,
            name="aiokafka.producer.sender",
        )
        if guard.filter(rec):
            shown.append(rec.getMessage())
    assert shown == [
        "Kafka at 127.0.0.1:9092 not ready (NotLeaderForPartitionError), retrying; 1 attempts"
    ]
    assert guard.filter(record("Unable to update metadata from %s", [1])), "another cause"


def test_make_log_record_works_with_the_client_log_guard_installed() -> None:
    from stream.settings import KafkaSettings

    KafkaSettings().aiokafka_kwargs()  # installs the log-record factory of stream.settings
    rebuilt = logging.makeLogRecord({"name": "aiokafka", "msg": "x %s", "args": (b"secret",)})
    assert rebuilt.name == "aiokafka" and rebuilt.msg == "x %s"
