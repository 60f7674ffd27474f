"""The Grafana dashboard *Customer satisfaction KPIs* as code (grafana-foundation-sdk).

Threshold lines come from config.yml; the ranking tables show only segments with at least the
minimum n, with that n beside the KPI.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    GraphTresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from monitoring.config import Config, seconds
from monitoring.rules import CSAT_BOUNDS

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
SEGMENT = 'window="$window", channel="$channel", queue="$queue"'
TOP = 10


def query(expr: str, legend: str, ref: str) -> prom.Dataquery:
    return prom.Dataquery().datasource(DATASOURCE).expr(expr).legend_format(legend).ref_id(ref)


def instant(expr: str, ref: str) -> prom.Dataquery:
    return (
        prom.Dataquery()
        .datasource(DATASOURCE)
        .expr(expr)
        .instant()
        .format(PromQueryFormat.TABLE)
        .ref_id(ref)
    )


def target_line(value: float | None, good_above: bool = True) -> db.ThresholdsConfig:
    """Red/green around `value`, drawn as a dashed line (no line without a value)."""
    low, high = ("red", "green") if good_above else ("green", "red")
    steps = [Threshold(value=None, color=low if value is not None else "green")]
    if value is not None:
        steps.append(Threshold(value=value, color=high))
    return db.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def series_panel(
    title: str, description: str, unit: str, queries: list[Any], width: int = 12
) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .targets(queries)
        .line_width(2)
        .fill_opacity(0)
        .legend(
            cb.VizLegendOptions()
            .show_legend(True)
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
        )
    )


def band(panel: timeseries.Panel, upper: str, lower: str) -> timeseries.Panel:
    """Shade the 95 % interval between the series `lower` and `upper`."""
    return panel.override_by_name(
        upper,
        [
            DynamicConfigValue(id_val="custom.fillBelowTo", value=lower),
            DynamicConfigValue(id_val="custom.fillOpacity", value=20),
            DynamicConfigValue(id_val="custom.lineWidth", value=0),
        ],
    ).override_by_name(lower, [DynamicConfigValue(id_val="custom.lineWidth", value=0)])


def with_target(panel: timeseries.Panel, value: float, good_above: bool = True) -> Any:
    return panel.thresholds(target_line(value, good_above)).thresholds_style(
        cb.GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.DASHED)
    )


def ranking(title: str, description: str, kpi: str, n: str, joined: str) -> table.Panel:
    """The worst `TOP` rows of `kpi` with their n, among those with n >= min n."""
    worst = f"bottomk({TOP}, {kpi} and on ({joined}) {n})"
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(12)
        .height(10)
        .targets([instant(worst, "A"), instant(f"{n} and on ({joined}) {worst}", "B")])
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, "job": True, "instance": True},
                    "renameByName": {"Value #A": "NPS", "Value #B": "n"},
                },
            )
        )
        .sort_by([cb.TableSortByFieldState().display_name("NPS").desc(False)])
        .decimals(1)
    )


def kpi_panels(config: Config) -> list[Any]:
    csat = config.csat
    top_lower, top_upper = CSAT_BOUNDS["top_box"]
    watched = {"top_box": "top box", "top2_box": "top-2-box"}[csat.ratio]
    nps = series_panel(
        "NPS with 95% interval",
        f"NPS and its adjusted-Wald interval (shaded); dashed: the target {config.nps.target:g} "
        f"that NpsBelowTarget watches on the {config.nps.window} window.",
        "short",
        [
            query(f"cx_nps{{{SEGMENT}}}", "NPS", "A"),
            query(f"cx_nps_lower{{{SEGMENT}}}", "lower", "B"),
            query(f"cx_nps_upper{{{SEGMENT}}}", "upper", "C"),
        ],
    )
    responses = series_panel(
        "NPS responses",
        f"Answers in the window; dashed: the minimum n ({config.min_responses}) below which "
        "no KPI alert fires.",
        "short",
        [
            query(f"cx_nps_responses{{{SEGMENT}}}", "responses", "A"),
            query(f"cx_nps_promoters{{{SEGMENT}}}", "promoters", "B"),
            query(f"cx_nps_passives{{{SEGMENT}}}", "passives", "C"),
            query(f"cx_nps_detractors{{{SEGMENT}}}", "detractors", "D"),
            query(f"cx_csat_responses{{{SEGMENT}}}", "CSAT responses", "E"),
        ],
    )
    csat_panel = series_panel(
        "CSAT top-box and top-2-box (95% Wilson interval)",
        f"Both ratios with their Wilson intervals (shaded); dashed: the target "
        f"{csat.target:.0%} that CsatBelowTarget watches on the {watched} ratio.",
        "percentunit",
        [
            query(f"cx_csat_top_box_ratio{{{SEGMENT}}}", "top box", "A"),
            query(f"{top_lower}{{{SEGMENT}}}", "top box lower", "B"),
            query(f"{top_upper}{{{SEGMENT}}}", "top box upper", "C"),
            query(f"cx_csat_top2_box_ratio{{{SEGMENT}}}", "top-2-box", "D"),
            query(f"cx_csat_top2_box_lower{{{SEGMENT}}}", "top-2-box lower", "E"),
            query(f"cx_csat_top2_box_upper{{{SEGMENT}}}", "top-2-box upper", "F"),
        ],
    )
    ces = series_panel(
        "CES average and agree ratio",
        "CES 2.0 mean (1..7, higher is easier) and the share of answers of 5 or more.",
        "short",
        [
            query(f"cx_ces_average{{{SEGMENT}}}", "CES average", "A"),
            query(f"cx_ces_agree_ratio{{{SEGMENT}}}", "agree ratio", "B"),
            query(f"cx_ces_responses{{{SEGMENT}}}", "responses", "C"),
        ],
    )
    small = [
        series_panel(title, text, unit, [query(f"{metric}{{{SEGMENT}}}", title, "A")], 6)
        for title, text, unit, metric in (
            ("CSI", "Customer Satisfaction Index: weighted perceived - expected.", "short",
             "cx_csi"),
            ("ACSI index", "ACSI-style index, 0..100.", "short", "cx_acsi_index"),
            ("Thumbs-up ratio", "Share of thumbs-up answers.", "percentunit",
             "cx_thumbs_up_ratio"),
            ("Response ratio", "Responses / dispatched surveys in the window.", "percentunit",
             "cx_response_ratio"),
        )
    ]  # fmt: skip
    churn = config.churn
    customers = (
        series_panel(
            "SCI customers by band",
            "Customers with answers in the window by secure customer index band "
            "(secure >= 0.9, neutral 0.7..0.9, at risk < 0.7), stacked.",
            "short",
            [query('sum by (band) (cx_sci_customers{window="$window"})', "{{band}}", "A")],
            8,
        )
        .stacking(cb.StackingConfig().mode(StackingMode.NORMAL))
        .fill_opacity(40)
    )
    return [
        with_target(band(nps, "upper", "lower"), config.nps.target),
        with_target(responses, config.min_responses),
        with_target(
            band(
                band(csat_panel, "top box upper", "top box lower"),
                "top-2-box upper",
                "top-2-box lower",
            ),
            csat.target,
        ),
        ces,
        *small,
        with_target(
            series_panel(
                f"Churn ratio ({churn.window}) vs target",
                f"Customers cancelled in the last {churn.window} / active at its start, on the "
                f"window ChurnAboveTarget watches; dashed: the target {churn.target:.0%}.",
                "percentunit",
                [query(f'cx_churn_ratio{{window="{churn.window}"}}', "churn", "A")],
                8,
            ),
            churn.target,
            good_above=False,
        ),
        customers,
        series_panel(
            "SCI secure ratio",
            "Share of customers in the secure band.",
            "percentunit",
            [query('cx_sci_secure_ratio{window="$window"}', "secure ratio", "A")],
            8,
        ),
    ]


def ranking_panels(config: Config) -> list[Any]:
    n = config.min_responses
    queues = 'window="$window", channel="$channel", queue!~"all|other"'
    agents = 'window="$window", agent_id!="other"'
    return [
        ranking(
            f"Worst {TOP} queues by NPS (n >= {n})",
            f"Queues of the selected channel ranked by NPS, only those with at least {n} "
            "answers in the window (minimum n), with that n.",
            f"cx_nps{{{queues}}}",
            f"cx_nps_responses{{{queues}}} >= {n}",
            "job, window, channel, queue",
        ),
        ranking(
            f"Worst {TOP} agents by NPS (n >= {n})",
            f"Agents ranked by NPS, only those with at least {n} answers in the window "
            "(minimum n), with that n.",
            f"cx_agent_nps{{{agents}}}",
            f"cx_agent_nps_responses{{{agents}}} >= {n}",
            "job, window, agent_id",
        ),
    ]


def pipeline_panels(config: Config) -> list[Any]:
    dead, lag, stale = config.dead_letters, config.consumer_lag, config.snapshot_stale
    return [
        series_panel(
            "Events/s by outcome",
            "Input messages per second by outcome.",
            "reqps",
            [
                query(
                    "sum by (outcome) (rate(cx_events_total[$__rate_interval]))", "{{outcome}}", "A"
                )
            ],
            6,
        ),
        with_target(
            series_panel(
                "Dead-letter ratio by input topic",
                "Share of each input topic's own messages that were invalid (5m); dashed: "
                f"the {dead.ratio:.0%} of DeadLetterRateHigh.",
                "percentunit",
                [query("cx:deadletter_rate:ratio5m", "{{topic}}", "A")],
                6,
            ),
            dead.ratio,
            good_above=False,
        ),
        series_panel(
            "Dead letters/s by reason",
            "Messages written to the dead-letter topic.",
            "reqps",
            [
                query(
                    "sum by (reason) (rate(cx_deadletters_total[$__rate_interval]))",
                    "{{reason}}",
                    "A",
                )
            ],
            6,
        ),
        with_target(
            series_panel(
                "Consumer lag by topic",
                f"Messages behind the end of each topic; dashed: the {lag.messages} of "
                "ConsumerLagHigh.",
                "short",
                [query("cx:consumer_lag:sum", "{{topic}}", "A")],
                6,
            ),
            lag.messages,
            good_above=False,
        ),
        with_target(
            series_panel(
                "KPI snapshot age",
                "Age of the KPI snapshot each worker's gauges show, rebuilt every "
                f"CX_READ_REFRESH_SECONDS; dashed: the {stale.age} of KpiSnapshotStale.",
                "s",
                [query("time() - cx_kpi_snapshot_timestamp_seconds", "{{instance}}", "A")],
                6,
            ),
            seconds(stale.age),
            good_above=False,
        ),
    ]


def variable(name: str, label: str, query_text: str, default: str) -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query_text)
        .current(VariableOption(selected=True, text=default, value=default))
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
    )


def build(config: Config) -> dict[str, Any]:
    board = (
        db.Dashboard("Customer satisfaction KPIs")
        .uid("cx-overview")
        .description(
            "Live customer-satisfaction KPIs of cx-stream and the health of the pipeline. "
            "Generated by python -m monitoring.generate from monitoring/config.yml."
        )
        .tags(["cx", "kpi"])
        .timezone("browser")
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("30s")
        .link(
            db.DashboardLink("Runbook")
            .type(DashboardLinkType.LINK)
            .url(config.runbook_url)
            .icon("doc")
            .target_blank(True)
        )
        .with_variable(
            db.DatasourceVariable("datasource")
            .label("Data source")
            .type("prometheus")
            .current(VariableOption(selected=False, text="Prometheus", value="prometheus"))
        )
        .with_variable(variable("window", "Window", "label_values(cx_nps, window)", "1h"))
        .with_variable(
            variable("channel", "Channel", 'label_values(cx_nps{window="$window"}, channel)', "all")
        )
        .with_variable(
            variable(
                "queue",
                "Queue",
                'label_values(cx_nps{window="$window", channel="$channel"}, queue)',
                "all",
            )
        )
    )
    for number, panel in enumerate(
        [*kpi_panels(config), *ranking_panels(config), *pipeline_panels(config)], start=1
    ):
        board.with_panel(panel.id(number))
    data: dict[str, Any] = json.loads(JSONEncoder().encode(board.build()))
    data["schemaVersion"] = 39  # the Grafana 11 schema the provisioned image reads
    for var in data["templating"]["list"]:
        var.pop("id", None)  # the SDK writes a zero UUID; Grafana assigns its own
    return data
