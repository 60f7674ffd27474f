"""docker-compose.yml: valid for docker-compose, and wired the way the worker expects.

The checks read `docker-compose config`, the file as Compose itself understands it (variables
interpolated, short forms normalised), not the raw YAML. docker-compose is installed by the
project's setup (scripts/setup.sh); without it these tests fail, they are never skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream.localkafka import LocalBroker

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
POM = REPO / "stream" / "localkafka" / "pom.xml"
KAFKA_IMAGE = "apache/kafka"
# Faust reads these itself; the worker is configured through the contract's variables only.
FAUST_OWN_VARIABLES = {"BROKER_URL", "WEB_PORT", "WEB_HOST", "WEB_BIND", "APP_DATADIR"}
# `python -m stream kafka start` listens on these host ports; the stack must run beside it.
LOCAL_BROKER_PORTS = {LocalBroker.port: "client", LocalBroker.controller_port: "controller"}
READINESS_PATH = "/healthz/ready"


def compose(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not installed, so docker-compose.yml cannot be validated: "
            "run the project's setup (`make setup`, i.e. scripts/setup.sh), which installs it"
        )
    return subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def parse_compose_yaml(text: str) -> Any:
    return yaml.safe_load(text)


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = compose("config")
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    parsed = parse_compose_yaml(result.stdout)
    assert isinstance(parsed, dict), f"unexpected `docker-compose config` output:\n{result.stdout}"
    services = parsed.get("services")
    assert isinstance(services, dict), f"no services in `docker-compose config`:\n{result.stdout}"
    return parsed


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever form Compose printed it in."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (str(item).partition("=") for item in env)
        return {key: value for key, _, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def image_parts(image: str) -> tuple[str, str | None]:
    """(repository, tag) of an image reference; tag None when absent or pinned by digest only."""
    name = image.split("@", 1)[0]
    repository, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:  # no tag, or the colon was a registry port
        return name, None
    return repository, tag


def service(config: dict[str, Any], name: str) -> dict[str, Any]:
    services: dict[str, Any] = config["services"]
    assert name in services, f"no `{name}` service; services: {sorted(services)}"
    definition = services[name]
    assert isinstance(definition, dict), f"service {name!r} is not a mapping: {definition!r}"
    return definition


def kafka_service(config: dict[str, Any]) -> dict[str, Any]:
    return service(config, "kafka")


def worker_service(config: dict[str, Any]) -> dict[str, Any]:
    return service(config, "worker")


def published_ports(definition: dict[str, Any]) -> list[int]:
    """Host ports a service publishes, from the short ("ip:host:container/proto") or long form."""
    found: list[int] = []
    for entry in definition.get("ports") or []:
        if isinstance(entry, dict):
            published = entry.get("published")
        else:
            parts = str(entry).split("/", 1)[0].split(":")
            published = parts[-2] if len(parts) >= 2 else None  # "6066" alone: a random port
        if published in (None, ""):
            continue
        low, _, high = str(published).partition("-")
        found.extend(range(int(low), int(high or low) + 1))
    return found


# --- tests ------------------------------------------------------------------------------------


def test_compose_file_is_valid() -> None:
    result = compose("config", "-q")
    assert result.returncode == 0, (
        f"`docker-compose -f {COMPOSE_FILE} config -q` exited {result.returncode}:\n"
        f"{result.stderr}{result.stdout}"
    )


def test_services_are_kafka_and_worker() -> None:
    result = compose("config", "--services")
    assert result.returncode == 0, result.stderr
    services = set(result.stdout.split())
    assert {"kafka", "worker"} <= services, f"services: {sorted(services)}"


def test_kafka_image_is_official_and_pinned(config: dict[str, Any]) -> None:
    image = str(kafka_service(config).get("image", ""))
    repository, tag = image_parts(image)
    assert repository in (
        KAFKA_IMAGE,
        f"docker.io/{KAFKA_IMAGE}",
        f"docker.io/library/{KAFKA_IMAGE}",
    ), f"kafka must use the official {KAFKA_IMAGE} image, not {image!r}"
    assert tag is not None, f"kafka image {image!r} has no tag: pin a Kafka version"
    assert tag != "latest", f"kafka image {image!r} is not pinned: use a version tag"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"kafka image tag {tag!r} is not a release version"


def test_kafka_image_matches_the_development_broker(config: dict[str, Any]) -> None:
    found = re.search(r"<kafka.version>([^<]+)<", POM.read_text())
    assert found, f"no <kafka.version> in {POM}"
    _, tag = image_parts(str(kafka_service(config).get("image", "")))
    assert tag == found[1], (
        f"docker-compose.yml runs Kafka {tag} but the development broker ({POM.name}) is "
        f"{found[1]}: keep them on the same version"
    )


def test_kafka_does_not_auto_create_topics(config: dict[str, Any]) -> None:
    env = environment(kafka_service(config))
    value = env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE")
    assert value is not None and value.strip().lower() == "false", (
        "the worker creates its topics with explicit partition counts; the broker must not "
        f"(KAFKA_AUTO_CREATE_TOPICS_ENABLE={value!r}, expected 'false')"
    )


def test_kafka_has_a_healthcheck(config: dict[str, Any]) -> None:
    healthcheck = kafka_service(config).get("healthcheck") or {}
    assert healthcheck.get("test") and not healthcheck.get("disable"), (
        "kafka needs a healthcheck: the worker waits for it (condition: service_healthy)"
    )


def test_worker_depends_on_healthy_kafka(config: dict[str, Any]) -> None:
    depends_on = worker_service(config).get("depends_on") or {}
    assert "kafka" in depends_on, f"worker must depend on kafka (depends_on: {depends_on!r})"
    assert isinstance(depends_on, dict), "use the long form: kafka: {condition: service_healthy}"
    assert (depends_on["kafka"] or {}).get("condition") == "service_healthy", (
        f"worker must wait until kafka is healthy (depends_on.kafka: {depends_on['kafka']!r})"
    )


def test_worker_bootstrap_servers_point_at_the_kafka_service(config: dict[str, Any]) -> None:
    env = environment(worker_service(config))
    bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS")
    assert bootstrap, "worker must set KAFKA_BOOTSTRAP_SERVERS (its default is 127.0.0.1:9092)"
    advertised = environment(kafka_service(config)).get("KAFKA_ADVERTISED_LISTENERS", "")
    advertised_addresses = {listener.split("://", 1)[-1] for listener in advertised.split(",")}
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        assert host == "kafka" and port.isdigit(), (
            f"KAFKA_BOOTSTRAP_SERVERS={bootstrap!r}: expected the kafka service, as kafka:PORT"
        )
        assert f"{host}:{port}" in advertised_addresses, (
            f"KAFKA_BOOTSTRAP_SERVERS={bootstrap!r} is not one of kafka's advertised listeners "
            f"({advertised!r})"
        )


def test_worker_is_configured_through_the_contract_only(config: dict[str, Any]) -> None:
    env = environment(worker_service(config))
    assert not FAUST_OWN_VARIABLES & env.keys(), (
        f"worker sets Faust's own variables {sorted(FAUST_OWN_VARIABLES & env.keys())}: "
        "use the contract's KAFKA_* / CX_* variables instead"
    )


def test_host_ports_are_published_once(config: dict[str, Any]) -> None:
    owners: dict[int, list[str]] = {}
    for name, definition in config["services"].items():
        for port in published_ports(definition):
            owners.setdefault(port, []).append(name)
    assert owners, "no service publishes a port: the parser missed the ports' form"
    clashes = {port: names for port, names in owners.items() if len(names) > 1}
    assert not clashes, f"host ports published by several services: {clashes}"


def test_no_host_port_clashes_with_the_local_broker(config: dict[str, Any]) -> None:
    clashes = {
        f"{name} publishes {port} ({LOCAL_BROKER_PORTS[port]} port of the local broker)"
        for name, definition in config["services"].items()
        for port in published_ports(definition)
        if port in LOCAL_BROKER_PORTS
    }
    assert not clashes, f"the stack cannot run beside `python -m stream kafka start`: {clashes}"


def test_worker_healthcheck_asks_the_readiness_endpoint(config: dict[str, Any]) -> None:
    worker = worker_service(config)
    healthcheck = worker.get("healthcheck") or {}
    assert healthcheck.get("test") and not healthcheck.get("disable"), (
        "the worker needs a healthcheck on its readiness endpoint"
    )
    test = healthcheck["test"]
    command = " ".join(map(str, test)) if isinstance(test, list) else str(test)
    port = environment(worker).get("CX_WEB_PORT", "6066")
    assert f"127.0.0.1:{port}{READINESS_PATH}" in command, (
        f"the worker's healthcheck must ask http://127.0.0.1:{port}{READINESS_PATH} "
        f"(ready once its tables are recovered), not: {command!r}"
    )


def test_the_demo_profile_feeds_the_worker_s_topics_once_it_is_ready(
    config: dict[str, Any],
) -> None:
    simulator = service(config, "simulator")
    assert simulator.get("profiles") == ["demo"], "traffic only when asked for (profile demo)"
    command = " ".join(map(str, simulator.get("command") or []))
    assert command.startswith("python -m stream simulate"), command
    assert simulator.get("image") == worker_service(config).get("image"), "the worker's image"
    depends_on = simulator.get("depends_on") or {}
    assert (depends_on.get("worker") or {}).get("condition") == "service_healthy", (
        "the worker creates the topics: the simulator starts once it is ready"
    )
    mine, workers = environment(simulator), environment(worker_service(config))
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "CX_TOPIC_PREFIX", "CX_PARTITIONS"):
        assert mine.get(name) == workers.get(name), f"{name}: {mine.get(name)!r}"
    assert not published_ports(simulator) and not FAUST_OWN_VARIABLES & mine.keys()


def test_the_readmes_start_the_stack_with_the_demo_profile() -> None:
    """One compose command everywhere, the one that brings traffic."""
    for readme in (REPO / "README.md", REPO / "monitoring" / "README.md"):
        commands = re.findall(r"docker[- ]compose [^`\n]*up[^`\n]*", readme.read_text())
        assert commands, f"{readme.name}: no compose command"
        for command in commands:
            assert "--profile demo up -d --build" in command, f"{readme}: {command!r}"
