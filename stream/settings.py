"""Runtime configuration, read from the environment (see README, "Configuration").

Variable names follow ../shared/contract.md; project-specific knobs use the CX_ prefix.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.channels import (
    Outcome,
    TimeLimits,
    adapt_canonical,
    adapt_email,
    adapt_ivr,
    adapt_sms,
)
from stream.kpi.windows import LONGEST

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

# The source checkout: for tests, benchmarks and development tools only. Runtime state never
# goes here (an installed package would keep it next to site-packages): it is relative to the
# working directory, see Settings.data_dir.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
# Mechanisms that need nothing but a username and a password (GSSAPI and OAUTHBEARER need more).
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(BaseSettings):
    """Kafka client settings, shared by the worker, the CLI and the tests.

    Every Kafka client the project creates takes its connection and security settings from
    here: aiokafka clients from `aiokafka_kwargs()`, the Faust app from `faust_credentials()`.
    """

    # hide_input_in_errors: a validation error would otherwise quote every input, the password too.
    model_config = SettingsConfigDict(
        env_prefix="KAFKA_", extra="ignore", hide_input_in_errors=True
    )

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    # Only used with SASL_PLAINTEXT / SASL_SSL; Kafka's own default is PLAIN.
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    # SecretStr: the password stays masked in reprs, logs and validation errors.
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        # Kafka's Java clients accept these in any case; so do we.
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> KafkaSettings:
        if self.uses_sasl and not (self.sasl_username and self.sasl_password):
            # Fail at start-up with a clear message rather than with an opaque broker refusal.
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs KAFKA_SASL_USERNAME "
                "and KAFKA_SASL_PASSWORD"
            )
        return self

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def mechanism(self) -> str:
        return self.sasl_mechanism or "PLAIN"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (KAFKA_SSL_CAFILE, else the system CAs) for SSL protocols."""
        if not self.uses_ssl:
            return None
        return ssl.create_default_context(cafile=self.ssl_cafile)

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for every aiokafka client (producer, consumer, admin)."""
        _LOG_GUARD.install()
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.uses_ssl:
            kwargs["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self._password()
        return kwargs

    def faust_credentials(self) -> CredentialsT | None:
        """The same settings for the Faust app (`broker_credentials`); None for PLAINTEXT.

        Faust derives the protocol from the credentials' type and whether they carry a TLS
        context, and hands them to every client it creates (consumer, producer, topic admin).
        """
        import faust

        _LOG_GUARD.install()
        context = self.ssl_context()
        if self.uses_sasl:
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self._password(),
                mechanism=self.mechanism,
                ssl_context=context,
            )
        if context is not None:
            return faust.SSLCredentials(context)
        return None

    def _password(self) -> str | None:
        """The password, for a client; from now on masked in the Kafka clients' logs."""
        if not self.sasl_password:
            return None
        password = self.sasl_password.get_secret_value()
        _LOG_GUARD.add_secret(password)
        return password


class _KafkaClientLogGuard:
    """Keeps message payloads and the SASL password out of the Kafka clients' log records.

    At debug level aiokafka logs every protocol request and response (fetched records, and the
    clear-text password of a SASL/PLAIN handshake), and the producers of aiokafka and Faust log
    each message's key and value: personal data. A log-record factory sees the records of every
    logger, also of those created later, before any handler: in the records of aiokafka and
    Faust it replaces bytes and protocol structures by their size or type, and masks the
    password wherever it still shows.
    """

    LOGGERS = ("aiokafka", "faust")

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self._previous: Callable[..., logging.LogRecord] | None = None

    def install(self) -> None:
        if self._previous is None:
            self._previous = logging.getLogRecordFactory()
            logging.setLogRecordFactory(self._make_record)

    def add_secret(self, secret: str) -> None:
        # as typed, and as it shows inside a bytes repr (non-ASCII characters escaped)
        self.secrets |= {secret, repr(secret.encode())[2:-1]}
        self.install()

    def _make_record(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        assert self._previous is not None
        record = self._previous(*args, **kwargs)
        # logging.makeLogRecord() builds its record with name None, then fills it in
        if isinstance(record.name, str) and record.name.startswith(self.LOGGERS):
            self._guard(record)
        return record

    def _guard(self, record: logging.LogRecord) -> None:
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(arg) for arg in record.args)
        if not self.secrets:
            return
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: leave it to logging's own report
            return
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None


def _masked(arg: object) -> object:
    """A log argument without its content when it may carry a message or credentials."""
    from aiokafka.protocol.struct import Struct

    if isinstance(arg, bytes | bytearray | memoryview):
        return f"<{len(arg)} bytes>"
    if isinstance(arg, Struct):  # a protocol request or response: records, SASL tokens
        return f"<{type(arg).__name__}>"
    return arg


_LOG_GUARD = _KafkaClientLogGuard()


class Settings(BaseSettings):
    """Worker and pipeline settings."""

    model_config = SettingsConfigDict(env_prefix="CX_", extra="ignore")

    topic_prefix: str = "cx."
    web_port: int = 6066
    # The interface the worker's web server listens on: every one by default (a container, a
    # pod); `python -m stream demo` makes its worker listen on 127.0.0.1 only.
    web_host: str = "0.0.0.0"
    # Every topic the project declares gets this many partitions; tables' changelogs must match.
    partitions: int = 4
    app_id: str = "cx-kpi"
    # RocksDB state, relative to the working directory; the worker creates it with its parents.
    data_dir: Path = Path("var") / "worker"
    # Raw messages larger than this are dead-lettered as `oversized` before any parsing.
    max_message_bytes: int = 65536
    # IVR question key -> KPI; keys not listed are ignored.
    ivr_questions: dict[str, str] = {"1": "nps", "2": "csat", "3": "ces"}
    # CSI attribute weights (normalised per response); empty: every rated attribute weighs the same.
    csi_weights: dict[str, float] = {}
    # Consumer-group session timeout: how long a crashed worker keeps its partitions.
    session_timeout: float = 10.0
    # Seconds between two sweeps that forget ids whose answer left every window.
    id_sweep_interval: float = 3600.0
    # Allocations between two young-generation garbage collections (Python's default is 700;
    # 0 keeps it). A batch allocates objects by the thousand, and each collection walks them.
    gc_threshold: int = 50_000
    # Bearer token of the /ingest endpoints; empty: ingestion disabled.
    ingest_token: SecretStr = SecretStr("")
    # Largest accepted /ingest request body.
    ingest_max_bytes: int = 1_048_576
    # Agent-level gauges: the top agents by volume per window; the rest export as "other".
    agent_top_k: int = 100
    # Queue-level gauges: the top queues by volume per (window, channel); the rest as "other".
    queue_top_k: int = 50
    # Known queue names; when set, any other queue counts as "other" (empty: every name).
    queues: frozenset[str] = frozenset()
    # State caps: distinct agents, and queues per channel, kept per time bucket; beyond them
    # answers count in "other". They bound memory whatever agent ids or queue names arrive.
    agent_limit: int = 1000
    queue_limit: int = 200
    # /healthz/ready: 503 once no broker answered the worker's metadata probe for this long.
    health_broker_timeout: float = 10.0
    # Seconds between two metadata probes (each also times out after this long).
    health_probe_interval: float = 2.5
    # Seconds between two KPI snapshots on cx.kpi.snapshots.
    snapshot_interval: float = 10.0
    # Seconds between two builds of the read model that /metrics and /kpi serve: how stale a
    # scrape can be, beyond the drain itself.
    read_refresh_seconds: float = 0.5
    # Per RocksDB database (one per table and partition): memtable size and read cache.
    rocksdb_write_buffer_mb: int = 8
    rocksdb_block_cache_mb: int = 16
    # How often each stage-2 partition's owner sends its part of the series that span
    # partitions (top-K agents, SCI bands) to the final step, when the part changed: those
    # series on a multi-worker deployment lag the others by up to about this much.
    part_interval_seconds: float = 1.0
    # Events further than this in the future are rejected (`future_timestamp`).
    max_future_seconds: int = 300
    # Events older than the longest window plus this grace are rejected (`too_old`).
    late_grace_seconds: int = 3600
    # How producers map an id key to its partition: murmur2 (Kafka's Java client and
    # aiokafka) or crc32 (librdkafka's default: kcat, confluent-kafka, Go and .NET clients).
    # A message found on another partition than its id's is re-published there.
    id_partitioner: Literal["murmur2", "crc32"] = "murmur2"
    # Agents take what arrived within this many milliseconds as one batch (per partition):
    # fewer sends and waits under a small load, at most this much added latency per stage.
    batch_linger_ms: float = 100.0
    # The broker may hold a fetch this long (ms) until `fetch_min_bytes` have arrived over the
    # assigned partitions. Under a backlog fetches are full at once and nothing waits; under a
    # small load one fetch brings what came meanwhile, instead of a round trip per few
    # messages (docs/performance.md, "Fetch linger"). Kafka's fetch.max.wait.ms and
    # fetch.min.bytes; Faust leaves them at 1 byte.
    fetch_max_wait_ms: int = 100
    fetch_min_bytes: int = 1024 * 1024
    # Detractor answers older than this (seconds) get no follow-up (a backfill of old answers
    # must not ask for call-backs today).
    followup_max_age: float = 48 * 3600.0

    def rocksdb_options(self) -> dict[str, int]:
        """Options of every RocksDB table store (one database per table and partition).

        Faust's defaults (64 MB x 3 write buffers and a 2 GB block cache per database) would
        let a worker's memory grow to gigabytes with 16 databases, whatever the live keys.
        """
        mb = 1024 * 1024
        return {
            "write_buffer_size": self.rocksdb_write_buffer_mb * mb,
            "max_write_buffer_number": 2,
            "block_cache_size": self.rocksdb_block_cache_mb * mb,
        }

    def member_limits(self) -> dict[str, int]:
        return {"a": self.agent_limit, "q": self.queue_limit}

    def queue_label(self, queue: str | None) -> str | None:
        """The queue an answer counts under: itself, or "other" outside the allow-list."""
        if queue is None or not self.queues or queue in self.queues:
            return queue
        return "other"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def time_limits(self, now: datetime | None = None) -> TimeLimits:
        """How far ahead and back event times may be (at `now`, default the current time)."""
        return TimeLimits(
            now=now or datetime.now(UTC),
            max_future=timedelta(seconds=self.max_future_seconds),
            max_age=timedelta(seconds=LONGEST.seconds + self.late_grace_seconds),
        )

    def channel_adapters(self) -> dict[str, Callable[[bytes, TimeLimits], Outcome]]:
        """Channel ("ivr", "sms", "email", "responses") -> its adapter, with these settings."""
        questions, size = self.ivr_questions, self.max_message_bytes
        return {
            "ivr": lambda raw, limits: adapt_ivr(raw, limits, questions, size),
            "sms": lambda raw, limits: adapt_sms(raw, limits, size),
            "email": lambda raw, limits: adapt_email(raw, limits, size),
            "responses": lambda raw, limits: adapt_canonical(raw, limits, size),
        }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


@lru_cache(maxsize=1)
def get_kafka_settings() -> KafkaSettings:
    return KafkaSettings()
