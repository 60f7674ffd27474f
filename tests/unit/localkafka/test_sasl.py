"""The local broker's optional SASL_PLAINTEXT listener: its configuration (no broker started)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stream.localkafka import BrokerError, LocalBroker, SaslListener
from tests.unit.localkafka.test_broker import free_port, properties


def test_sasl_listener_is_added_beside_plaintext(tmp_path: Path) -> None:
    sasl = SaslListener(port=19502, username="cx-test", password="pw-1")
    config = properties(LocalBroker(home=tmp_path, port=19500, controller_port=19501, sasl=sasl))
    assert config["listeners"] == (
        "PLAINTEXT://127.0.0.1:19500,CONTROLLER://127.0.0.1:19501,SASL_PLAINTEXT://127.0.0.1:19502"
    )
    assert config["advertised.listeners"] == (
        "PLAINTEXT://127.0.0.1:19500,SASL_PLAINTEXT://127.0.0.1:19502"
    )
    assert config["listener.security.protocol.map"].endswith(",SASL_PLAINTEXT:SASL_PLAINTEXT")
    # brokers and the controller keep talking PLAINTEXT to each other
    assert config["inter.broker.listener.name"] == "PLAINTEXT"
    prefix = "listener.name.sasl_plaintext"
    assert config[f"{prefix}.sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-256"
    assert config[f"{prefix}.plain.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.plain.PlainLoginModule required user_cx-test="pw-1";'
    )
    assert config[f"{prefix}.scram-sha-256.sasl.jaas.config"].startswith(
        "org.apache.kafka.common.security.scram.ScramLoginModule required"
    )


def test_without_sasl_nothing_changes(tmp_path: Path) -> None:
    config = properties(LocalBroker(home=tmp_path, port=19500, controller_port=19501))
    assert "SASL" not in config["listeners"] + config["listener.security.protocol.map"]
    assert not any(key.startswith("listener.name.") for key in config)


def test_scram_users_are_created_when_formatting() -> None:
    sasl = SaslListener(port=1, username="u", password="p", mechanisms=("PLAIN", "SCRAM-SHA-512"))
    assert sasl.scram_arguments() == ["--add-scram", "SCRAM-SHA-512=[name=u,password=p]"]
    plain_only = SaslListener(port=1, username="u", password="p", mechanisms=("PLAIN",))
    assert plain_only.scram_arguments() == []


def test_client_settings_authenticate_with_the_listener_user() -> None:
    sasl = SaslListener(port=19502, username="u", password="pw-2")
    kwargs = sasl.client_settings("SCRAM-SHA-256").aiokafka_kwargs()
    assert kwargs == {
        "bootstrap_servers": "127.0.0.1:19502", "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "u",
        "sasl_plain_password": "pw-2",
    }  # fmt: skip
    assert "pw-2" not in repr(sasl) and "pw-2" not in repr(LocalBroker(sasl=sasl))


@pytest.mark.parametrize("password", ['pw"1', "pw 1", "pw,1]", "pw\n1", "x" * 65])
def test_unsafe_credentials_are_refused_without_echoing_them(password: str) -> None:
    with pytest.raises(BrokerError) as failure:
        SaslListener(port=1, username="u", password=password)
    assert password not in str(failure.value)
    with pytest.raises(BrokerError):
        SaslListener(port=1, username="u", password="")


def test_unknown_mechanisms_are_refused() -> None:
    with pytest.raises(BrokerError, match="GSSAPI"):
        SaslListener(port=1, username="u", password="p", mechanisms=("GSSAPI",))


def test_a_taken_sasl_port_is_refused(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sasl = SaslListener(port=port, username="u", password="p")
        broker = LocalBroker(
            home=tmp_path, port=free_port(), controller_port=free_port(), sasl=sasl
        )
        with pytest.raises(BrokerError, match=f"port {port} .* taken"):
            broker.start()


def test_jars_can_be_shared_between_homes(tmp_path: Path) -> None:
    assert LocalBroker(home=tmp_path / "a").lib == tmp_path / "a" / "lib"
    assert LocalBroker(home=tmp_path / "a", jars=tmp_path / "jars").lib == tmp_path / "jars"
