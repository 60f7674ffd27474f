"""A real Prometheus scrapes a real worker on the real broker: stored values equal the batch
KPIs, every dashboard query returns data, and the NPS alert goes pending on low-NPS traffic."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_kpi_engine import expected_kpis, produce_all, wait_until_matches
from tests.support.traffic import make_traffic
from tests.support.worker import free_port

pytestmark = pytest.mark.kafka
MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
VARIABLES = {"window": "1h", "channel": "all", "queue": "all"}


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: run scripts/setup.sh (Debian package prometheus)"
    servers: list[subprocess.Popen[bytes]] = []

    def start(target_port: int) -> str:
        port = free_port()
        rules = sorted(str(p) for p in (MONITORING / "rules").glob("*.yml"))
        rules += sorted(str(p) for p in (MONITORING / "alerts").glob("*.yml"))
        config = tmp_path / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": rules,
                    "scrape_configs": [
                        {"job_name": "cx-worker",
                         "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
                    ],
                }
            )
        )  # fmt: skip
        log = (tmp_path / "prometheus.log").open("wb")
        servers.append(
            subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.terminate()
        server.wait(30)


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = json.load(reply)
    assert body["status"] == "success", body
    return body["data"]


async def wait_for(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, AssertionError, KeyError, IndexError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(1)


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
    kafka_bootstrap: str, topic_prefix: str, make_worker, prometheus
) -> None:
    traffic = make_traffic(datetime.now(UTC), responses=3000, seed=41)  # NPS far below 50
    worker = make_worker().start(wait_for_partitions=4)
    base = prometheus(worker.web_port)
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
