"""Resolve, format, start, probe and stop a local Apache Kafka broker.

The jars come from Maven Central through `mvn` (pom.xml beside this file pins the versions) and
are cached under the broker's home folder (default var/kafka, ignored by git). The broker runs
`kafka.Kafka` in combined broker+controller KRaft mode with every replication factor at 1, which
is what a single node needs; the JVM heap is sized for a 2-core, 24 GiB machine.

Optionally (`sasl=SaslListener(...)`) the broker also opens a SASL_PLAINTEXT listener with one
user, so that tests can prove clients really authenticate; the PLAINTEXT listener stays for
everything else (inter-broker traffic, tools, other tests).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stream.settings import PROJECT_ROOT, KafkaSettings

HERE = Path(__file__).resolve().parent
KAFKA_VERSION = re.search(r"<kafka.version>([^<]+)<", (HERE / "pom.xml").read_text()).group(1)  # type: ignore[union-attr]
JVM_FLAGS = [
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]


class BrokerError(RuntimeError):
    """A clear, user-facing reason why the local broker cannot be used."""


# Credentials end up inside a quoted JAAS value and a StorageTool `--add-scram` argument, whose
# quoting rules differ; a conservative alphabet keeps both unambiguous.
CREDENTIAL = re.compile(r"[A-Za-z0-9._-]{1,64}")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class SaslListener:
    """An extra SASL_PLAINTEXT listener on 127.0.0.1 that knows one user.

    PLAIN users are declared in the listener's JAAS configuration; SCRAM users are written into
    the cluster metadata when the storage is formatted (`--add-scram`), so they exist only in a
    data directory formatted with this listener configured.
    """

    port: int
    username: str
    password: str = field(repr=False)
    mechanisms: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256")

    def __post_init__(self) -> None:
        if not (CREDENTIAL.fullmatch(self.username) and CREDENTIAL.fullmatch(self.password)):
            # The values themselves are not echoed: one of them is a password.
            raise BrokerError(
                "the SASL user name and password may only use letters, digits, '.', '_' and '-'"
            )
        unknown = [m for m in self.mechanisms if m not in SASL_MECHANISMS]
        if unknown or not self.mechanisms:
            raise BrokerError(f"SASL mechanisms must be among {SASL_MECHANISMS}, got {unknown}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_settings(self, mechanism: str = "PLAIN") -> KafkaSettings:
        """Client settings that authenticate to this listener with `mechanism`."""
        return KafkaSettings(
            bootstrap_servers=self.address,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,  # type: ignore[arg-type]
            sasl_username=self.username,
            sasl_password=self.password,  # type: ignore[arg-type]
        )

    def server_properties(self) -> dict[str, str]:
        prefix = "listener.name.sasl_plaintext"
        settings = {f"{prefix}.sasl.enabled.mechanisms": ",".join(self.mechanisms)}
        for mechanism in self.mechanisms:
            module = (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'user_{self.username}="{self.password}";'
                if mechanism == "PLAIN"
                else "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
            settings[f"{prefix}.{mechanism.lower()}.sasl.jaas.config"] = module
        return settings

    def scram_arguments(self) -> list[str]:
        """StorageTool `format` arguments that create the SCRAM user(s)."""
        return [
            argument
            for mechanism in self.mechanisms
            if mechanism.startswith("SCRAM")
            for argument in (
                "--add-scram",
                f"{mechanism}=[name={self.username},password={self.password}]",
            )
        ]


@dataclass(frozen=True)
class LocalBroker:
    home: Path = PROJECT_ROOT / "var" / "kafka"
    port: int = 9092
    controller_port: int = 9093
    partitions: int = 4
    sasl: SaslListener | None = None
    # The Maven-resolved jars; default home/lib. Several brokers (one per test port) can share one.
    jars: Path | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def lib(self) -> Path:
        return self.jars or self.home / "lib"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    # -- resolution ---------------------------------------------------------------------------
    def resolve(self) -> list[Path]:
        """The broker's classpath, downloading it with Maven on first use."""
        marker = self.lib / f".resolved-{KAFKA_VERSION}"
        if not marker.exists():
            self._require_tool("mvn", "Maven (mvn) is needed to fetch Kafka from Maven Central")
            staging = Path(tempfile.mkdtemp(prefix="jars-", dir=self._ensure_home()))
            command = [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(HERE / "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                shutil.rmtree(staging, ignore_errors=True)
                raise BrokerError(
                    f"mvn could not resolve Kafka {KAFKA_VERSION}:\n{done.stdout[-2000:]}"
                )
            shutil.rmtree(self.lib, ignore_errors=True)
            self.lib.parent.mkdir(parents=True, exist_ok=True)  # a shared jar dir of another home
            staging.rename(self.lib)
            marker.touch()
        return sorted(self.lib.glob("*.jar"))

    def _ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home

    @staticmethod
    def _require_tool(name: str, why: str) -> str:
        path = shutil.which(name)
        if path is None:
            raise BrokerError(f"{why}, but `{name}` is not on PATH")
        return path

    def _java(self) -> str:
        java = self._require_tool("java", "Java 17+ is needed to run the Kafka broker")
        version = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        match = re.search(r'version "(\d+)', version.stderr)
        if match is None or int(match.group(1)) < 17:
            raise BrokerError(
                f"Kafka {KAFKA_VERSION} needs Java 17 or newer; found {version.stderr[:80]!r}"
            )
        return java

    # -- configuration ------------------------------------------------------------------------
    def server_properties(self) -> str:
        p, c = self.port, self.controller_port
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{c}",
            "listeners": f"PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{p}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.home / "data"),
            "num.partitions": str(self.partitions),
            # Topics are declared with explicit partition counts; auto-creation would pick its own.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.cleaner.threads": "1",
        }
        if self.sasl is not None:
            s = self.sasl.port
            settings["listeners"] += f",SASL_PLAINTEXT://127.0.0.1:{s}"
            settings["advertised.listeners"] += f",SASL_PLAINTEXT://127.0.0.1:{s}"
            settings["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
            settings.update(self.sasl.server_properties())
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    # -- lifecycle ----------------------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"kafka.Kafka" not in cmdline.read_bytes():
            return None  # the pid was reused by an unrelated process
        return pid

    def start(self, timeout: float = 90.0) -> str:
        """Start the broker unless it runs already; return once it answers a client."""
        if self.pid() is not None and probe(self.address):
            self._check_sasl()
            return f"Kafka {KAFKA_VERSION} already running on {self.address} (pid {self.pid()})"
        ports = [self.port, self.controller_port] + ([self.sasl.port] if self.sasl else [])
        for port in ports:
            if port_in_use(port):
                raise BrokerError(
                    f"port {port} on 127.0.0.1 is taken by another process; stop it or pick "
                    f"other ports (--port/--controller-port)"
                )
        java = self._java()
        classpath = ":".join(str(jar) for jar in self.resolve())
        properties = self._ensure_home() / "server.properties"
        properties.write_text(self.server_properties())
        properties.chmod(0o600)  # it holds the SASL test user's password when one is configured
        self._format(java, classpath, properties)
        log = self.log_file.open("ab")
        process = subprocess.Popen(
            [
                java,
                *JVM_FLAGS,
                f"-Dlog4j2.configurationFile={HERE / 'log4j2.yaml'}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(properties),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerError(
                    f"the broker exited with {process.returncode}:\n{self._log_tail()}"
                )
            if probe(self.address):
                self._check_sasl()
                return f"Kafka {KAFKA_VERSION} started on {self.address} (pid {process.pid})"
            time.sleep(0.25)
        self.stop()
        raise BrokerError(f"the broker did not answer within {timeout:.0f}s:\n{self._log_tail()}")

    def _format(self, java: str, classpath: str, properties: Path) -> None:
        cluster_file = self.home / "cluster.id"
        if not cluster_file.exists():
            cluster_id = (
                self._storage_tool(java, classpath, ["random-uuid"]).strip().splitlines()[-1]
            )
            cluster_file.write_text(cluster_id)
        cluster_id = cluster_file.read_text().strip()
        scram = self.sasl.scram_arguments() if self.sasl else []
        self._storage_tool(
            java,
            classpath,
            ["format", "-t", cluster_id, "-c", str(properties), "--ignore-formatted", *scram],
        )

    def _check_sasl(self) -> None:
        """Every mechanism of the SASL listener lets its user in (a few tries: the listener may
        open a moment after the PLAINTEXT one)."""
        if self.sasl is None:
            return
        address = self.sasl.address
        for mechanism in self.sasl.mechanisms:
            check = functools.partial(probe, address, security=self.sasl.client_settings(mechanism))
            if not retry(check, tries=10):
                raise BrokerError(
                    f"the SASL_PLAINTEXT listener on {self.sasl.address} refuses its {mechanism} "
                    f"user; a SCRAM user exists only if {self.home / 'data'} was formatted with "
                    "the listener configured: stop the broker and delete that folder"
                )

    def _storage_tool(self, java: str, classpath: str, args: list[str]) -> str:
        done = subprocess.run(
            [
                java,
                f"-Dlog4j2.configurationFile={HERE / 'log4j2.yaml'}",
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            detail = done.stderr[-2000:]
            if self.sasl is not None:  # the tool may echo its --add-scram argument
                detail = detail.replace(self.sasl.password, "***")
            raise BrokerError(f"kafka StorageTool {args[0]} failed:\n{detail}")
        return done.stdout

    def stop(self, timeout: float = 60.0) -> str:
        pid = self.pid()
        if pid is None:
            return "Kafka is not running"
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return f"Kafka stopped (pid {pid})"

    def status(self) -> tuple[bool, str]:
        pid = self.pid()
        if pid is None:
            return False, f"Kafka is not running (home {self.home})"
        if not probe(self.address):
            return False, f"Kafka process {pid} is up but {self.address} does not answer yet"
        sasl = f", SASL_PLAINTEXT on {self.sasl.address}" if self.sasl else ""
        return (
            True,
            f"Kafka {KAFKA_VERSION} running on {self.address}{sasl} (pid {pid}, home {self.home})",
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no broker log)"


def retry(check: Callable[[], bool], tries: int, pause: float = 0.5) -> bool:
    for attempt in range(tries):
        if check():
            return True
        if attempt + 1 < tries:
            time.sleep(pause)
    return False


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def probe(address: str, timeout: float = 5.0, security: KafkaSettings | None = None) -> bool:
    """True when a Kafka client can fetch cluster metadata from `address`, authenticating with
    `security`'s settings when given (the PLAINTEXT listener needs none)."""
    from aiokafka.admin import AIOKafkaAdminClient

    kwargs = security.aiokafka_kwargs() if security is not None else {}
    kwargs["bootstrap_servers"] = address

    async def ask() -> bool:
        admin = AIOKafkaAdminClient(**kwargs, request_timeout_ms=int(timeout * 1000))
        try:
            await asyncio.wait_for(admin.start(), timeout)
            await asyncio.wait_for(admin.list_topics(), timeout)
            return True
        except Exception:
            return False
        finally:
            await admin.close()

    if not port_in_use(int(address.rsplit(":", 1)[1])):
        return False
    return asyncio.run(ask())
