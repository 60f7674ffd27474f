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

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
POM = REPO / "stream" / "localkafka" / "pom.xml"
KAFKA_IMAGE = "apache/kafka"
# Faust reads these itself; the worker is configured through the contract's variables only.
FAUST_OWN_VARIABLES = {"BROKER_URL", "WEB_PORT", "WEB_HOST", "WEB_BIND", "APP_DATADIR"}


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
