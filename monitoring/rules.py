"""The recording rules and alerts, from the thresholds of config.yml.

Annotations are Go templates (Prometheus expands them); `[[name]]` marks where this module fills
in a value of the config before Prometheus sees the text.
"""

from __future__ import annotations

from typing import Any

from monitoring.config import Config, seconds
from stream.kpi.intervals import Z95 as Z

Rule = dict[str, Any]
# An input topic's own messages: cx.responses also counts the adapters' copies of raw answers,
# which are subtracted (see cx:input_messages:rate5m).
RESPONSES = ".*responses"
RAW = r".*raw\\..*"
SEGMENT = "job, window, channel, queue"
# The Wilson bounds of each CSAT ratio: exported for top-2-box, recorded here for top box.
CSAT_BOUNDS = {
    "top_box": ("segment:cx_csat_top_box_lower:wilson95", "segment:cx_csat_top_box_upper:wilson95"),
    "top2_box": ("cx_csat_top2_box_lower", "cx_csat_top2_box_upper"),
}
CSAT_NAMES = {"top_box": "top box (ratings of 5)", "top2_box": "top-2-box (ratings of 4 and 5)"}


def num(value: float) -> str:
    return f"{value:g}"


def percent(value: float) -> str:
    return f"{value * 100:g}%"


def fill(text: str, **values: object) -> str:
    for key, value in values.items():
        text = text.replace(f"[[{key}]]", str(value))
    assert "[[" not in text, text
    return text


def lookup(metric: str, labels: dict[str, str], fmt: str = "%.1f") -> str:
    """A template that queries one series of the alert's segment and prints its value."""
    pattern = ", ".join(f"{key}=%q" for key in labels)
    args = " ".join(labels.values())
    return (
        f'{{{{ with printf "{metric}{{{pattern}}}" {args} | query }}}}'
        f'{{{{ . | first | value | printf "{fmt}" }}}}{{{{ end }}}}'
    )


def segment_labels(window: str | None = None) -> dict[str, str]:
    window_value = f'"{window}"' if window else "$labels.window"
    return {
        "job": "$labels.job",
        "window": window_value,
        "channel": "$labels.channel",
        "queue": "$labels.queue",
    }


def events(job: str, matchers: str) -> str:
    return f"rate(cx_events_total{{{job}, {matchers}}}[5m])"


def recording_rules(config: Config) -> list[Rule]:
    job = config.job_selector
    z2 = Z * Z
    p, n = "cx_csat_top_box_ratio", "cx_csat_responses"
    centre = f"{p}{{{job}}} + {z2 / 2!r} / {n}{{{job}}}"
    spread = (
        f"{Z!r} * sqrt({p}{{{job}}} * (1 - {p}{{{job}}}) / {n}{{{job}}}"
        f" + {z2 / 4!r} / {n}{{{job}}} ^ 2)"
    )
    scale = f"(1 + {z2!r} / {n}{{{job}}})"
    others = events(job, f'topic!~"{RESPONSES}"')
    responses = events(job, f'topic=~"{RESPONSES}"')
    raw_accepted = events(job, f'topic=~"{RAW}", outcome="accepted"')
    return [
        {
            "record": "cx:events:rate5m",
            "expr": f"sum by (job, topic, outcome) (rate(cx_events_total{{{job}}}[5m]))",
        },
        {
            "record": "cx:responses:rate5m",
            "expr": (
                f'sum by (job) (rate(cx_events_total{{{job}, topic=~"{RESPONSES}", '
                f'outcome=~"accepted|revised"}}[5m]))'
            ),
        },
        {
            "record": "cx:input_messages:rate5m",
            "expr": (
                f"sum by (job, topic) ({others})\n"
                "or\n"
                "clamp_min(\n"
                f"  sum by (job, topic) ({responses})\n"
                "  - on (job) group_left ()\n"
                "  (\n"
                f"    sum by (job) ({raw_accepted})\n"
                "    or\n"
                f"    sum by (job) ({responses}) * 0\n"
                "  ),\n"
                "  0\n"
                ")"
            ),
        },
        {
            "record": "cx:deadletter_rate:ratio5m",
            "expr": (
                f'(sum by (job, topic) (rate(cx_events_total{{{job}, outcome="invalid"}}[5m]))'
                " or cx:input_messages:rate5m * 0)\n"
                "/\n"
                "cx:input_messages:rate5m"
            ),
        },
        {
            "record": "cx:deadletters:rate5m",
            "expr": f"sum by (job, reason) (rate(cx_deadletters_total{{{job}}}[5m]))",
        },
        {
            "record": "cx:consumer_lag:sum",
            "expr": f"sum by (job, topic) (cx_consumer_lag{{{job}}})",
        },
        {
            "record": CSAT_BOUNDS["top_box"][0],
            "expr": f"clamp_min(({centre} - {spread}) / {scale}, 0)",
        },
        {
            "record": CSAT_BOUNDS["top_box"][1],
            "expr": f"clamp_max(({centre} + {spread}) / {scale}, 1)",
        },
    ]


RECORDING_COMMENTS = {
    "cx:events:rate5m": "Messages per second by topic and outcome. Labels: job, topic, outcome.",
    "cx:responses:rate5m": (
        "Survey responses counted into the KPIs per second (first answers and revisions) on "
        "the canonical responses topic. Labels: job."
    ),
    "cx:input_messages:rate5m": (
        "Messages per second that producers wrote to each input topic. Every topic counts all "
        "its outcomes, except cx.responses: an answer the IVR/SMS/email adapters accepted is "
        "counted on its raw topic and again on cx.responses, so the adapters' copies are "
        "subtracted and what remains is the direct v1 producers' traffic. Labels: job, topic."
    ),
    "cx:deadletter_rate:ratio5m": (
        "Share of an input topic's messages that were invalid (dead-lettered), 0..1, per "
        "topic: broken SMS input shows on cx.raw.sms however clean the other channels are. "
        "0 with traffic and nothing invalid; NaN without traffic. Labels: job, topic."
    ),
    "cx:deadletters:rate5m": "Dead-lettered messages per second by reason. Labels: job, reason.",
    "cx:consumer_lag:sum": (
        "Messages behind the end of the log, summed over the partitions of each topic. "
        "Labels: job, topic."
    ),
    CSAT_BOUNDS["top_box"][0]: (
        "Wilson 95 % interval of the CSAT top-box ratio (the worker exports one for top-2-box "
        "only), per segment; labels of the gauges (job, instance, window, channel, queue)."
    ),
}


def alert_rules(config: Config) -> dict[str, list[Rule]]:
    """Alert groups: name -> rules."""
    return {
        "cx.kpi.alerts": [
            nps_below_target(config),
            csat_below_target(config),
            churn_above_target(config),
            nps_significant_drop(config),
        ],
        "cx.pipeline.alerts": [
            survey_input_stalled(config),
            dead_letter_rate_high(config),
            consumer_lag_high(config),
            kpi_snapshot_stale(config),
        ],
    }


def _alert(
    config: Config, name: str, expr: str, duration: str, severity: str, **annotations: str
) -> Rule:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {**annotations, "runbook_url": config.runbook(name)},
    }


def _below_target(metric: str, responses: str, target: float, config: Config, window: str) -> str:
    selector = f'{config.job_selector}, window="{window}", channel="all"'
    return (
        f"{metric}{{{selector}}} < {num(target)}\n"
        f"and on ({SEGMENT})\n"
        f"{responses}{{{selector}}} >= {config.min_responses}"
    )


def nps_below_target(config: Config) -> Rule:
    nps = config.nps
    labels = segment_labels()
    values = {
        "target": num(nps.target),
        "window": nps.window,
        "n": config.min_responses,
        "lower": lookup("cx_nps_lower", labels),
        "upper": lookup("cx_nps_upper", labels),
        "count": lookup("cx_nps_responses", labels, "%.0f"),
    }
    return _alert(
        config,
        "NpsBelowTarget",
        _below_target("cx_nps", "cx_nps_responses", nps.target, config, nps.window),
        nps.for_,
        "ticket",
        summary=fill(
            "NPS of queue {{ $labels.queue }} below target ([[target]]) over [[window]]", **values
        ),
        description=fill(
            "The NPS of queue {{ $labels.queue }} (all channels) over the last [[window]] is "
            '{{ $value | printf "%.1f" }}, 95% interval [[lower]] to [[upper]], on [[count]] '
            "responses: below the target of [[target]] (minimum n: the alert needs at least "
            "[[n]] responses).",
            **values,
        ),
        interval=fill("[[lower]] to [[upper]]", **values),
    )


def csat_below_target(config: Config) -> Rule:
    csat = config.csat
    labels = segment_labels()
    lower, upper = CSAT_BOUNDS[csat.ratio]
    values = {
        "target": percent(csat.target),
        "window": csat.window,
        "n": config.min_responses,
        "ratio": CSAT_NAMES[csat.ratio],
        "lower": lookup(lower, labels, "%.3f"),
        "upper": lookup(upper, labels, "%.3f"),
        "count": lookup("cx_csat_responses", labels, "%.0f"),
    }
    return _alert(
        config,
        "CsatBelowTarget",
        _below_target(
            f"cx_csat_{csat.ratio}_ratio", "cx_csat_responses", csat.target, config, csat.window
        ),
        csat.for_,
        "ticket",
        summary=fill(
            "CSAT of queue {{ $labels.queue }} below target ([[target]]) over [[window]]",
            **values,
        ),
        description=fill(
            "The CSAT [[ratio]] of queue {{ $labels.queue }} (all channels) over the last "
            "[[window]] is {{ $value | humanizePercentage }}, 95% interval [[lower]] to "
            "[[upper]], on [[count]] responses: below the target of [[target]] (minimum n: "
            "the alert needs at least [[n]] responses).",
            **values,
        ),
        interval=fill("[[lower]] to [[upper]]", **values),
    )


def churn_above_target(config: Config) -> Rule:
    churn = config.churn
    values = {"target": percent(churn.target), "window": churn.window}
    return _alert(
        config,
        "ChurnAboveTarget",
        f'cx_churn_ratio{{{config.job_selector}, window="{churn.window}"}} > {num(churn.target)}',
        churn.for_,
        "ticket",
        summary=fill("Churn above target ([[target]]) over [[window]]", **values),
        description=fill(
            "{{ $value | humanizePercentage }} of the customers active at the start of the last "
            "[[window]] have cancelled since, above the target of [[target]].",
            **values,
        ),
    )


def nps_significant_drop(config: Config) -> Rule:
    drop, n, job = config.nps_drop, config.min_responses, config.job_selector
    recent = segment_labels(drop.window)
    base = segment_labels(drop.baseline)
    values = {
        "window": drop.window,
        "baseline": drop.baseline,
        "n": n,
        "nps": lookup("cx_nps", recent),
        "lower": lookup("cx_nps_lower", recent),
        "count": lookup("cx_nps_responses", recent, "%.0f"),
        "base": lookup("cx_nps", base),
    }
    on = "on (job, channel, queue)"
    return _alert(
        config,
        "NpsSignificantDrop",
        (
            f'cx_nps_upper{{{job}, window="{drop.window}"}}\n'
            f"  < {on}\n"
            f'cx_nps{{{job}, window="{drop.baseline}"}}\n'
            f"and {on}\n"
            f'cx_nps_responses{{{job}, window="{drop.window}"}} >= {n}\n'
            f"and {on}\n"
            f'cx_nps_responses{{{job}, window="{drop.baseline}"}} >= {n}'
        ),
        drop.for_,
        "ticket",
        summary=fill(
            "NPS of {{ $labels.channel }}/{{ $labels.queue }} dropped significantly over "
            "[[window]]",
            **values,
        ),
        description=fill(
            "The [[window]] NPS of channel {{ $labels.channel }}, queue {{ $labels.queue }} is "
            '[[nps]], 95% interval [[lower]] to {{ $value | printf "%.1f" }}, on [[count]] '
            "responses: even its upper bound is below the [[baseline]] NPS of the same segment, "
            "[[base]] (minimum n: the alert needs at least [[n]] responses in both windows).",
            **values,
        ),
        interval=fill('[[lower]] to {{ $value | printf "%.1f" }}', **values),
    )


def survey_input_stalled(config: Config) -> Rule:
    stall, job = config.input_stall, config.job_selector
    selector = f'{job}, topic=~"{RESPONSES}", outcome=~"accepted|revised|duplicate"'
    values = {"range": stall.range}
    return _alert(
        config,
        "SurveyInputStalled",
        (
            f"sum by (job) (increase(cx_events_total{{{selector}}}[{stall.range}])) == 0\n"
            "or\n"
            f"absent(cx_events_total{{{selector}}})"
        ),
        stall.for_,
        "page",
        summary=fill("No survey responses for [[range]]", **values),
        description=fill(
            "No survey response reached the KPI workers of job {{ $labels.job }} "
            "(cx_events_total on the responses topic, outcome accepted, revised or duplicate) "
            "in the last [[range]], or the counter does not exist: the KPIs are going stale.",
            **values,
        ),
    )


def dead_letter_rate_high(config: Config) -> Rule:
    dead = config.dead_letters
    values = {"ratio": percent(dead.ratio), "min": dead.min_messages}
    return _alert(
        config,
        "DeadLetterRateHigh",
        (
            f"cx:deadletter_rate:ratio5m > {num(dead.ratio)}\n"
            "and on (job, topic)\n"
            f"cx:input_messages:rate5m * 300 >= {dead.min_messages}"
        ),
        dead.for_,
        "ticket",
        summary=fill(
            "More than [[ratio]] of the input on {{ $labels.topic }} is dead-lettered", **values
        ),
        description=fill(
            "{{ $value | humanizePercentage }} of the messages written to {{ $labels.topic }} in "
            "the last 5 minutes were invalid and went to the dead-letter topic (threshold "
            "[[ratio]], on at least [[min]] messages of that topic in 5 minutes).",
            **values,
        ),
    )


def consumer_lag_high(config: Config) -> Rule:
    lag = config.consumer_lag
    values = {"messages": lag.messages, "for": lag.for_}
    return _alert(
        config,
        "ConsumerLagHigh",
        f"cx:consumer_lag:sum > {lag.messages}",
        lag.for_,
        "page",
        summary=fill(
            "KPI workers are more than [[messages]] messages behind on {{ $labels.topic }}",
            **values,
        ),
        description=fill(
            'The KPI workers are {{ $value | printf "%.0f" }} messages behind the end of topic '
            "{{ $labels.topic }} (sum over its partitions), above [[messages]] for [[for]]: the "
            "KPIs lag behind real time.",
            **values,
        ),
    )


def kpi_snapshot_stale(config: Config) -> Rule:
    stale = config.snapshot_stale
    values = {"age": stale.age, "for": stale.for_}
    return _alert(
        config,
        "KpiSnapshotStale",
        f"time() - cx_kpi_snapshot_timestamp_seconds{{{config.job_selector}}} > "
        f"{num(seconds(stale.age))}",
        stale.for_,
        "page",
        summary=fill(
            "KPI gauges of {{ $labels.instance }} frozen: its KPI snapshot is older than [[age]]",
            **values,
        ),
        description=fill(
            "The KPI snapshot that {{ $labels.instance }} exports is "
            '{{ $value | printf "%.0f" }} seconds old (time() - '
            "cx_kpi_snapshot_timestamp_seconds; rebuilt every CX_READ_REFRESH_SECONDS), older "
            "than [[age]] for [[for]]: the snapshot builds stopped or are stuck, and the KPI "
            "gauges of {{ $labels.instance }} are frozen, so its KPI alerts cannot fire.",
            **values,
        ),
    )
