"""Paths, file loaders and promtool for the tests of monitoring/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring.config import load as load_config

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus.yml"
RULES_DIR = MONITORING / "rules"
ALERTS_DIR = MONITORING / "alerts"
ALERT_TESTS = MONITORING / "tests" / "cx.alerts.test.yml"
RUNBOOK = MONITORING / "runbook.md"
DASHBOARD = MONITORING / "dashboards" / "cx-overview.json"
ALERTMANAGER_CONFIG = MONITORING / "alertmanager.yml"
GRAFANA_PROVISIONING = MONITORING / "grafana" / "provisioning"
CONFIG = load_config()
RUNBOOK_URL = CONFIG.runbook_url

# What the worker exports on GET /metrics (../shared/contract.md, "Metrics", plus the agent
# gauges, the dead-letter counter, the consumer lag and the snapshot time that the worker adds).
WORKER_METRICS = frozenset(
    {
        "cx_nps",
        "cx_nps_lower",
        "cx_nps_upper",
        "cx_nps_responses",
        "cx_nps_promoters",
        "cx_nps_passives",
        "cx_nps_detractors",
        "cx_csat_top_box_ratio",
        "cx_csat_top2_box_ratio",
        "cx_csat_top2_box_lower",
        "cx_csat_top2_box_upper",
        "cx_csat_responses",
        "cx_ces_average",
        "cx_ces_agree_ratio",
        "cx_ces_responses",
        "cx_thumbs_up_ratio",
        "cx_csi",
        "cx_acsi_index",
        "cx_response_ratio",
        "cx_sci_customers",
        "cx_sci_secure_ratio",
        "cx_churn_ratio",
        "cx_agent_nps",
        "cx_agent_csat_top2_box_ratio",
        "cx_agent_nps_responses",
        "cx_agent_csat_responses",
        "cx_events_total",
        "cx_deadletters_total",
        "cx_consumer_lag",
        "cx_kpi_snapshot_timestamp_seconds",
    }
)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml")) + sorted(ALERTS_DIR.glob("*.yml"))


def rules_in(directory: Path) -> list[dict[str, Any]]:
    """Every rule of every group of the *.yml files in `directory`."""
    rules: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yml")):
        document = load_yaml(path)
        for group in document["groups"]:
            rules.extend(group["rules"])
    return rules


def alerts() -> list[dict[str, Any]]:
    found = [rule for rule in rules_in(ALERTS_DIR) if "alert" in rule]
    # Guards the YAML reader: as many alerts as `- alert:` lines in the files.
    lines = sum(
        len(re.findall(r"^\s*-\s+alert:", path.read_text(), re.M))
        for path in ALERTS_DIR.glob("*.yml")
    )
    assert len(found) == lines, f"read {len(found)} alerts but the files have {lines}"
    return found


def recording_rules() -> list[dict[str, Any]]:
    return [rule for rule in rules_in(RULES_DIR) if "record" in rule]


def promtool_binary() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool is not installed, so the Prometheus rules and config cannot be checked: "
            "run the project's setup (`make setup`, i.e. scripts/setup.sh), which installs "
            "Debian's prometheus package"
        )
    return binary


def promtool(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool_binary(), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
