"""monitoring/config.yml is the one source of the thresholds: the generated files match it, an
override of it changes every one of them, and every runbook link lands on a section."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from monitoring import generate, promtests
from monitoring.config import Config, load, seconds
from stream.kpi.intervals import wilson
from tests.monitoring.common import (
    ALERTMANAGER_CONFIG,
    CONFIG,
    DASHBOARD,
    MONITORING,
    RUNBOOK,
    alerts,
    load_yaml,
    promtool,
)
from tests.monitoring.test_rules import runbook_sections

OVERRIDE = {
    "runbook_url": "https://wiki.example.org/cx/runbook.md",
    "min_responses": 50,
    "nps": {"target": 40, "for": "20m"},
    "csat": {"ratio": "top2_box", "target": 0.85},
    "churn": {"target": 0.03},
    "dead_letters": {"ratio": 0.02, "min_messages": 300},
}


def test_generated_files_match_the_config() -> None:
    stale = generate.drift(load())
    assert stale == [], (
        f"generated files differ from monitoring/config.yml: {[str(p) for p in stale]}; "
        "run `make monitoring` (python -m monitoring.generate)"
    )


def test_the_check_mode_reports_a_hand_edit(tmp_path: Path) -> None:
    root = tmp_path / "monitoring"
    shutil.copytree(MONITORING, root, ignore=shutil.ignore_patterns("__pycache__"))
    assert generate.main(["--check", "--out", str(root)]) == 0
    alerts_file = root / generate.ALERTS
    alerts_file.write_text(alerts_file.read_text().replace("< 50", "< 45"))
    assert generate.main(["--check", "--out", str(root)]) == 1


def write_override(tmp_path: Path) -> tuple[Path, Config]:
    data = yaml.safe_load((MONITORING / "config.yml").read_text())
    for key, value in OVERRIDE.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    return path, load(path)


def test_one_override_file_changes_rules_tests_dashboard_and_runbook(tmp_path: Path) -> None:
    path, _ = write_override(tmp_path)
    out = tmp_path / "monitoring"
    out.mkdir()
    shutil.copy(RUNBOOK, out / "runbook.md")
    assert generate.main(["--config", str(path), "--out", str(out)]) == 0

    rules = {
        rule["alert"]: rule
        for group in yaml.safe_load((out / generate.ALERTS).read_text())["groups"]
        for rule in group["rules"]
    }
    assert "cx_nps{" in rules["NpsBelowTarget"]["expr"]
    assert " < 40\n" in rules["NpsBelowTarget"]["expr"]
    assert rules["NpsBelowTarget"]["for"] == "20m"
    assert "cx_csat_top2_box_ratio{" in rules["CsatBelowTarget"]["expr"]
    assert " < 0.85\n" in rules["CsatBelowTarget"]["expr"]
    assert "cx_csat_top2_box_lower" in rules["CsatBelowTarget"]["annotations"]["description"]
    for name, rule in rules.items():
        assert rule["annotations"]["runbook_url"] == f"{OVERRIDE['runbook_url']}#{name.lower()}"
        if name in ("NpsBelowTarget", "CsatBelowTarget", "NpsSignificantDrop"):
            assert ">= 50" in rule["expr"], name
    # The promtool tests follow the thresholds and pass against the overridden rules.
    result = promtool("test", "rules", out / generate.TESTS, cwd=out)
    assert result.returncode == 0, result.stdout + result.stderr

    board = json.loads((out / generate.DASHBOARD).read_text())
    defaults = {panel["title"]: panel["fieldConfig"]["defaults"] for panel in board["panels"]}
    lines = {
        title: [step["value"] for step in found["thresholds"]["steps"]]
        for title, found in defaults.items()
        if "thresholds" in found
    }
    assert lines["NPS with 95% interval"] == [None, 40]
    assert lines["CSAT top-box and top-2-box (95% Wilson interval)"] == [None, 0.85]
    assert lines["Churn ratio (7d) vs target"] == [None, 0.03]
    assert lines["NPS responses"] == [None, 50]
    assert lines["Dead-letter ratio by input topic"] == [None, 0.02]
    tables = [p for p in board["panels"] if p["type"] == "table"]
    assert tables and all(">= 50" in t["targets"][0]["expr"] for t in tables)

    table = (out / "runbook.md").read_text()
    row = "| 1h NPS of a queue (all channels) < 40, >= 50 responses | 20m |"
    assert f"| [NpsBelowTarget](#npsbelowtarget) | ticket {row}" in table
    assert "1h CSAT top2-box ratio of a queue (all channels) < 85%, >= 50 responses" in table


def test_the_csat_alert_watches_the_seed_top_box_by_default() -> None:
    assert CONFIG.csat.ratio == "top_box"
    csat = next(rule for rule in alerts() if rule["alert"] == "CsatBelowTarget")
    assert "cx_csat_top_box_ratio{" in csat["expr"]
    assert "top2" not in csat["expr"]


@pytest.mark.parametrize(("p", "n"), [(0.5, 100.0), (0.9, 30.0), (0.0, 40.0), (1.0, 31.0)])
def test_the_top_box_interval_rules_compute_the_wilson_interval(p: float, n: float) -> None:
    assert promtests.wilson_rule(p, n) == pytest.approx(wilson(p * n, n), abs=1e-12)


def test_every_alert_links_to_an_existing_runbook_section() -> None:
    sections = runbook_sections()
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        base, _, anchor = url.partition("#")
        assert base == CONFIG.runbook_url, f"{rule['alert']}: {url} is not on the configured base"
        assert anchor in sections, f"{rule['alert']}: runbook.md has no section #{anchor}"
    board = json.loads(DASHBOARD.read_text())
    assert [link["url"] for link in board["links"]] == [CONFIG.runbook_url]


def test_the_runbook_table_lists_every_alert_with_its_config_values() -> None:
    text = RUNBOOK.read_text()
    rows = re.findall(r"^\| \[(\w+)\]\(#(\w+)\) \| (\w+) \| (.+) \| (\S+) \|$", text, re.M)
    by_name = {rule["alert"]: rule for rule in alerts()}
    assert {row[0] for row in rows} == set(by_name)
    for name, anchor, severity, _, duration in rows:
        assert anchor == name.lower()
        assert severity == by_name[name]["labels"]["severity"]
        assert seconds(duration) == seconds(by_name[name]["for"])


def test_alertmanager_inhibits_kpi_tickets_of_the_same_job_only() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    names = {rule["alert"] for rule in alerts()}
    (rule,) = config["inhibit_rules"]
    assert rule["equal"] == ["job"]
    for matchers in (rule["source_matchers"], rule["target_matchers"]):
        (matcher,) = matchers
        pattern = re.fullmatch(r'alertname=~"(.+)"', matcher)
        assert pattern, matcher
        assert set(pattern[1].split("|")) <= names, f"{matcher} names an alert that does not exist"
    # Every page (a broken pipeline: stale, thin or frozen KPIs) holds back the KPI tickets.
    pages = {rule["alert"] for rule in alerts() if rule["labels"]["severity"] == "page"}
    (source,) = rule["source_matchers"]
    assert set(source.removeprefix('alertname=~"').removesuffix('"').split("|")) == pages
    assert "queue" in config["route"]["group_by"]
