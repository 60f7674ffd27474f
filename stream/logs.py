"""Quiet Kafka outages: the clients' connection errors collapse to one line per cause.

Without a broker, aiokafka logs every failed connect, metadata refresh, fetch and coordinator
lookup, several per second and partition (110,040 lines in a 40 s outage were seen), and Faust
and mode log the same failure again with a traceback. `install_kafka_log_filter()` puts one
filter on the loggers of aiokafka, Faust and mode that turns each of those records into

    Kafka unreachable at HOST:PORT, retrying; N attempts

at most once per cause every `interval` seconds (the records in between are counted, not
shown), without the traceback. A cause is the broker address the record names (else the
configured bootstrap servers) and the kind of trouble: unreachable, or a retried not-ready
answer of a broker that starts, stops or moves partition leaders (NotLeaderForPartitionError,
...: "Kafka at HOST:PORT not ready (ERROR), retrying; N attempts"). Any other record passes
unchanged.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    NodeNotReadyError,
    NotCoordinatorForGroupError,
    NotEnoughReplicasError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)

LOGGERS = ("aiokafka", "faust", "mode")
# Exceptions that say "no broker answered", in a record's exc_info or among its arguments.
UNREACHABLE = (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    ConnectionError,
    TimeoutError,
)
# The clients' own words for the same thing, when no exception object comes with the record.
_UNREACHABLE_TEXT = re.compile(
    r"Unable connect to|Unable to bootstrap|Unable to update metadata|Connect call failed"
    r"|node which is not ready|NodeNotReadyError|KafkaConnectionError|Connection at \S+ closed"
    r"|coordinator dead|is either not started or not valid|Heartbeat session expired"
    r"|RequestTimedOutError|KafkaTimeoutError|Connection refused"
)
# Retried answers of a broker that is starting, stopping or moving leaders: one line per error
# type, in the same rhythm.
NOT_READY = (
    NotLeaderForPartitionError,
    LeaderNotAvailableError,
    NotCoordinatorForGroupError,
    GroupCoordinatorNotAvailableError,
    NotEnoughReplicasError,
)
_NOT_READY_TEXT = re.compile("|".join(error.__name__ for error in NOT_READY))
# "host:port" in quotes, "at host:port", or a socket address tuple ('host', port).
_ADDRESS = re.compile(
    r"""["'\s]([\w.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})\b|\('([\w.:-]+)',\s*(\d{1,5})[,)]"""
)


@dataclass
class _Outage:
    attempts: int = 0
    last_line: float | None = None
    last_seen: float = 0.0


class KafkaOutageFilter(logging.Filter):
    """Collapses "Kafka unreachable" records: see the module docstring.

    `report_first`: whether the first record of an outage is shown at once (the worker), or
    only when the outage lasts `interval` seconds (CLI commands, which report a failure
    themselves, in one line). An outage ends when its cause was quiet for 3 `interval`s.
    """

    def __init__(
        self,
        fallback: str,
        interval: float = 10.0,
        report_first: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.fallback = fallback
        self.interval = interval
        self.report_first = report_first
        self.clock = clock
        self.outages: dict[str, _Outage] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        kind = trouble(record)
        if kind is None:
            return True
        address = broker_address(record) or self.fallback
        cause = f"{address} {kind}"
        now = self.clock()
        outage = self.outages.get(cause)
        if outage is None or now - outage.last_seen > 3 * self.interval:
            outage = self.outages[cause] = _Outage(last_line=None if self.report_first else now)
        outage.attempts += 1
        outage.last_seen = now
        if outage.last_line is not None and now - outage.last_line < self.interval:
            return False
        outage.last_line = now
        if kind == UNREACHABLE_KIND:
            record.msg, record.args = UNREACHABLE_LINE, (address, outage.attempts)
        else:
            record.msg, record.args = NOT_READY_LINE, (address, kind, outage.attempts)
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


UNREACHABLE_KIND = "unreachable"
UNREACHABLE_LINE = "Kafka unreachable at %s, retrying; %d attempts"
NOT_READY_LINE = "Kafka at %s not ready (%s), retrying; %d attempts"


def trouble(record: logging.LogRecord) -> str | None:
    """ "unreachable" when the record reports a broker that did not answer, the error's name
    when it reports a retried not-ready answer (NOT_READY), else None."""
    args = record.args if isinstance(record.args, tuple) else ()
    errors = [*args, record.exc_info[1] if record.exc_info else None]
    text = _message(record)
    if any(isinstance(e, UNREACHABLE) for e in errors) or _UNREACHABLE_TEXT.search(text):
        return UNREACHABLE_KIND
    for error in errors:
        kind = error if isinstance(error, type) else type(error)
        if issubclass(kind, NOT_READY):
            return kind.__name__
    found = _NOT_READY_TEXT.search(text)
    return found.group() if found else None


def is_unreachable(record: logging.LogRecord) -> bool:
    return trouble(record) == UNREACHABLE_KIND


def broker_address(record: logging.LogRecord) -> str | None:
    """The HOST:PORT a record names, if any."""
    text = _message(record)
    if record.exc_info and record.exc_info[1] is not None:
        text += f" {record.exc_info[1]}"
    match = _ADDRESS.search(" " + text)
    if match is None:
        return None
    host, port = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
    return f"{host}:{port}"


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):  # a malformed record: logging reports it itself
        return str(record.msg)


_installed: KafkaOutageFilter | None = None


def install_kafka_log_filter(
    bootstrap_servers: str, *, interval: float = 10.0, report_first: bool = True
) -> KafkaOutageFilter:
    """Put one KafkaOutageFilter on every logger of aiokafka, Faust and mode (idempotent).

    A logger's filters see only the records of that very logger, not those its children
    propagate, so the filter goes on each of them. The client modules are imported first so
    that their module-level loggers exist; Faust's logging set-up (dictConfig with
    disable_existing_loggers=False) leaves loggers' filters in place.
    """
    global _installed
    # imported for their module-level loggers, which must exist to get the filter
    import aiokafka.admin  # noqa: F401
    import faust.transport.drivers.aiokafka
    import faust.worker  # noqa: F401

    if _installed is None:
        _installed = KafkaOutageFilter(bootstrap_servers, interval, report_first)
    else:
        _installed.fallback, _installed.interval = bootstrap_servers, interval
        _installed.report_first = report_first
    names = {*LOGGERS, *logging.root.manager.loggerDict}
    for name in sorted(names):
        if name in LOGGERS or name.startswith(tuple(f"{prefix}." for prefix in LOGGERS)):
            # addFilter adds a filter once only
            logging.getLogger(name).addFilter(_installed)
    return _installed
