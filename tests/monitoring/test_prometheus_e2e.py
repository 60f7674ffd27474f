"""A real Prometheus scrapes a real worker on the real broker: stored values equal the batch
KPIs, every dashboard query returns data, and the NPS alert goes pending on low-NPS traffic."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.test_kpi_engine import expected_kpis, produce_all, wait_until_matches
from tests.monitoring.common import CONFIG
from tests.monitoring.servers import Servers, api, wait_for
from tests.support.kafka_io import produce
from tests.support.traffic import make_traffic

pytestmark = pytest.mark.kafka
MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
VARIABLES = {"window": "1h", "channel": "all", "queue": "all"}


def prometheus(servers: Servers, target_port: int) -> str:
    rules = sorted(str(p) for p in (MONITORING / "rules").glob("*.yml"))
    rules += sorted(str(p) for p in (MONITORING / "alerts").glob("*.yml"))
    return servers.prometheus(
        {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": rules,
            "scrape_configs": [
                {"job_name": "cx-worker",
                 "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
            ],
        }
    )  # fmt: skip


def extra_scores(now: datetime) -> list[tuple[bytes, bytes]]:
    """CSI, ACSI and thumbs answers (the shared traffic has none of the first two), from one
    agent and queue with more than the minimum n, so the ranking tables have a row."""
    messages = []
    for i in range(CONFIG.min_responses + 10):
        body = {
            "response_id": f"extra-{i}",
            "channel": "web",
            "occurred_at": now.isoformat(),
            "queue": "extra",
            "agent_id": "agent-extra",
            "scores": {
                "nps": 9,
                "thumbs": i % 2 == 0,
                "csi": {"quality": {"perceived": 8, "expected": 7}},
                "acsi": {"satisfaction": 8, "expectation": 7, "ideal": 6},
            },
        }
        messages.append((f"extra-{i}".encode(), json.dumps(body).encode()))
    return messages


def panel_queries() -> list[str]:
    dashboard = json.loads((MONITORING / "dashboards" / "cx-overview.json").read_text())
    panels = [p for p in dashboard["panels"] for p in [p, *p.get("panels", [])]]
    queries = []
    for panel in panels:
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            for name, value in VARIABLES.items():
                expr = re.sub(rf"\$\{{?{name}(:\w+)?\}}?", value, expr)
            expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s")
            expr = expr.replace("$__range", "5m")
            if expr:
                queries.append(expr)
    return queries


async def test_prometheus_stores_the_kpis_and_fires_the_nps_alert(
    kafka_bootstrap: str, topic_prefix: str, make_worker, servers: Servers
) -> None:
    traffic = make_traffic(datetime.now(UTC), responses=3000, seed=41)  # NPS far below 50
    worker = make_worker().start(wait_for_partitions=4)
    base = prometheus(servers, worker.web_port)
    await produce_all(kafka_bootstrap, topic_prefix, traffic, slice(None))
    await wait_until_matches(worker, traffic)

    selector = '{window="7d",channel="all",queue="all"}'
    await wait_for(lambda: api(base, "query", query=f"cx_nps_responses{selector}")["result"])
    await asyncio.sleep(2)  # a scrape after the tables matched
    for name in ("nps", "nps_responses", "csat_top2_box_ratio", "ces_average", "response_ratio"):
        data = api(base, "query", query=f"cx_{name}{selector}")["result"][0]
        scraped_at, value = float(data["value"][0]), float(data["value"][1])
        stamp = api(base, "query", query=f"timestamp(cx_{name}{selector})")["result"][0]
        expected = expected_kpis(traffic, float(stamp["value"][1]))[("7d", ("q", "all", "all"))]
        assert value == pytest.approx(expected[name], rel=1e-9, abs=1e-9), (name, scraped_at)

    await produce(kafka_bootstrap, topic_prefix + "responses", extra_scores(datetime.now(UTC)))
    for metric in ("cx_csi", "cx_acsi_index", "cx_agent_nps_responses"):
        await wait_for(lambda m=metric: api(base, "query", query=m)["result"], what=metric)
    await asyncio.sleep(3)  # rate() needs a few samples
    empty = [q for q in panel_queries() if not api(base, "query", query=q)["result"]]
    assert empty == [], f"dashboard queries without data: {empty}"

    def nps_alert() -> bool:
        alerts = api(base, "alerts")["alerts"]
        return any(
            a["labels"]["alertname"] == "NpsBelowTarget" and a["state"] in ("pending", "firing")
            for a in alerts
        )

    assert await wait_for(nps_alert, timeout=30)
