"""Kafka SASL and ingestion authentication, against the session broker's real SASL listener.

The SASL_PLAINTEXT listener (CX_TEST_KAFKA_PORT+2) refuses unauthenticated clients, so a worker
that counts what was produced there, and commands that exit 0 there, really authenticated with
the KAFKA_SECURITY_* settings; the same worker with a wrong password is refused by the broker
(its log says so) and neither password shows up in what the project prints.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from stream.localkafka.broker import probe
from stream.pipeline import ingest
from stream.pipeline.app import create_app
from stream.pipeline.topics import TopicNames
from stream.settings import PROJECT_ROOT, KafkaSettings, Settings
from tests.integration.test_exporter import parse
from tests.support.broker import SaslEndpoint, SessionBroker
from tests.support.kafka_io import produce
from tests.support.worker import Worker

TOKEN = f"tok-{secrets.token_hex(10)}"
AUTH_FAILED = ("SaslAuthenticationFailed", "Authentication failed")


# --- helpers ----------------------------------------------------------------------------------


@dataclass
class VerboseWorker(Worker):
    """A Worker whose log level can be raised (tests/support's Worker always runs `-l info`)."""

    loglevel: str = "info"

    def start(self, wait_for_partitions: int = 1, timeout: float = 90.0) -> VerboseWorker:
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-{self.web_port}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stream", "worker", "-l", self.loglevel],
                cwd=PROJECT_ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.wait_assigned(wait_for_partitions, timeout)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def stream_command(
    *args: str, env: dict[str, str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """`python -m stream ARGS` with the contract's variables in `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "CX_"))}
    base.pop("BROKER_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "stream", *args], cwd=PROJECT_ROOT, env={**base, **env},
        capture_output=True, text=True, check=False, timeout=timeout,
    )  # fmt: skip


def responses(tag: str, count: int) -> list[dict[str, Any]]:
    at = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    return [
        {"response_id": f"{tag}-{i}", "channel": "web", "occurred_at": at,
         "scores": {"nps": i % 11}}
        for i in range(count)
    ]  # fmt: skip


def post(worker: Worker, path: str, body: bytes, header: str | None) -> int:
    request = urllib.request.Request(f"{worker.url}{path}", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if header is not None:
        request.add_header("Authorization", header)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as failure:
        return failure.code


def nps_responses(worker: Worker) -> int:
    """Responses the worker counted in the last hour, all channels and queues."""
    url = f"{worker.url}/kpi?window=1h&channel=all&queue=all"
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return int(json.load(reply)["kpis"].get("nps_responses", 0))
    except urllib.error.HTTPError:
        return 0  # 404: nothing counted yet


async def wait_for_count(worker: Worker, expected: int, timeout: float = 60) -> int:
    """The worker's count once it reached `expected` and stayed there for a second."""
    deadline = time.monotonic() + timeout
    count = nps_responses(worker)
    while time.monotonic() < deadline:
        if count >= expected:
            await asyncio.sleep(1.0)
            return nps_responses(worker)
        await asyncio.sleep(0.3)
        count = nps_responses(worker)
    return count


async def records_in(security: KafkaSettings, topics: list[str], partitions: int = 4) -> int:
    """How many records `topics` hold, read over `security`'s listener."""
    consumer = AIOKafkaConsumer(**security.aiokafka_kwargs())
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def topics_named(security: KafkaSettings, prefix: str) -> set[str]:
    consumer = AIOKafkaConsumer(**security.aiokafka_kwargs())
    await consumer.start()
    try:
        return {topic for topic in await consumer.topics() if topic.startswith(prefix)}
    finally:
        await consumer.stop()


def failed_authentications(session_broker: SessionBroker) -> int:
    """The broker's own count of refused logins (its log), -1 for an external broker."""
    if session_broker.broker is None:
        return -1
    log = session_broker.broker.log_file.read_text(errors="replace")
    return log.count("Failed authentication with")


# --- settings: one source for every client ------------------------------------------------------


SECURITY_CASES = {
    "plaintext": {},
    "sasl-plain": {"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u",
                   "sasl_password": "p-1"},
    "sasl-scram": {"security_protocol": "sasl_plaintext", "sasl_mechanism": "scram-sha-256",
                   "sasl_username": "u", "sasl_password": "p-2"},
    "ssl": {"security_protocol": "SSL"},
    "sasl-ssl": {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                 "sasl_username": "u", "sasl_password": "p-3"},
}  # fmt: skip


@pytest.mark.parametrize("case", SECURITY_CASES)
def test_faust_and_aiokafka_clients_get_the_same_security(case: str) -> None:
    kafka = KafkaSettings(**SECURITY_CASES[case])  # type: ignore[arg-type]
    direct = kafka.aiokafka_kwargs()
    via_faust = dict(credentials_to_aiokafka_auth(kafka.faust_credentials()))
    app = create_app(Settings(topic_prefix="unit.", data_dir=Path("/nonexistent")), kafka)
    via_app = dict(credentials_to_aiokafka_auth(app.conf.broker_credentials))
    for derived in (via_faust, via_app):
        assert derived["security_protocol"] == direct["security_protocol"]
        for key in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
            assert derived.get(key) == direct.get(key), key
        # same kind of TLS context (or none) on both paths
        assert isinstance(derived.get("ssl_context"), ssl.SSLContext) == kafka.uses_ssl
        assert isinstance(direct.get("ssl_context"), ssl.SSLContext) == kafka.uses_ssl


def test_sasl_settings_come_from_the_contract_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9094,k2:9094")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "from-env-pw")
    kafka = KafkaSettings()
    assert kafka.aiokafka_kwargs() == {
        "bootstrap_servers": "k1:9094,k2:9094", "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "svc",
        "sasl_plain_password": "from-env-pw",
    }  # fmt: skip
    assert "from-env-pw" not in repr(kafka) and "from-env-pw" not in str(kafka)


def test_incomplete_sasl_settings_fail_without_echoing_the_password() -> None:
    with pytest.raises(ValidationError) as failure:
        KafkaSettings(security_protocol="SASL_SSL", sasl_password="leak-me-not")  # type: ignore[arg-type]
    assert "KAFKA_SASL_USERNAME" in str(failure.value)
    assert "leak-me-not" not in str(failure.value)
    with pytest.raises(ValidationError) as failure:
        KafkaSettings(
            security_protocol="SASL_PLAINTEXT", sasl_mechanism="GSSAPI",  # type: ignore[arg-type]
            sasl_username="u", sasl_password="leak-me-not",  # type: ignore[arg-type]
        )  # fmt: skip
    assert "leak-me-not" not in str(failure.value)


def test_every_kafka_client_in_stream_is_built_from_the_settings() -> None:
    """No aiokafka client in stream/ is created from a bare address: each one takes `**` the
    KafkaSettings' aiokafka_kwargs() (directly or passed down), so SASL/SSL reach it."""
    clients = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "AIOKafkaClient"}
    found = []
    for path in (PROJECT_ROOT / "stream").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name in clients:
                    splatted = any(k.arg is None for k in node.keywords)
                    found.append((f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}", splatted))
    assert len(found) >= 4  # topics/admin, simulate, replay, the broker probe
    assert [site for site, splatted in found if not splatted] == []


# --- ingestion authentication ----------------------------------------------------------------


def test_ingest_token_is_checked_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    app: Any = SimpleNamespace(settings=Settings(ingest_token=TOKEN))  # type: ignore[arg-type]

    def request(header: str | None) -> Any:
        return SimpleNamespace(headers={"Authorization": header} if header is not None else {})

    calls: list[tuple[bytes, bytes]] = []
    verdict: list[bool] = []
    real = ingest.hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        calls.append((given, expected))
        return verdict[-1] if verdict else real(given, expected)

    monkeypatch.setattr(ingest.hmac, "compare_digest", spy)
    assert ingest.authorised(app, request(f"Bearer {TOKEN}"))
    assert calls[-1] == (TOKEN.encode(), TOKEN.encode())
    assert not ingest.authorised(app, request("Bearer wrong"))
    assert calls[-1] == (b"wrong", TOKEN.encode())
    assert not ingest.authorised(app, request(None))
    assert not ingest.authorised(app, request(f"Basic {TOKEN}"))
    # compare_digest's answer is the decision: flip it and the outcome flips
    verdict.append(True)
    assert ingest.authorised(app, request("Bearer wrong"))
    verdict.append(False)
    assert not ingest.authorised(app, request(f"Bearer {TOKEN}"))


# --- the real SASL listener ---------------------------------------------------------------


@pytest.mark.kafka
async def test_worker_commands_and_ingestion_over_sasl(
    kafka_sasl_bootstrap: SaslEndpoint, topic_prefix: str, tmp_path: Path
) -> None:
    sasl = kafka_sasl_bootstrap
    # The listener really demands authentication: a PLAINTEXT client gets nothing from it.
    assert not await asyncio.to_thread(probe, sasl.address, 3.0)
    common = {
        "CX_TOPIC_PREFIX": topic_prefix,
        "CX_APP_ID": f"{topic_prefix}app",
        "KAFKA_BOOTSTRAP_SERVERS": sasl.address,
    }

    # `topics` (the admin client) over SCRAM-SHA-256
    done = stream_command("topics", env={**common, **sasl.env(sasl.mechanisms[-1])})
    assert done.returncode == 0 and "created:" in done.stdout, done.stderr[-2000:]

    worker = VerboseWorker(
        bootstrap=sasl.address, prefix=topic_prefix, data_dir=tmp_path / "w1",
        app_id=f"{topic_prefix}app", extra_env={**sasl.env("PLAIN"), "CX_INGEST_TOKEN": TOKEN},
    )  # fmt: skip
    try:
        worker.start(wait_for_partitions=4, timeout=60)
        names = TopicNames.from_settings(Settings(topic_prefix=topic_prefix))

        # a client producing over SASL, read by the worker's SASL consumer
        produced = responses("kafka", 40)
        messages = [(r["response_id"].encode(), orjson.dumps(r)) for r in produced]
        await produce(sasl.address, names.responses, messages, security=sasl.settings())

        # ingestion: refused without or with a wrong token, produced over SASL with it
        body = orjson.dumps(responses("ingest", 5))
        assert post(worker, "/ingest/responses", body, None) == 401
        assert post(worker, "/ingest/responses", body, "Bearer wrong-token") == 401
        assert post(worker, "/ingest/responses", body, f"Basic {TOKEN}") == 401
        assert post(worker, "/ingest/responses", body, f"Bearer {TOKEN}") == 202

        # replay over SCRAM-SHA-256
        backfill = tmp_path / "backfill.jsonl"
        backfill.write_bytes(b"\n".join(orjson.dumps(r) for r in responses("replay", 30)))
        scram = {**common, **sasl.env(sasl.mechanisms[-1])}
        done = stream_command("replay", str(backfill), env=scram)
        assert done.returncode == 0, done.stderr[-2000:]

        # exactly what came in over SASL is counted: 40 + 5 + 30 (the refused posts added none)
        assert await wait_for_count(worker, 75) == 75, worker.log_tail()
        events = parse(worker.metrics())
        labels = frozenset({("topic", names.responses), ("outcome", "accepted")})
        assert events[("cx_events_total", labels)] == 75
        assert sasl.password not in worker.log() and TOKEN not in worker.log()
    finally:
        worker.stop()

    # the simulator over SASL, on topics of its own (the worker above would count them)
    other = f"{topic_prefix}sim."
    done = stream_command(
        "simulate", "--rate", "40", "--duration", "2", "--seed", "5",
        env={**common, "CX_TOPIC_PREFIX": other, **sasl.env("PLAIN")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    sent = int(done.stdout.rsplit("sent ", 1)[1].split()[0])
    assert sent > 0
    simulated = TopicNames.from_settings(Settings(topic_prefix=other)).all()
    assert await records_in(sasl.settings(sasl.mechanisms[-1]), simulated) == sent
    for output in (done.stdout, done.stderr):
        assert sasl.password not in output


@pytest.mark.kafka
async def test_a_wrong_password_is_refused_and_never_printed(
    kafka_sasl_bootstrap: SaslEndpoint,
    session_broker: SessionBroker,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    sasl = kafka_sasl_bootstrap
    wrong = f"wrong-{secrets.token_hex(8)}"
    refused_before = failed_authentications(session_broker)

    worker = VerboseWorker(
        bootstrap=sasl.address, prefix=topic_prefix, data_dir=tmp_path / "w1",
        app_id=f"{topic_prefix}app", extra_env=sasl.env("PLAIN", password=wrong),
        loglevel="debug",
    )  # fmt: skip
    try:
        with pytest.raises((RuntimeError, TimeoutError)):
            worker.start(wait_for_partitions=1, timeout=30)
    finally:
        worker.stop()
    log = worker.log()
    assert any(marker in log for marker in AUTH_FAILED), log[-3000:]
    assert worker.process is not None and worker.process.returncode not in (None, 0)
    assert wrong not in log and sasl.password not in log

    # the commands fail too (replay: exit 3, "Kafka failed"), without printing the password
    backfill = tmp_path / "one.jsonl"
    backfill.write_bytes(orjson.dumps(responses("r", 1)[0]))
    env = {
        "CX_TOPIC_PREFIX": topic_prefix,
        "KAFKA_BOOTSTRAP_SERVERS": sasl.address,
        **sasl.env(sasl.mechanisms[-1], password=wrong),
    }
    replayed = stream_command("-l", "debug", "replay", str(backfill), env=env)
    assert replayed.returncode == 3, replayed.stderr[-2000:]
    topics = stream_command("-l", "debug", "topics", env=env)
    assert topics.returncode != 0
    for done in (replayed, topics):
        assert wrong not in done.stdout + done.stderr

    # the broker itself saw the refused logins (PLAIN from the worker, SCRAM from the commands)
    if refused_before >= 0:
        assert failed_authentications(session_broker) >= refused_before + 3
    # and nothing was created with the wrong password
    assert await topics_named(sasl.settings(), topic_prefix) == set()


def test_kafka_client_logs_carry_neither_password_nor_payloads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At debug level aiokafka logs each request (SASL/PLAIN's clear-text password included)
    and the producers log each message; configuring a client masks both."""
    password = f"pw-{secrets.token_hex(6)}"
    kafka = KafkaSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_username="u",
        sasl_password=password,  # type: ignore[arg-type]
    )
    kafka.aiokafka_kwargs()
    auth_bytes = b"u" + bytes(1) + password.encode()
    caplog.set_level(logging.DEBUG, logger="faust.topics")
    with caplog.at_level(logging.DEBUG, logger="aiokafka"):
        logging.getLogger("aiokafka.conn").debug("Request: %s", f"Sasl({auth_bytes!r})")
        producer = logging.getLogger("aiokafka.producer.producer")
        producer.debug("Sending (key=%s value=%s) to %s", b"k1", b'{"from": "+33612"}', "tp")
        logging.getLogger("faust.topics").debug("send: v=%r", bytearray(b"jane@example.org"))
    assert caplog.messages == [
        "Request: Sasl(b'u\\x00***')",
        "Sending (key=<2 bytes> value=<18 bytes>) to tp",  # payloads: personal data
        "send: v='<16 bytes>'",
    ]
