"""Every KPI endpoint of a running worker validates its query: 400 with the valid values for
anything unknown or malformed, never a 500 (hypothesis sends random query strings); the
agent and queue rankings and `python -m stream kpi` read the same rows."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.settings import PROJECT_ROOT
from tests.integration.test_kpi_engine import produce_all, wait_until_matches
from tests.support.traffic import make_traffic

pytestmark = pytest.mark.kafka
ENDPOINTS = ("/kpi", "/kpi/all", "/kpi/agents", "/kpi/queues")
NAMES = st.sampled_from(["window", "channel", "queue", "at", "sort", "order", "min_n", "limit",
                         "agent_id", "x", ""])  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(["1h", "7d", "2h", "sms", "fax", "all", "abc", "nan", "-1", "1e400", "5",
                     "1700000000", "nps", "desc", ""]),
    st.text(max_size=12),
)  # fmt: skip


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.fixture(scope="module")
async def served(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tests.support.worker import Worker

    prefix = f"q{datetime.now(UTC).strftime('%H%M%S%f')}."
    traffic = make_traffic(datetime.now(UTC), responses=3000, seed=31)
    worker = Worker(bootstrap=kafka_bootstrap, prefix=prefix,
                    data_dir=tmp_path_factory.mktemp("w"), app_id=f"{prefix}app")  # fmt: skip
    worker.start(wait_for_partitions=4)
    await produce_all(kafka_bootstrap, prefix, traffic, slice(None))
    await wait_until_matches(worker, traffic)
    yield worker
    worker.stop()


def test_unknown_values_and_parameters_answer_400_with_the_valid_values(served) -> None:  # type: ignore[no-untyped-def]
    for path in ("/kpi?window=2h", "/kpi?channel=fax", "/kpi?window=1h&at=abc",
                 "/kpi/all?at=xyz", "/kpi?agent_id=a1", "/kpi/agents?sort=bogus",
                 "/kpi/queues?limit=0"):  # fmt: skip
        status, body = get(served.url + path)
        assert status == 400, (path, status, body)
        assert body["problems"] and body["parameters"], body
    status, body = get(served.url + "/kpi?window=2h")
    assert body["parameters"]["window"] == ["5m", "1h", "24h", "7d"]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(ENDPOINTS), params=st.lists(st.tuples(NAMES, VALUES), max_size=4))
def test_random_query_strings_never_answer_500(served, path: str, params: list) -> None:  # type: ignore[no-untyped-def]
    status, body = get(f"{served.url}{path}?{urllib.parse.urlencode(params)}")
    assert status in (200, 400, 404), (path, params, status, body)


def test_agent_ranking_is_gated_and_ordered_and_the_cli_prints_it(served) -> None:  # type: ignore[no-untyped-def]
    status, body = get(served.url + "/kpi/agents?window=7d&min_n=5&limit=50")
    assert status == 200 and body["rows"], body
    values = [row["value"] for row in body["rows"]]
    assert values == sorted(values) and all(row["n"] >= 5 for row in body["rows"])
    assert all(row["interval"][0] <= row["value"] <= row["interval"][1] for row in body["rows"])
    _, everything = get(served.url + f"/kpi/all?at={body['at']}")
    agents = {r["agent_id"]: r["kpis"] for r in everything["rows"]
              if r["kind"] == "a" and r["window"] == "7d"}  # fmt: skip
    expected = sorted((k["nps"], -k["nps_responses"], a) for a, k in agents.items()
                      if k.get("nps_responses", 0) >= 5)  # fmt: skip
    assert [row["agent_id"] for row in body["rows"]] == [a for _, _, a in expected][:50]
    done = subprocess.run(
        [sys.executable, "-m", "stream", "kpi", "--agents", "worst", "--window", "7d",
         "--min-n", "5", "--url", served.url],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert body["rows"][0]["agent_id"] in done.stdout and "worst agents by nps" in done.stdout
