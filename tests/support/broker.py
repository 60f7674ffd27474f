"""The real Kafka broker of a test session: the project's own LocalBroker on test ports."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from stream.localkafka import BrokerError, LocalBroker
from stream.settings import PROJECT_ROOT

TEST_PORT = int(os.environ.get("CX_TEST_KAFKA_PORT", "19092"))


def start_session_broker() -> tuple[str, LocalBroker | None]:
    """Bootstrap address of a running broker, and the broker to stop afterwards (if we own it).

    CX_TEST_KAFKA_BOOTSTRAP points the tests at an existing broker instead.
    """
    external = os.environ.get("CX_TEST_KAFKA_BOOTSTRAP")
    if external:
        return external, None
    broker = LocalBroker(
        home=PROJECT_ROOT / "var" / "kafka-test", port=TEST_PORT, controller_port=TEST_PORT + 1
    )
    broker.stop()  # a broker left over by an interrupted session
    shutil.rmtree(broker.home / "data", ignore_errors=True)
    broker.start()
    return broker.address, broker


__all__ = ["BrokerError", "Path", "start_session_broker"]
