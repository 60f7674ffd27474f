"""monitoring/: the Prometheus config, recording rules and alerts, checked and tested by promtool.

promtool comes from Debian's prometheus package (scripts/setup.sh installs it); without it these
tests fail, they are never skipped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.common import (
    ALERT_TESTS,
    ALERTMANAGER_CONFIG,
    ALERTS_DIR,
    CONFIG,
    PROMETHEUS_CONFIG,
    RULES_DIR,
    RUNBOOK,
    RUNBOOK_URL,
    alerts,
    load_yaml,
    promtool,
    recording_rules,
    rule_files,
)

# The alerts this project promises (README of monitoring, runbook); more may be added.
REQUIRED_ALERTS = {
    "NpsBelowTarget",
    "CsatBelowTarget",
    "ChurnAboveTarget",
    "NpsSignificantDrop",
    "SurveyInputStalled",
    "DeadLetterRateHigh",
    "ConsumerLagHigh",
    "KpiSnapshotStale",
}
# KPI alerts that must not fire on fewer than MIN_RESPONSES responses.
MINIMUM_N_ALERTS = {"NpsBelowTarget", "CsatBelowTarget", "NpsSignificantDrop"}
MIN_RESPONSES = CONFIG.min_responses
SEVERITIES = {"page", "ticket"}
DURATION = re.compile(r"(\d+(ms|s|m|h|d|w|y))+")


def output(result: Any) -> str:
    return f"exit {result.returncode}\n{result.stdout}{result.stderr}"


def alert_by_name() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in alerts()}


def alert_tests() -> list[dict[str, Any]]:
    """Every alert_rule_test case of the promtool test file."""
    document = load_yaml(ALERT_TESTS)
    return [case for test in document["tests"] for case in test.get("alert_rule_test") or []]


# --- promtool ---------------------------------------------------------------------------------


def test_there_are_rule_and_alert_files() -> None:
    assert sorted(RULES_DIR.glob("*.yml")), f"no recording rules in {RULES_DIR}"
    assert sorted(ALERTS_DIR.glob("*.yml")), f"no alerts in {ALERTS_DIR}"


@pytest.mark.parametrize("path", rule_files(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_promtool_check_rules(path: Path) -> None:
    result = promtool("check", "rules", path)
    assert result.returncode == 0, f"promtool check rules {path}:\n{output(result)}"


def test_promtool_unit_tests_of_the_alerts_pass() -> None:
    result = promtool("test", "rules", ALERT_TESTS)
    assert result.returncode == 0, f"promtool test rules {ALERT_TESTS}:\n{output(result)}"


def test_promtool_check_config() -> None:
    result = promtool("check", "config", PROMETHEUS_CONFIG)
    assert result.returncode == 0, f"promtool check config:\n{output(result)}"
    # The rule_files globs (relative to the config file) must find every rule and alert file.
    found = re.search(r"SUCCESS: (\d+) rule files found", result.stdout + result.stderr)
    assert found, f"promtool found no rule files:\n{output(result)}"
    assert int(found[1]) == len(rule_files()), (
        f"prometheus.yml's rule_files match {found[1]} files, expected {len(rule_files())}: "
        f"{[str(path) for path in rule_files()]}"
    )


# --- prometheus.yml ---------------------------------------------------------------------------


def test_prometheus_config_scrapes_the_worker_and_alerts_alertmanager() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    assert config["rule_files"] == ["rules/*.yml", "alerts/*.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert "cx-worker" in jobs, f"no cx-worker job: {sorted(jobs)}"
    worker = jobs["cx-worker"]
    assert worker.get("scrape_interval") == "15s"
    assert worker.get("metrics_path", "/metrics") == "/metrics"
    targets = [target for static in worker["static_configs"] for target in static["targets"]]
    assert targets == ["worker:6066"]
    alertmanagers = [
        target
        for manager in config["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    ]
    assert alertmanagers == ["alertmanager:9093"]


# --- recording rules --------------------------------------------------------------------------


def test_recording_rules_are_named_level_metric_operations() -> None:
    rules = recording_rules()
    assert rules, "no recording rules"
    for rule in rules:
        assert re.fullmatch(r"[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*", rule["record"]), (
            f"recording rule {rule['record']!r} is not named level:metric:operations"
        )


def test_the_expected_recording_rules_exist() -> None:
    names = {rule["record"] for rule in recording_rules()}
    expected = {"cx:deadletter_rate:ratio5m", "cx:responses:rate5m", "cx:consumer_lag:sum"}
    assert expected <= names, f"missing recording rules: {sorted(expected - names)}"


def test_every_recording_rule_has_a_unit_test() -> None:
    document = load_yaml(ALERT_TESTS)
    tested = " ".join(
        case["expr"] for test in document["tests"] for case in test.get("promql_expr_test") or []
    )
    for rule in recording_rules():
        assert re.search(rf"(?<![\w:]){re.escape(rule['record'])}(?![\w:])", tested), (
            f"recording rule {rule['record']} has no promql_expr_test in {ALERT_TESTS.name}"
        )


# --- alerts -----------------------------------------------------------------------------------


def test_the_promised_alerts_exist() -> None:
    names = set(alert_by_name())
    assert names >= REQUIRED_ALERTS, f"missing alerts: {sorted(REQUIRED_ALERTS - names)}"


def test_alert_names_are_unique_and_camel_case() -> None:
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)), f"duplicate alert names: {names}"
    for name in names:
        assert re.fullmatch(r"(?:[A-Z][a-z0-9]*)+", name), f"alert {name!r} is not CamelCase"


@pytest.mark.parametrize("name", sorted(REQUIRED_ALERTS))
def test_alert_has_severity_annotations_and_for(name: str) -> None:
    rule = alert_by_name()[name]
    severity = (rule.get("labels") or {}).get("severity")
    assert severity in SEVERITIES, f"{name}: labels.severity {severity!r} not in {SEVERITIES}"
    annotations = rule.get("annotations") or {}
    for key in ("summary", "description", "runbook_url"):
        assert str(annotations.get(key) or "").strip(), f"{name}: no annotations.{key}"
    assert annotations["runbook_url"] == f"{RUNBOOK_URL}#{name.lower()}", (
        f"{name}: runbook_url {annotations['runbook_url']!r} does not point at its runbook section"
    )
    assert DURATION.fullmatch(str(rule.get("for", ""))), f"{name}: no `for:` duration"


def test_every_alert_not_only_the_promised_ones_is_complete() -> None:
    for rule in alerts():
        labels, annotations = rule.get("labels") or {}, rule.get("annotations") or {}
        assert labels.get("severity") in SEVERITIES, f"{rule['alert']}: severity"
        assert {"summary", "description", "runbook_url"} <= annotations.keys(), rule["alert"]


@pytest.mark.parametrize("name", sorted(MINIMUM_N_ALERTS))
def test_kpi_alerts_require_the_minimum_number_of_responses(name: str) -> None:
    rule = alert_by_name()[name]
    expr = " ".join(str(rule["expr"]).split())
    minimum = rf'cx_(nps|csat)_responses\{{[^}}]*window="1h"[^}}]*\}} >= {MIN_RESPONSES}\b'
    assert re.search(minimum, expr), (
        f"{name} must require at least {MIN_RESPONSES} responses in the hour: {expr}"
    )
    assert f"at least {MIN_RESPONSES} responses" in rule["annotations"]["description"], (
        f"{name}: the description must state the minimum n ({MIN_RESPONSES} responses)"
    )


def test_input_stalled_also_fires_when_the_counter_is_absent() -> None:
    expr = " ".join(str(alert_by_name()["SurveyInputStalled"]["expr"]).split())
    assert re.search(r"\bor\s+absent\(cx_events_total\{", expr), expr


def test_snapshot_stale_is_per_worker_and_silent_on_absence() -> None:
    expr = " ".join(str(alert_by_name()["KpiSnapshotStale"]["expr"]).split())
    assert expr.startswith("time() - cx_kpi_snapshot_timestamp_seconds{"), expr
    # No aggregation (the instance label stays) and no absent(): a worker before its first
    # snapshot build has no gauge, and a worker that is down is up == 0, not this alert.
    assert not re.search(r"\b(absent|sum|max|min|by)\b", expr), expr


# --- runbook ----------------------------------------------------------------------------------


def runbook_sections() -> dict[str, str]:
    """Level-2 sections of the runbook by GitHub anchor (lower-case heading)."""
    text = RUNBOOK.read_text(encoding="utf-8")
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.M)
    return {
        re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-"): body
        for heading, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def test_runbook_has_a_section_per_alert() -> None:
    sections = runbook_sections()
    parts = ("**Meaning.**", "**First checks.**", "**Likely causes.**", "**Actions.**")
    for name in alert_by_name():
        assert name.lower() in sections, f"runbook.md has no `## {name}` section"
        body = sections[name.lower()]
        for part in (*parts, "**Escalate when.**"):
            assert part in body, f"runbook section {name} lacks {part}"
        checks = body.split("**First checks.**")[1].split("**Likely causes.**")[0]
        numbered = re.findall(r"^\d\. ", checks, flags=re.M)
        assert len(numbered) == 3, f"runbook section {name}: not three first checks"


def test_runbook_uses_the_projects_own_commands() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    for command in ("python -m stream kpi ", "python -m stream deadletters "):
        assert command in text, f"runbook.md does not use `{command.strip()}`"


def test_runbook_has_no_section_for_a_removed_alert() -> None:
    alert_anchors = {name.lower() for name in alert_by_name()}
    text = RUNBOOK.read_text(encoding="utf-8")
    for heading in re.findall(r"^## +([A-Z][A-Za-z0-9]+)\s*$", text, flags=re.M):
        assert heading.lower() in alert_anchors, f"runbook section {heading} has no alert"


def test_runbook_documents_the_minimum_n_rule_and_the_first_checks() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    assert f"at least {MIN_RESPONSES} responses" in text
    for endpoint in ("/kpi", "/healthz", "cx.deadletter"):
        assert endpoint in text, f"runbook.md does not mention {endpoint}"
    sections = runbook_sections()
    for name in MINIMUM_N_ALERTS:
        assert "minimum n" in sections[name.lower()], f"section {name}: minimum n not stated"


# --- promtool test file -----------------------------------------------------------------------


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    cases = alert_tests()
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    silent = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    for name in alert_by_name():
        assert name in firing, f"{ALERT_TESTS.name} has no case where {name} fires"
        assert name in silent, f"{ALERT_TESTS.name} has no case where {name} stays silent"


def test_unit_tests_load_the_rule_and_alert_files() -> None:
    document = load_yaml(ALERT_TESTS)
    loaded = {(ALERT_TESTS.parent / path).resolve() for path in document["rule_files"]}
    assert {path.resolve() for path in rule_files()} <= loaded, (
        f"{ALERT_TESTS.name} must load every rule and alert file: {document['rule_files']}"
    )


def test_firing_cases_assert_the_severity() -> None:
    for case in alert_tests():
        for expected in case.get("exp_alerts") or []:
            severity = expected["exp_labels"].get("severity")
            assert severity == alert_by_name()[case["alertname"]]["labels"]["severity"], case


# --- alertmanager.yml -------------------------------------------------------------------------


def test_alertmanager_routes_pages_and_tickets_to_their_receivers() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    routes = {
        matcher: route["receiver"]
        for route in config["route"]["routes"]
        for matcher in route.get("matchers") or []
    }
    pager = receivers[routes['severity="page"']]
    assert any(
        hook["url"].startswith("http://127.0.0.1") for hook in pager.get("webhook_configs") or []
    ), f"the page receiver must be a placeholder webhook on 127.0.0.1: {pager}"
    ticket = receivers[routes['severity="ticket"']]
    assert ticket.get("email_configs"), f"the ticket receiver must be email-style: {ticket}"
    assert config["route"]["receiver"] in receivers
