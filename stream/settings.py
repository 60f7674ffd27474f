"""Runtime configuration, read from the environment (see README, "Configuration").

Variable names follow ../shared/contract.md; project-specific knobs use the CX_ prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
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

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class KafkaSettings(BaseSettings):
    """Kafka client settings, shared by the worker, the CLI and the tests."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = Field(default=None, repr=False)
    ssl_cafile: str | None = None

    def aiokafka_kwargs(self) -> dict[str, object]:
        """Keyword arguments for aiokafka clients (producer, consumer, admin)."""
        kwargs: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        if self.security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            kwargs["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        return kwargs


class Settings(BaseSettings):
    """Worker and pipeline settings."""

    model_config = SettingsConfigDict(env_prefix="CX_", extra="ignore")

    topic_prefix: str = "cx."
    web_port: int = 6066
    # Every topic the project declares gets this many partitions; tables' changelogs must match.
    partitions: int = 4
    app_id: str = "cx-kpi"
    data_dir: Path = PROJECT_ROOT / "var" / "worker"
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
    # Bearer token of the /ingest endpoints; empty: ingestion disabled.
    ingest_token: SecretStr = SecretStr("")
    # Largest accepted /ingest request body.
    ingest_max_bytes: int = 1_048_576
    # Agent-level gauges: the top agents by volume per window; the rest export as "other".
    agent_top_k: int = 100
    # Seconds between two KPI snapshots on cx.kpi.snapshots.
    snapshot_interval: float = 10.0
    # Events further than this in the future are rejected (`future_timestamp`).
    max_future_seconds: int = 300
    # Events older than the longest window plus this grace are rejected (`too_old`).
    late_grace_seconds: int = 3600

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
