"""The monitoring services of docker-compose.yml: pinned images, wired to the files of monitoring/.

Reads `docker-compose config` (the file as Compose understands it). docker-compose is installed
by scripts/setup.sh; without it these tests fail, they are never skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.common import (
    ALERTMANAGER_CONFIG,
    GRAFANA_PROVISIONING,
    MONITORING,
    PROMETHEUS_CONFIG,
    REPO,
    load_yaml,
)

IMAGES = {
    "prometheus": "prom/prometheus",
    "alertmanager": "prom/alertmanager",
    "grafana": "grafana/grafana",
}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose is not installed, so docker-compose.yml cannot be validated: "
            "run the project's setup (`make setup`, i.e. scripts/setup.sh), which installs it"
        )
    result = subprocess.run(
        [binary, "-f", str(REPO / "docker-compose.yml"), "config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    parsed = yaml.safe_load(result.stdout)
    return dict(parsed["services"])


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Container path -> (source, mode) of a service's volumes (short form, as Compose prints)."""
    result = {}
    for volume in service.get("volumes") or []:
        source, target, *mode = str(volume).split(":")
        result[target] = (source, mode[0] if mode else "rw")
    return result


def bind(service: dict[str, Any], target: str) -> Path:
    found = mounts(service)
    assert target in found, f"nothing mounted at {target}: {sorted(found)}"
    source, mode = found[target]
    assert mode == "ro", f"{target} must be mounted read-only (mode {mode!r})"
    return Path(source)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_monitoring_service_uses_a_pinned_official_image(
    services: dict[str, Any], name: str
) -> None:
    assert name in services, f"no {name} service: {sorted(services)}"
    image = str(services[name].get("image", ""))
    repository, _, tag = image.partition(":")
    assert repository == IMAGES[name], f"{name}: image {image!r}, expected {IMAGES[name]}"
    assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: pin an exact version, not {image!r}"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_monitoring_ports_are_bound_to_localhost(services: dict[str, Any], name: str) -> None:
    for port in services[name].get("ports") or []:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_prometheus_is_wired_to_the_config_rules_and_alerts(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    assert bind(prometheus, "/etc/prometheus/prometheus.yml") == PROMETHEUS_CONFIG
    command = [str(arg) for arg in prometheus.get("command") or []]
    assert "--config.file=/etc/prometheus/prometheus.yml" in command, command
    # rule_files are relative to the config file: each glob's folder is mounted beside it.
    for pattern in load_yaml(PROMETHEUS_CONFIG)["rule_files"]:
        folder = str(Path(pattern).parent)
        assert bind(prometheus, f"/etc/prometheus/{folder}") == MONITORING / folder


def test_prometheus_targets_are_compose_services(services: dict[str, Any]) -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs") or []
        for target in static["targets"]
    ]
    targets += [
        target
        for manager in config["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    ]
    for target in targets:
        host, _, _ = target.rpartition(":")
        assert host in services, f"prometheus.yml target {target!r}: no service {host!r}"
    worker_env = services["worker"].get("environment") or {}
    assert f"worker:{worker_env.get('CX_WEB_PORT', '6066')}" in targets


def test_alertmanager_is_wired_to_its_config(services: dict[str, Any]) -> None:
    alertmanager = services["alertmanager"]
    assert bind(alertmanager, "/etc/alertmanager/alertmanager.yml") == ALERTMANAGER_CONFIG
    command = [str(arg) for arg in alertmanager.get("command") or []]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in command, command


def test_grafana_is_wired_to_provisioning_and_dashboards(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    assert bind(grafana, "/etc/grafana/provisioning") == GRAFANA_PROVISIONING
    providers = load_yaml(GRAFANA_PROVISIONING / "dashboards" / "cx.yml")["providers"]
    for provider in providers:
        path = provider["options"]["path"]
        assert bind(grafana, path) == MONITORING / "dashboards", path
    sources = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    for source in sources:
        host = re.fullmatch(r"https?://([\w.-]+):\d+/?", source["url"])
        assert host and host[1] in services, f"data source {source['url']!r}: not a service"
