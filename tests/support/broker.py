"""The real Kafka broker of a test session: the project's own LocalBroker on test ports.

Besides its PLAINTEXT listener (CX_TEST_KAFKA_PORT) it opens a SASL_PLAINTEXT listener on
CX_TEST_KAFKA_PORT+2 with a user whose password is random per session, for the security tests.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from stream.localkafka import BrokerError, LocalBroker, SaslListener
from stream.settings import PROJECT_ROOT, KafkaSettings

DEFAULT_PORT = 19092
TEST_PORT = int(os.environ.get("CX_TEST_KAFKA_PORT", str(DEFAULT_PORT)))
SASL_USERNAME = "cx-test"
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256")


@dataclass(frozen=True)
class SaslEndpoint:
    """A SASL listener and the test user it knows."""

    address: str
    username: str
    password: str = field(repr=False)
    mechanisms: tuple[str, ...] = SASL_MECHANISMS

    def settings(self, mechanism: str = "PLAIN", password: str | None = None) -> KafkaSettings:
        """Client settings for this listener (`password` overrides the right one)."""
        return KafkaSettings(
            bootstrap_servers=self.address,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,  # type: ignore[arg-type]
            sasl_username=self.username,
            sasl_password=password if password is not None else self.password,  # type: ignore[arg-type]
        )

    def env(self, mechanism: str = "PLAIN", password: str | None = None) -> dict[str, str]:
        """The contract's KAFKA_SECURITY_*/SASL_* variables for a subprocess that talks to this
        listener (KAFKA_BOOTSTRAP_SERVERS = `address` is set apart: Worker sets it itself)."""
        return {
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": mechanism,
            "KAFKA_SASL_USERNAME": self.username,
            "KAFKA_SASL_PASSWORD": password if password is not None else self.password,
        }


@dataclass(frozen=True)
class SessionBroker:
    address: str
    sasl: SaslEndpoint | None
    broker: LocalBroker | None  # the broker to stop afterwards, when this session owns it


def start_session_broker() -> SessionBroker:
    """The running broker of this test session.

    CX_TEST_KAFKA_BOOTSTRAP points the tests at an existing broker instead; its SASL listener,
    if any, is CX_TEST_KAFKA_SASL_BOOTSTRAP with CX_TEST_KAFKA_SASL_USERNAME/_PASSWORD.
    """
    external = os.environ.get("CX_TEST_KAFKA_BOOTSTRAP")
    if external:
        return SessionBroker(external, _external_sasl(), None)
    sasl = SaslListener(
        port=TEST_PORT + 2,
        username=SASL_USERNAME,
        password=f"pw-{secrets.token_hex(12)}",  # random: tests grep logs for it
        mechanisms=SASL_MECHANISMS,
    )
    shared_home = PROJECT_ROOT / "var" / "kafka-test"
    # One home (pid file, data) per port: a session on other ports must never stop or wipe
    # the broker of a concurrent session. The jars are shared.
    home = (
        shared_home
        if TEST_PORT == DEFAULT_PORT
        else shared_home.with_name(f"kafka-test-{TEST_PORT}")
    )
    broker = LocalBroker(
        home=home,
        port=TEST_PORT,
        controller_port=TEST_PORT + 1,
        sasl=sasl,
        jars=shared_home / "lib",
    )
    broker.stop()  # a broker left over by an interrupted session of these ports
    # A fresh data dir also gets the SCRAM user, which is written when the storage is formatted.
    shutil.rmtree(broker.home / "data", ignore_errors=True)
    broker.start()
    endpoint = SaslEndpoint(sasl.address, sasl.username, sasl.password, sasl.mechanisms)
    return SessionBroker(broker.address, endpoint, broker)


def _external_sasl() -> SaslEndpoint | None:
    address = os.environ.get("CX_TEST_KAFKA_SASL_BOOTSTRAP")
    if not address:
        return None
    return SaslEndpoint(
        address,
        os.environ.get("CX_TEST_KAFKA_SASL_USERNAME", ""),
        os.environ.get("CX_TEST_KAFKA_SASL_PASSWORD", ""),
        ("PLAIN",),
    )


__all__ = ["BrokerError", "Path", "SaslEndpoint", "SessionBroker", "start_session_broker"]
