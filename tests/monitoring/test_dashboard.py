"""monitoring/dashboards/cx-overview.json and Grafana's provisioning files.

Every query of the dashboard must use only metrics the worker exports or recording rules of
monitoring/rules, and must be valid PromQL (checked with promtool, like the rules).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitoring.config import seconds
from tests.monitoring.common import (
    CONFIG,
    DASHBOARD,
    GRAFANA_PROVISIONING,
    WORKER_METRICS,
    load_yaml,
    promtool,
    recording_rules,
)

# PromQL functions, aggregations and keywords: identifiers that are not metric names.
PROMQL_WORDS = frozenset(
    {
        # aggregation operators and their modifiers
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio",
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
        # set and binary operators written as words
        "and", "or", "unless", "atan2",
        # literals
        "inf", "nan",
        # functions
        "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max",
        "clamp_min", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta",
        "deriv", "exp", "floor", "histogram_quantile", "histogram_count", "histogram_sum",
        "histogram_fraction", "holt_winters", "hour", "idelta", "increase", "irate",
        "label_join", "label_replace", "ln", "log2", "log10", "minute", "month",
        "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc",
        "sqrt", "time", "timestamp", "vector", "year", "avg_over_time", "min_over_time",
        "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time",
        "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
        "start", "end",
    }
)  # fmt: skip
# Required content: each group needs at least one of its metrics somewhere in the dashboard
# (directly or through a recording rule).
REQUIRED_METRICS = [
    {"cx_nps"},
    {"cx_nps_lower"},
    {"cx_nps_upper"},
    {"cx_nps_responses"},
    {"cx_csat_top_box_ratio"},
    {"cx_csat_top2_box_ratio"},
    {"cx_csat_top2_box_lower"},
    {"cx_csat_top2_box_upper"},
    {"cx_ces_average"},
    {"cx_ces_agree_ratio"},
    {"cx_churn_ratio"},
    {"cx_response_ratio"},
    {"cx_sci_customers"},
    {"cx_sci_secure_ratio"},
    {"cx_agent_nps"},
    {"cx_agent_nps_responses"},
    {"cx_csi"},
    {"cx_acsi_index"},
    {"cx_thumbs_up_ratio"},
    {"cx_events_total"},
    {"cx_deadletters_total"},
    {"cx_consumer_lag"},
    {"cx_kpi_snapshot_timestamp_seconds"},
]
# Values substituted for Grafana's variables to check the queries with promtool.
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "window": "1h",
    "channel": "all",
    "queue": "all",
}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (also `name{...}`, `name[...]`, `(name)`)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", "[]", text)  # ranges and subqueries
    text = _LABEL_LIST.sub(r"\1", text)  # by (a, b) / on (a) / group_left (a) label lists
    text = re.sub(r"\$\{?\w+(:\w+)?\}?", "0", text)  # Grafana variables outside strings
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match[1], match[2]
        if call:
            assert name.lower() in PROMQL_WORDS, f"unknown PromQL function {name!r} in {expr!r}"
        elif name.lower() not in PROMQL_WORDS:
            names.add(name)
    return names


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels") or []  # collapsed rows


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in all_panels(dashboard) for target in panel["targets"]]


def variable(dashboard: dict[str, Any], name: str) -> dict[str, Any]:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert name in variables, f"no ${name} variable: {sorted(variables)}"
    return variables[name]


def variable_query(var: dict[str, Any]) -> str:
    query = var.get("query")
    return str(query.get("query", "") if isinstance(query, dict) else query or "")


def known_metrics() -> set[str]:
    return WORKER_METRICS | {rule["record"] for rule in recording_rules()}


# --- the metric-name parser -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('cx_nps{window="$window"}', {"cx_nps"}),
        ("sum by (topic) (cx_consumer_lag)", {"cx_consumer_lag"}),
        ("sum by (outcome) (rate(cx_events_total[$__rate_interval]))", {"cx_events_total"}),
        ('topk(10, cx_agent_nps{agent_id!="other"})', {"cx_agent_nps"}),
        ("a:b:c / on (x) group_left (y) other_metric > 1e3", {"a:b:c", "other_metric"}),
        ("rate(x_total[5m] offset 1h) and ignoring(window) y", {"x_total", "y"}),
        ('absent(up{job="a b"}) or vector(0)', {"up"}),
        ("cx_nps\n  < on (channel, queue)\ncx_nps_upper", {"cx_nps", "cx_nps_upper"}),
    ],
)
def test_metric_names_parser(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


# --- dashboard --------------------------------------------------------------------------------


def test_dashboard_identity(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "cx-overview"
    assert dashboard["title"] == "Customer satisfaction KPIs"
    assert dashboard["schemaVersion"] >= 38
    assert dashboard.get("id") is None, "a provisioned dashboard must not carry a database id"


def test_datasource_variable(dashboard: dict[str, Any]) -> None:
    datasource = variable(dashboard, "datasource")
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"


@pytest.mark.parametrize(
    ("name", "default"), [("window", "1h"), ("channel", "all"), ("queue", "all")]
)
def test_kpi_variables(dashboard: dict[str, Any], name: str, default: str) -> None:
    var = variable(dashboard, name)
    assert var["type"] == "query"
    assert var["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    query = variable_query(var)
    assert re.fullmatch(rf"label_values\(cx_nps(\{{[^}}]*\}})?, *{name}\)", query), query
    assert var["current"]["value"] == default
    assert not var.get("includeAll"), f"${name}: the rollup value 'all' comes from the worker"


def test_variable_queries_use_known_metrics(dashboard: dict[str, Any]) -> None:
    for var in dashboard["templating"]["list"]:
        found = re.fullmatch(r"label_values\((?:(.+),)?\s*\w+\)", variable_query(var))
        if found and found[1]:
            assert metric_names(found[1]) <= known_metrics(), var["name"]


def test_every_panel_has_a_datasource_and_queries(dashboard: dict[str, Any]) -> None:
    panels = list(all_panels(dashboard))
    assert panels, "the dashboard has no panels"
    for panel in panels:
        title = panel.get("title")
        assert panel.get("datasource") == {"type": "prometheus", "uid": "${datasource}"}, title
        targets = panel.get("targets") or []
        assert targets, f"panel {title!r} has no targets"
        for target in targets:
            assert str(target.get("expr") or "").strip(), f"panel {title!r}: empty expr"
            assert target.get("datasource") == panel["datasource"], f"panel {title!r}"
        ref_ids = [target.get("refId") for target in targets]
        assert len(ref_ids) == len(set(ref_ids)), f"panel {title!r}: duplicate refIds"


def test_panel_ids_are_unique_and_the_grid_has_no_overlap(dashboard: dict[str, Any]) -> None:
    panels = list(all_panels(dashboard))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_queries_use_only_worker_metrics_and_recording_rules(dashboard: dict[str, Any]) -> None:
    known = known_metrics()
    for expr in exprs(dashboard):
        unknown = metric_names(expr) - known
        assert not unknown, f"unknown metrics {sorted(unknown)} in {expr!r}"


def test_dashboard_shows_every_kpi_and_pipeline_metric(dashboard: dict[str, Any]) -> None:
    rules = {rule["record"]: metric_names(str(rule["expr"])) for rule in recording_rules()}
    used: set[str] = set()
    for expr in exprs(dashboard):
        for name in metric_names(expr):
            used |= {name} | rules.get(name, set())
    for group in REQUIRED_METRICS:
        assert group & used, f"the dashboard shows none of {sorted(group)}"


def test_kpi_panels_select_the_variables(dashboard: dict[str, Any]) -> None:
    for expr in exprs(dashboard):
        if re.search(r"\bcx_(nps|csat|ces)\w*\{", expr):
            for name in ("window", "channel"):
                assert f'{name}="${name}"' in expr, f"{expr!r} ignores ${name}"
            # A ranking of the queues selects every queue but the rollups instead of $queue.
            assert 'queue="$queue"' in expr or 'queue!~"all|other"' in expr, expr


def test_ranking_tables_are_gated_by_the_minimum_n_and_show_it(dashboard: dict[str, Any]) -> None:
    tables = {p["title"]: p for p in all_panels(dashboard) if p["type"] == "table"}
    assert len(tables) == 2, sorted(tables)
    for title, panel in tables.items():
        worst, n = (target["expr"] for target in panel["targets"])
        assert worst.startswith("bottomk("), title
        assert f">= {CONFIG.min_responses})" in worst, f"{title}: not gated by the minimum n"
        assert re.match(r"cx_(agent_)?nps_responses\{", n), f"{title}: no n column"
        renamed = panel["transformations"][-1]["options"]["renameByName"]
        assert renamed == {"Value #A": "NPS", "Value #B": "n"}, title


def test_threshold_lines_are_the_configured_targets(dashboard: dict[str, Any]) -> None:
    lines = {
        panel["title"]: panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]
        for panel in all_panels(dashboard)
        if panel["fieldConfig"]["defaults"].get("custom", {}).get("thresholdsStyle")
    }
    assert lines == {
        "NPS with 95% interval": CONFIG.nps.target,
        "NPS responses": CONFIG.min_responses,
        "CSAT top-box and top-2-box (95% Wilson interval)": CONFIG.csat.target,
        f"Churn ratio ({CONFIG.churn.window}) vs target": CONFIG.churn.target,
        "Dead-letter ratio by input topic": CONFIG.dead_letters.ratio,
        "Consumer lag by topic": CONFIG.consumer_lag.messages,
        "KPI snapshot age": seconds(CONFIG.snapshot_stale.age),
    }


def test_churn_is_shown_on_the_window_of_its_target(dashboard: dict[str, Any]) -> None:
    (churn,) = [p for p in all_panels(dashboard) if p["title"].startswith("Churn ratio")]
    assert [t["expr"] for t in churn["targets"]] == [
        f'cx_churn_ratio{{window="{CONFIG.churn.window}"}}'
    ]


@pytest.mark.parametrize(
    ("title", "upper", "lower"),
    [
        ("NPS with 95% interval", "upper", "lower"),
        ("CSAT top-box and top-2-box (95% Wilson interval)", "top box upper", "top box lower"),
        ("CSAT top-box and top-2-box (95% Wilson interval)", "top-2-box upper",
         "top-2-box lower"),
    ],
)  # fmt: skip
def test_interval_bands(dashboard: dict[str, Any], title: str, upper: str, lower: str) -> None:
    (panel,) = [p for p in all_panels(dashboard) if p["title"] == title]
    legends = {t["legendFormat"] for t in panel["targets"]}
    assert {upper, lower} <= legends
    fills = {
        override["matcher"]["options"]: {p["id"]: p["value"] for p in override["properties"]}
        for override in panel["fieldConfig"]["overrides"]
    }
    assert fills[upper]["custom.fillBelowTo"] == lower


def test_queries_are_valid_promql(tmp_path: Path, dashboard: dict[str, Any]) -> None:
    def substitute(expr: str) -> str:
        return re.sub(
            r"\$\{?(\w+)\}?", lambda m: GRAFANA_VARIABLES.get(m[1], m[0]), expr
        )  # unknown variables stay and make promtool fail

    rules = [
        {"record": f"dashboard:query_{i}:check", "expr": substitute(expr)}
        for i, expr in enumerate(exprs(dashboard))
    ]
    path = tmp_path / "dashboard-queries.yml"
    # JSON is YAML: promtool reads this file as a rule file.
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", path)
    assert result.returncode == 0, (
        f"invalid PromQL in the dashboard:\n{result.stdout}{result.stderr}\n"
        + "\n".join(rule["expr"] for rule in rules)
    )


# --- provisioning -----------------------------------------------------------------------------


def test_datasource_provisioning() -> None:
    config = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")
    sources = {source["uid"]: source for source in config["datasources"]}
    assert "prometheus" in sources, f"no data source with uid 'prometheus': {sorted(sources)}"
    source = sources["prometheus"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"


def test_dashboard_provisioning() -> None:
    config = load_yaml(GRAFANA_PROVISIONING / "dashboards" / "cx.yml")
    providers = config["providers"]
    assert [provider["type"] for provider in providers] == ["file"]
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_datasource_variable_defaults_to_the_provisioned_source(dashboard: dict[str, Any]) -> None:
    assert variable(dashboard, "datasource")["current"]["value"] == "prometheus"
