"""Shared fixtures: one real Kafka broker per test session (started only when a test needs it),
unique topics per test, worker subprocesses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import hypothesis  # noqa: F401  (see below)
import pytest

from tests.support.broker import BrokerError, SaslEndpoint, SessionBroker, start_session_broker
from tests.support.worker import Worker

# hypothesis is imported here, at collection, rather than lazily by its pytest plugin in the
# terminal summary: on CPython 3.11.7 that late import (an assertion-rewriting ast.parse deep
# in pytest's hooks) raised "SystemError: AST constructor recursion depth mismatch" after a
# run of tests/integration/test_fencing.py alone.


@pytest.fixture(scope="session")
def session_broker() -> Iterator[SessionBroker]:
    try:
        session = start_session_broker()
    except BrokerError as exc:
        pytest.fail(f"the real Kafka broker could not start, integration tests cannot run:\n{exc}")
    yield session
    if session.broker is not None:
        session.broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(session_broker: SessionBroker) -> str:
    """The session broker's PLAINTEXT listener."""
    return session_broker.address


@pytest.fixture(scope="session")
def kafka_sasl_bootstrap(session_broker: SessionBroker) -> SaslEndpoint:
    """The session broker's SASL_PLAINTEXT listener (CX_TEST_KAFKA_PORT+2) and its test user."""
    if session_broker.sasl is None:
        pytest.fail(
            "the session broker has no SASL listener: with CX_TEST_KAFKA_BOOTSTRAP set, also set "
            "CX_TEST_KAFKA_SASL_BOOTSTRAP, CX_TEST_KAFKA_SASL_USERNAME and _PASSWORD"
        )
    return session_broker.sasl


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def make_worker(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[type[Worker]]:
    started: list[Worker] = []

    def factory(name: str = "w1", **env: str) -> Worker:
        worker = Worker(
            bootstrap=kafka_bootstrap,
            prefix=topic_prefix,
            data_dir=tmp_path / name,
            app_id=f"{topic_prefix}app",
            extra_env=env,
        )
        started.append(worker)
        return worker

    yield factory  # type: ignore[misc]
    for worker in started:
        worker.stop()
