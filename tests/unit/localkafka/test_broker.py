"""The local broker's configuration and its clear refusals (no broker is started here)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stream.localkafka import BrokerError, LocalBroker
from stream.settings import PROJECT_ROOT


def properties(broker: LocalBroker) -> dict[str, str]:
    lines = broker.server_properties().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_single_node_kraft_settings(tmp_path: Path) -> None:
    config = properties(LocalBroker(home=tmp_path, port=19500, controller_port=19501))
    assert config["process.roles"] == "broker,controller"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:19501"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:19500,CONTROLLER://127.0.0.1:19501"
    assert config["auto.create.topics.enable"] == "false"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert config[key] == "1", key
    assert config["group.initial.rebalance.delay.ms"] == "0"
    assert config["log.dirs"] == str(tmp_path / "data")


def test_missing_java_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no mvn
    broker = LocalBroker(home=tmp_path / "home", port=free_port(), controller_port=free_port())
    with pytest.raises(BrokerError, match="java"):
        broker.start()


def test_missing_maven_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match="mvn"):
        LocalBroker(home=tmp_path / "home").resolve()


def test_taken_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = LocalBroker(home=tmp_path, port=port, controller_port=free_port())
        with pytest.raises(BrokerError, match=f"port {port} .* taken"):
            broker.start()


def test_status_of_a_stopped_broker_exits_3(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stream", "kafka", "status", "--home", str(tmp_path)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3
    assert "not running" in done.stdout


def test_start_does_nothing_when_bootstrap_points_elsewhere(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stream", "kafka", "start", "--home", str(tmp_path)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9092"},
    )  # fmt: skip
    assert done.returncode == 0
    assert "points elsewhere: nothing started" in done.stdout
    assert not (tmp_path / "broker.pid").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
