"""The demo's monitoring half (stream/promstack.py) against real Prometheus and Alertmanager: the
project's rules loaded (the demo's copy, generated from monitoring/config.yml), the worker a
scrape target that is up, Alertmanager connected, and the alerts evaluated for real on a worker's
/metrics: the degraded queue's alerts fire and reach Alertmanager; a low queue under the minimum
n and a healthy one raise nothing. A small HTTP server stands in for the worker: it serves fixed
KPI gauges (with the worker's own interval) and a counter that grows at each scrape.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from stream.demo import (
    alert_table,
    fetch_alerts,
    fetch_samples,
    fetch_series,
    load_thresholds,
)
from stream.kpi.intervals import nps_adjusted_wald
from stream.promstack import DEMO_FOR, Servers, start_stack
from tests.monitoring.common import CONFIG, load_yaml, rule_files
from tests.monitoring.servers import api, get, wait_for
from tests.support.fakehttp import FakeServer

# queue -> window -> (promoters, detractors, NPS answers, CSAT 5s, CSAT answers)
COUNTS = {
    "retention": {"1h": (15, 30, 60, 20, 50), "7d": (260, 40, 400, 170, 200)},  # degraded
    "escalations": {"1h": (1, 3, 5, 1, 3), "7d": (2, 6, 12, 2, 6)},  # low, under min n
    "billing": {"1h": (380, 30, 500, 230, 250), "7d": (2100, 240, 3000, 1300, 1500)},
}


def metrics_text(scrapes: int) -> str:
    lines = [f'cx_events_total{{topic="cx.responses",outcome="accepted"}} {1000 + 10 * scrapes}']
    totals: dict[str, list[int]] = {}
    for windows in COUNTS.values():
        for window, counts in windows.items():
            total = totals.setdefault(window, [0] * 5)
            totals[window] = [a + b for a, b in zip(total, counts, strict=True)]
    rows = [(q, w, c) for q, ws in COUNTS.items() for w, c in ws.items()]
    rows += [("all", w, tuple(c)) for w, c in totals.items()]
    for queue, window, (promoters, detractors, n, top, csat_n) in rows:
        lower, upper = nps_adjusted_wald(promoters, detractors, n)
        for channel in ("all", "ivr"):  # one channel holding every answer, like a rollup
            at = f'window="{window}",channel="{channel}",queue="{queue}"'
            lines += [
                f"cx_nps{{{at}}} {100 * (promoters - detractors) / n}",
                f"cx_nps_lower{{{at}}} {lower}",
                f"cx_nps_upper{{{at}}} {upper}",
                f"cx_nps_responses{{{at}}} {n}",
                f"cx_csat_top_box_ratio{{{at}}} {top / csat_n}",
                f"cx_csat_responses{{{at}}} {csat_n}",
            ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def worker() -> Iterator[FakeServer]:
    scrapes = itertools.count(1)
    with FakeServer({"/metrics": lambda: (200, metrics_text(next(scrapes)))}) as fake:
        yield fake


def active(base: str) -> set[tuple[str, str, str, str]]:
    return {
        (a["labels"]["alertname"], a["state"], a["labels"].get("channel", ""),
         a["labels"].get("queue", ""))
        for a in api(base, "alerts")["alerts"]
    }  # fmt: skip


async def test_the_demo_stack_loads_the_rules_scrapes_the_worker_and_fires_for_it(
    tmp_path: Path, worker: FakeServer
) -> None:
    servers = Servers(tmp_path)
    try:
        stack = start_stack(servers, worker.port, prometheus_port=0, alertmanager_port=0)
        base = stack.prometheus
        # the project's rules, every group and rule of the generated files, `for:` shortened
        groups = api(base, "rules")["groups"]
        expected = {
            rule.get("alert") or rule.get("record")
            for path in rule_files()
            for group in load_yaml(path)["groups"]
            for rule in group["rules"]
        }
        assert {r["name"] for g in groups for r in g["rules"]} == expected
        durations = {r["name"]: r.get("duration") for g in groups for r in g["rules"]}
        assert durations["NpsBelowTarget"] == durations["NpsSignificantDrop"] == 60
        assert DEMO_FOR == "1m" and CONFIG.nps.for_ != DEMO_FOR
        # the worker, scraped as the config's job, and the Alertmanager it sends to
        targets = await wait_for(
            lambda: [t for t in api(base, "targets")["activeTargets"] if t["health"] == "up"],
            60, "the worker's target up",
        )  # fmt: skip
        assert [(t["labels"]["job"], t["scrapeUrl"]) for t in targets] == [
            (CONFIG.job, f"http://127.0.0.1:{worker.port}/metrics")
        ]
        managers = api(base, "alertmanagers")["activeAlertmanagers"]
        assert [m["url"] for m in managers] == [f"{stack.alertmanager}/api/v2/alerts"]

        # the degraded queue's alerts go pending, then fire, and reach Alertmanager
        story = {
            ("NpsBelowTarget", "all", "retention"),
            ("CsatBelowTarget", "all", "retention"),
            ("NpsSignificantDrop", "all", "retention"),
            ("NpsSignificantDrop", "ivr", "retention"),
        }

        def firing() -> bool:
            found = active(base)
            assert {(n, c, q) for n, _, c, q in found} <= story, found  # nothing else, ever
            return {(n, c, q) for n, s, c, q in found if s == "firing"} == story

        await wait_for(firing, 150, "the degraded queue's alerts firing")
        received = await wait_for(
            lambda: [a for a in get(stack.alertmanager, "/api/v2/alerts")
                     if a["labels"].get("queue") == "retention"],
            60, "the alerts in Alertmanager",
        )  # fmt: skip
        assert {a["labels"]["alertname"] for a in received} == {n for n, _, _ in story}
        assert all(a["receivers"] == [{"name": "ticket"}] for a in received), received

        # the demo's table of them, whole in 80 columns
        console = Console(record=True, width=80)
        baseline = fetch_series(base, 'cx_nps{window="7d"}')  # what the alerts compared with
        assert baseline == {
            k: v for k, v in fetch_samples(worker.port).items()
            if k[0] == "cx_nps" and ("window", "7d") in k[1]
        }  # fmt: skip
        console.print(alert_table(fetch_alerts(base), baseline, load_thresholds()))
        text = console.export_text()
        assert all(len(line) <= 80 for line in text.splitlines()) and "…" not in text, text
        assert text.count("│ retention │") == text.count("│ firing │") == len(story), text
        assert text.count("-3.4 < 55.0") == 2, text  # the 1h upper bound < the 7d NPS
    finally:
        pids = servers.stop()
    assert len(pids) == 2 and all(p.poll() is not None for p in servers.processes)
