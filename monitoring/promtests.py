"""The promtool unit tests of the rules (tests/cx.alerts.test.yml), built from the same config.

Each alert fires in one case and stays silent in others; the inputs sit just on either side of
the thresholds of config.yml (below target / at target, min n / min n - 1), and the expected
annotations are the alert's templates expanded for those inputs.
"""

from __future__ import annotations

import math
import re
from typing import Any

from monitoring.config import Config, seconds
from monitoring.rules import CSAT_BOUNDS, alert_rules, num
from stream.kpi.intervals import Z95, wilson

Case = dict[str, Any]
WORKER = {"job": "cx-worker", "instance": "worker:6066"}
_LOOKUP = re.compile(
    r'\{\{ with printf "([\w:]+)\{([^}]*)\}" ([^|]*)\| query \}\}'
    r'\{\{ \. \| first \| value \| printf "([^"]+)" \}\}\{\{ end \}\}'
)


def minutes(duration: str) -> int:
    return math.ceil(seconds(duration) / 60)


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    body = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{body}}}", "values": values}


def go_format(fmt: str, value: float) -> str:
    return fmt % value  # the %.Nf verbs the templates use format alike in Go and Python


def humanize_percentage(value: float) -> str:
    return f"{value * 100:.4g}%"


def expand(template: str, labels: dict[str, str], value: float, store: dict[str, float]) -> str:
    """Prometheus' expansion of the annotation templates this project uses; `store` maps
    'metric{window}' to the value a `query` lookup finds."""

    def lookup(match: re.Match[str]) -> str:
        metric, args, fmt = match[1], match[3].split(), match[4]
        window = next((a.strip('"') for a in args if a.startswith('"')), labels.get("window"))
        return go_format(fmt, store[f"{metric}{{{window}}}"])

    text = _LOOKUP.sub(lookup, template)
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m[1]], text)
    text = re.sub(r'\{\{ \$value \| printf "([^"]+)" \}\}', lambda m: go_format(m[1], value), text)
    text = text.replace("{{ $value | humanizePercentage }}", humanize_percentage(value))
    assert "{{" not in text, text
    return text


def wilson_rule(p: float, n: float) -> tuple[float, float]:
    """The top-box recording rules' arithmetic, operation by operation (promtool compares
    exactly); tests/monitoring checks it against stream.kpi.intervals.wilson."""
    z2 = Z95 * Z95
    centre = p + (z2 / 2) / n
    spread = Z95 * math.sqrt(p * (1 - p) / n + (z2 / 4) / n**2)
    scale = 1 + z2 / n
    return max((centre - spread) / scale, 0.0), min((centre + spread) / scale, 1.0)


class Builder:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.rules = {
            rule["alert"]: rule for rules in alert_rules(config).values() for rule in rules
        }
        self.job = {**WORKER, "job": config.job}

    def expected(
        self, alert: str, labels: dict[str, str], value: float, store: dict[str, float]
    ) -> dict[str, Any]:
        rule = self.rules[alert]
        annotations = {
            key: expand(text, labels, value, store) for key, text in rule["annotations"].items()
        }
        return {
            "exp_labels": {"severity": rule["labels"]["severity"], **labels},
            "exp_annotations": annotations,
        }

    def case(
        self, name: str, inputs: list[dict[str, str]], checks: list[tuple[int, str, Any]]
    ) -> Case:
        return {
            "name": name,
            "interval": "1m",
            "input_series": inputs,
            "alert_rule_test": [
                {"eval_time": f"{at}m", "alertname": alert, "exp_alerts": expected}
                for at, alert, expected in checks
            ],
        }

    # --- recording rules ----------------------------------------------------------------------

    def recording(self) -> list[Case]:
        job, sms, responses = self.job, "cx.raw.sms", "cx.responses"
        p, n = 0.5, 100.0
        lower, upper = wilson_rule(p, n)
        segment = {**job, "window": "1h", "channel": "all", "queue": "all"}
        counters = [
            # Per minute: 540 accepted + 60 revised + 60 invalid on cx.responses, of which 360
            # are the SMS adapter's copies; SMS: 360 accepted, 120 invalid. Whole rates (x/s).
            series("cx_events_total", "0+540x20", **job, topic=responses, outcome="accepted"),
            series("cx_events_total", "0+60x20", **job, topic=responses, outcome="revised"),
            series("cx_events_total", "0+60x20", **job, topic=responses, outcome="invalid"),
            series("cx_events_total", "0+360x20", **job, topic=sms, outcome="accepted"),
            series("cx_events_total", "0+120x20", **job, topic=sms, outcome="invalid"),
            series(
                "cx_deadletters_total", "0+120x20", **job, topic=sms, reason="unparseable_reply"
            ),
            *(
                series(
                    "cx_consumer_lag",
                    f"{lag}x20",
                    job=self.config.job,
                    topic=responses,
                    instance=f"worker-{i}:6066",
                    partition=str(i - 1),
                )
                for i, lag in ((1, 100), (2, 250))
            ),
            series("cx_csat_top_box_ratio", f"{p}x20", **segment),
            series("cx_csat_responses", f"{n:g}x20", **segment),
        ]
        j = f'job="{self.config.job}"'
        samples = [
            ("cx:responses:rate5m", f"cx:responses:rate5m{{{j}}}", 10),
            ('cx:input_messages:rate5m{topic="cx.raw.sms"}', None, 8),
            # 11/s on cx.responses less the 6/s the SMS adapter wrote: 5/s from direct producers
            ('cx:input_messages:rate5m{topic="cx.responses"}', None, 5),
            ('cx:deadletter_rate:ratio5m{topic="cx.raw.sms"}', None, 0.25),
            ('cx:deadletter_rate:ratio5m{topic="cx.responses"}', None, 0.2),
            ('cx:events:rate5m{outcome="invalid", topic="cx.raw.sms"}', None, 2),
            ("cx:deadletters:rate5m", None, 2),
            ("cx:consumer_lag:sum", None, 350),
            (CSAT_BOUNDS["top_box"][0], None, lower),
            (CSAT_BOUNDS["top_box"][1], None, upper),
        ]
        result_labels = {
            'cx:input_messages:rate5m{topic="cx.raw.sms"}': {"topic": sms},
            'cx:input_messages:rate5m{topic="cx.responses"}': {"topic": responses},
            'cx:deadletter_rate:ratio5m{topic="cx.raw.sms"}': {"topic": sms},
            'cx:deadletter_rate:ratio5m{topic="cx.responses"}': {"topic": responses},
            'cx:events:rate5m{outcome="invalid", topic="cx.raw.sms"}': {
                "topic": sms,
                "outcome": "invalid",
            },
            "cx:deadletters:rate5m": {"reason": "unparseable_reply"},
            "cx:consumer_lag:sum": {"topic": responses},
            CSAT_BOUNDS["top_box"][0]: segment,
            CSAT_BOUNDS["top_box"][1]: segment,
        }
        tests = []
        for expr, labels, value in samples:
            if labels is None:
                extra = result_labels[expr]
                name = expr.split("{")[0]
                merged = {"job": self.config.job, **extra}
                labels = name + "{" + ", ".join(f'{k}="{v}"' for k, v in merged.items()) + "}"
            tests.append(
                {
                    "expr": expr,
                    "eval_time": "10m",
                    "exp_samples": [{"labels": labels, "value": value}],
                }
            )
        clean = [series("cx_events_total", "0+60x20", **job, topic=sms, outcome="accepted")]
        return [
            {
                "name": "recording rules",
                "interval": "1m",
                "input_series": counters,
                "promql_expr_test": tests,
            },
            {
                "name": "dead-letter ratio is 0, not absent, when a topic has no invalid message",
                "interval": "1m",
                "input_series": clean,
                "promql_expr_test": [
                    {
                        "expr": "cx:deadletter_rate:ratio5m",
                        "eval_time": "10m",
                        "exp_samples": [
                            {
                                "labels": f'cx:deadletter_rate:ratio5m{{{j}, topic="{sms}"}}',
                                "value": 0,
                            }
                        ],
                    }
                ],
            },
        ]

    # --- KPI alerts ---------------------------------------------------------------------------

    def below_target(
        self,
        alert: str,
        metric: str,
        responses: str,
        target: float,
        window: str,
        duration: str,
        below: float,
        bounds: tuple[str, str, float, float],
    ) -> list[Case]:
        n, f = self.config.min_responses, minutes(duration)
        length = f + 20
        queue = {**self.job, "window": window, "channel": "all", "queue": "billing"}
        total = {**queue, "queue": "all"}
        lower, upper, low, high = bounds
        # Bounds that a recording rule computes are not input series: expect the rule's value.
        recorded = lower.startswith("segment:")
        if recorded:
            low, high = wilson(below * n, n)
        store = {
            f"{lower}{{{window}}}": low,
            f"{upper}{{{window}}}": high,
            f"{responses}{{{window}}}": n,
        }
        firing = [
            series(metric, f"{below}x{length}", **queue),
            series(responses, f"{n}x{length}", **queue),
            *(
                []
                if recorded
                else [
                    series(lower, f"{low}x{length}", **queue),
                    series(upper, f"{high}x{length}", **queue),
                ]
            ),
            # The rollup is on target; other windows and single channels never page.
            series(metric, f"{target}x{length}", **total),
            series(responses, f"{n * 20}x{length}", **total),
            series(metric, f"{below}x{length}", **{**queue, "window": "5m"}),
            series(responses, f"{n}x{length}", **{**queue, "window": "5m"}),
            series(metric, f"{below}x{length}", **{**queue, "channel": "sms"}),
            series(responses, f"{n}x{length}", **{**queue, "channel": "sms"}),
        ]
        expected = self.expected(alert, queue, below, store)
        few = [
            series(metric, f"{below}x{length}", **queue),
            series(responses, f"{n - 1}x{length}", **queue),
        ]
        on_target = [
            series(metric, f"{target}x{length}", **queue),
            series(responses, f"{n * 10}x{length}", **queue),
        ]
        return [
            self.case(
                f"{alert} fires for the queue below {num(target)} on {n} responses after "
                f"{duration}",
                firing,
                [(max(f - 2, 0), alert, []), (f + 5, alert, [expected])],
            ),
            self.case(f"{alert} stays silent on {n - 1} responses", few, [(f + 10, alert, [])]),
            self.case(f"{alert} stays silent at target", on_target, [(f + 10, alert, [])]),
        ]

    def nps_significant_drop(self) -> list[Case]:
        drop, n = self.config.nps_drop, self.config.min_responses
        f, w, b = minutes(drop.for_), drop.window, drop.baseline
        length = f + 20
        one = {
            "job": self.config.job,
            "instance": "worker-1:6066",
            "channel": "sms",
            "queue": "billing",
        }
        two = {**one, "instance": "worker-2:6066"}
        store = {
            f"cx_nps{{{w}}}": 8.5,
            f"cx_nps_lower{{{w}}}": -3.2,
            f"cx_nps_responses{{{w}}}": n,
            f"cx_nps{{{b}}}": 45,
        }
        # sms/billing: the 1h interval [-3.2, 20] is entirely below the 7d NPS 45 -> fires.
        # The two windows come from different workers: matching ignores the instance.
        firing = [
            series("cx_nps", f"8.5x{length}", **one, window=w),
            series("cx_nps_lower", f"-3.2x{length}", **one, window=w),
            series("cx_nps_upper", f"20x{length}", **one, window=w),
            series("cx_nps_responses", f"{n}x{length}", **one, window=w),
            series("cx_nps", f"45x{length}", **two, window=b),
            series("cx_nps_responses", f"{n}x{length}", **two, window=b),
            # all/all: the point estimate 30 is below 45, but the interval reaches 52: silent.
            series("cx_nps", f"30x{length}", **{**one, "channel": "all", "queue": "all"}, window=w),
            series(
                "cx_nps_upper",
                f"52x{length}",
                **{**one, "channel": "all", "queue": "all"},
                window=w,
            ),
            series(
                "cx_nps_responses",
                f"90x{length}",
                **{**one, "channel": "all", "queue": "all"},
                window=w,
            ),
            series("cx_nps", f"45x{length}", **{**one, "channel": "all", "queue": "all"}, window=b),
            series(
                "cx_nps_responses",
                f"900x{length}",
                **{**one, "channel": "all", "queue": "all"},
                window=b,
            ),
        ]
        labels = {"job": self.config.job, "channel": "sms", "queue": "billing"}
        expected = self.expected("NpsSignificantDrop", labels, 20, store)
        few = []
        for channel, recent, base in (("email", n - 1, n * 10), ("ivr", n, n - 1)):
            seg = {**self.job, "channel": channel, "queue": "all"}
            few += [
                series("cx_nps_upper", f"-10x{length}", **seg, window=w),
                series("cx_nps_responses", f"{recent}x{length}", **seg, window=w),
                series("cx_nps", f"40x{length}", **seg, window=b),
                series("cx_nps_responses", f"{base}x{length}", **seg, window=b),
            ]
        seg = {**self.job, "channel": "web", "queue": "all"}
        equal = [
            series("cx_nps_upper", f"45x{length}", **seg, window=w),
            series("cx_nps_responses", f"{n * 3}x{length}", **seg, window=w),
            series("cx_nps", f"45x{length}", **seg, window=b),
            series("cx_nps_responses", f"{n * 100}x{length}", **seg, window=b),
        ]
        alert = "NpsSignificantDrop"
        return [
            self.case(
                f"{alert} fires only where the {w} upper bound is below the {b} NPS",
                firing,
                [(max(f - 2, 0), alert, []), (f + 5, alert, [expected])],
            ),
            self.case(
                f"{alert} stays silent with fewer than {n} responses in either window",
                few,
                [(f + 10, alert, [])],
            ),
            self.case(
                f"{alert} stays silent when the upper bound equals the {b} NPS",
                equal,
                [(f + 10, alert, [])],
            ),
        ]

    def churn(self) -> list[Case]:
        churn, alert = self.config.churn, "ChurnAboveTarget"
        f = minutes(churn.for_)
        length = f + 30
        above = churn.target + 0.03
        labels = {**self.job, "window": churn.window}
        other = "24h" if churn.window != "24h" else "7d"
        return [
            self.case(
                f"{alert} fires after {churn.for_} above {num(churn.target)} over {churn.window}",
                [
                    series("cx_churn_ratio", f"{above:g}x{length}", **labels),
                    # A spike in another window does not alert.
                    series("cx_churn_ratio", f"0.5x{length}", **{**labels, "window": other}),
                ],
                [
                    (max(f - 2, 0), alert, []),
                    (f + 5, alert, [self.expected(alert, labels, above, {})]),
                ],
            ),
            self.case(
                f"{alert} stays silent at or below target",
                [series("cx_churn_ratio", f"{num(churn.target)}x{length}", **labels)],
                [(f + 10, alert, [])],
            ),
        ]

    # --- pipeline alerts ----------------------------------------------------------------------

    def input_stalled(self) -> list[Case]:
        stall, alert = self.config.input_stall, "SurveyInputStalled"
        r, f = minutes(stall.range), minutes(stall.for_)
        length = 10 + r + f + 20
        job = {"job": self.config.job}
        accepted = {**self.job, "topic": "cx.responses", "outcome": "accepted"}
        flat_from = 10 + r  # increase over the range is 0 from here on
        return [
            self.case(
                f"{alert} fires when the responses counter is flat for {stall.range}",
                [
                    series("cx_events_total", f"100+10x10 200x{length}", **accepted),
                    # Raw traffic goes on: what counts is the responses topic.
                    series(
                        "cx_events_total", f"0+10x{length}", **{**accepted, "topic": "cx.raw.sms"}
                    ),
                ],
                [
                    (flat_from - 1, alert, []),
                    *([(flat_from + f - 1, alert, [])] if f > 1 else []),
                    (flat_from + f + 1, alert, [self.expected(alert, job, 0, {})]),
                ],
            ),
            self.case(
                f"{alert} fires when the responses counter does not exist",
                [
                    series(
                        "cx_events_total",
                        "0+1x40",
                        **{**accepted, "topic": "cx.raw.ivr", "outcome": "invalid"},
                    )
                ],
                [(f + 1, alert, [self.expected(alert, job, 1, {})])],
            ),
            self.case(
                f"{alert} stays silent while responses arrive, duplicates included",
                [
                    series("cx_events_total", f"0+5x30 150x{length}", **accepted),
                    series(
                        "cx_events_total",
                        f"0+1x{length + 30}",
                        **{**accepted, "instance": "worker-2:6066", "outcome": "duplicate"},
                    ),
                ],
                [(20, alert, []), (length, alert, [])],
            ),
        ]

    def dead_letters(self) -> list[Case]:
        dead, alert = self.config.dead_letters, "DeadLetterRateHigh"
        f = minutes(dead.for_)
        length = f + 20
        per_minute = math.ceil(dead.min_messages / 5) + 2  # just enough traffic
        invalid = math.ceil(per_minute * dead.ratio * 2)
        low = max(1, math.floor(per_minute * 4 * dead.ratio / 2))
        sms = {**self.job, "topic": "cx.raw.sms"}
        ratio = invalid / per_minute
        labels = {"job": self.config.job, "topic": "cx.raw.sms"}

        def topic(total: int, bad: int, **labels: str) -> list[dict[str, str]]:
            return [
                series(
                    "cx_events_total", f"0+{total - bad}x{length}", **labels, outcome="accepted"
                ),
                series("cx_events_total", f"0+{bad}x{length}", **labels, outcome="invalid"),
            ]

        # SMS broken while email (ten times the volume) is clean: fires for cx.raw.sms only.
        firing = topic(per_minute, invalid, **sms) + topic(
            per_minute * 10, 0, **{**sms, "topic": "cx.raw.email"}
        )
        quiet = topic(per_minute // 2, invalid, **sms)
        # Direct v1 producers send `invalid` bad messages of per_minute; the SMS adapter's
        # copies (20 times as many, all valid) are not theirs and must not dilute the ratio.
        copies = per_minute * 20
        responses = {**self.job, "topic": "cx.responses"}
        direct = [
            series("cx_events_total", f"0+{copies}x{length}", **sms, outcome="accepted"),
            *topic(copies + per_minute, invalid, **responses),
        ]
        direct_labels = {"job": self.config.job, "topic": "cx.responses"}
        return [
            self.case(
                f"{alert} fires per input topic above {num(dead.ratio)} invalid",
                firing,
                [
                    (max(f - 5, 0), alert, []),
                    (f + 10, alert, [self.expected(alert, labels, ratio, {})]),
                ],
            ),
            self.case(
                f"{alert} fires for direct cx.responses producers, without the adapters' copies",
                direct,
                [(f + 10, alert, [self.expected(alert, direct_labels, ratio, {})])],
            ),
            self.case(
                f"{alert} stays silent under {dead.min_messages} messages in 5 minutes",
                quiet,
                [(f + 10, alert, [])],
            ),
            self.case(
                f"{alert} stays silent under {num(dead.ratio)} invalid",
                topic(per_minute * 4, low, **sms),
                [(f + 10, alert, [])],
            ),
        ]

    def consumer_lag(self) -> list[Case]:
        lag, alert = self.config.consumer_lag, "ConsumerLagHigh"
        f = minutes(lag.for_)
        length = f + 20
        half = lag.messages // 2 + 1000
        part = {"job": self.config.job, "topic": "cx.responses"}
        labels = {"job": self.config.job, "topic": "cx.responses"}
        return [
            self.case(
                f"{alert} fires above {lag.messages} messages behind a topic for {lag.for_}",
                [
                    series(
                        "cx_consumer_lag",
                        f"{half}x{length}",
                        **part,
                        instance="worker-1:6066",
                        partition="0",
                    ),
                    series(
                        "cx_consumer_lag",
                        f"{half}x{length}",
                        **part,
                        instance="worker-2:6066",
                        partition="1",
                    ),
                    series(
                        "cx_consumer_lag",
                        f"{lag.messages - 1}x{length}",
                        **{**part, "topic": "cx.raw.sms"},
                        instance="worker-1:6066",
                        partition="0",
                    ),
                ],
                [
                    (max(f - 2, 0), alert, []),
                    (f + 5, alert, [self.expected(alert, labels, 2 * half, {})]),
                ],
            ),
            self.case(
                f"{alert} stays silent on a backlog shorter than {lag.for_}",
                [
                    series(
                        "cx_consumer_lag",
                        f"{lag.messages * 5}x{max(f - 2, 1)} 100x{length}",
                        **part,
                        instance="worker:6066",
                        partition="0",
                    )
                ],
                [(max(f - 3, 0), alert, []), (f + 10, alert, [])],
            ),
        ]

    def snapshot_stale(self) -> list[Case]:
        stale, alert = self.config.snapshot_stale, "KpiSnapshotStale"
        # promtool starts at time 0, so time() at step k (1m apart) is 60k: a snapshot gauge
        # of 60k keeps up with time, one that stays at 60s stopped at step s.
        s, f = 10, minutes(stale.for_)
        over = math.floor(seconds(stale.age) / 60) + 1  # first step after s older than `age`
        pending = s + over
        length = pending + f + 20
        metric = "cx_kpi_snapshot_timestamp_seconds"
        one = {**self.job, "instance": "worker-1:6066"}
        two = {**self.job, "instance": "worker-2:6066"}
        keeps_up = f"0+60x{length}"
        frozen = f"0+60x{s} {60 * s}x{length}"
        brief = over + f - 1  # minutes frozen: pending for `for` - 1m, then builds resume
        resumes = f"0+60x{s} {60 * s}x{brief - 1} {60 * (s + brief + 1)}+60x{length}"
        return [
            self.case(
                f"{alert} fires for the worker whose snapshot is older than {stale.age} for "
                f"{stale.for_}",
                [series(metric, frozen, **one), series(metric, keeps_up, **two)],
                [
                    (pending - 1, alert, []),
                    (pending + f - 1, alert, []),
                    (pending + f, alert, [self.expected(alert, one, 60 * (over + f), {})]),
                ],
            ),
            self.case(
                f"{alert} stays silent while the snapshot keeps up (age 0, age {stale.age})",
                [
                    series(metric, keeps_up, **one),
                    series(metric, f"-{seconds(stale.age):g}+60x{length}", **two),
                ],
                [(pending + f, alert, []), (length, alert, [])],
            ),
            self.case(
                f"{alert} stays silent on a stale snapshot shorter than {stale.for_}",
                [series(metric, resumes, **self.job)],
                [(pending + f - 1, alert, []), (pending + f, alert, []), (length, alert, [])],
            ),
            self.case(
                f"{alert} stays silent without the gauge (before a worker's first build)",
                [
                    series(
                        "cx_events_total",
                        f"0+10x{length}",
                        **one,
                        topic="cx.responses",
                        outcome="accepted",
                    ),
                    series(metric, f"_x{s} {60 * s}+60x{length}", **two),
                ],
                [(s - 1, alert, []), (pending + f, alert, []), (length, alert, [])],
            ),
        ]


def unit_tests(config: Config) -> dict[str, Any]:
    build = Builder(config)
    nps, csat = config.nps, config.csat
    lower, upper = CSAT_BOUNDS[csat.ratio]
    tests = [
        *build.recording(),
        *build.below_target(
            "NpsBelowTarget",
            "cx_nps",
            "cx_nps_responses",
            nps.target,
            nps.window,
            nps.for_,
            nps.target - 8,
            ("cx_nps_lower", "cx_nps_upper", 21.3, 60.4),
        ),
        *build.below_target(
            "CsatBelowTarget",
            f"cx_csat_{csat.ratio}_ratio",
            "cx_csat_responses",
            csat.target,
            csat.window,
            csat.for_,
            round(csat.target - 0.1, 4),
            (lower, upper, 0.534, 0.836),
        ),
        *build.churn(),
        *build.nps_significant_drop(),
        *build.input_stalled(),
        *build.dead_letters(),
        *build.consumer_lag(),
        *build.snapshot_stale(),
    ]
    return {
        "rule_files": ["../rules/cx.rules.yml", "../alerts/cx.alerts.yml"],
        "evaluation_interval": "1m",
        "tests": tests,
    }
