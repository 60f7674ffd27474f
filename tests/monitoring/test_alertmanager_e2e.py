"""Alerts reach a person: real Kafka, a worker, a real Prometheus evaluating a copy of the rules
generated from monitoring/config.yml with short `for:` durations, and a real Alertmanager running
monitoring/alertmanager.yml's routing tree and inhibit rules, its receivers swapped for a webhook
on 127.0.0.1 (one path per severity). Run with `-s` to see every notification received.

One worker and one Prometheus serve every scenario; each scenario has its own queue:
  billing     40 detractors: NpsBelowTarget fires once, then 200 promoters resolve it
  support     29 detractors (minimum n is 30): nothing is sent
  retention   a week of promoters, then an hour of NPS 50: NpsSignificantDrop
  collections 35 detractors sent as the input stalls: held back by the inhibit rule while
              SurveyInputStalled fires for the job, sent once input flows again
  sales       400 promoters and a heartbeat of one promoter a second, which keeps the rollups
              on target and the input alive until the stall scenario stops it
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from monitoring import generate
from stream.kpi.intervals import nps_adjusted_wald
from tests.monitoring.common import ALERTMANAGER_CONFIG, CONFIG, load_yaml
from tests.monitoring.servers import Notification, Receiver, Servers, api, get, wait_for

pytestmark = pytest.mark.kafka
# Short durations for the test copy of the rules. The stall scenario needs the stall to fire
# well before a target alert that started with it: range + for of the stall < the NPS `for:`.
TEST_CONFIG = CONFIG.override(
    {
        "nps": {"for": "30s"},
        "nps_drop": {"for": "5s"},
        "input_stall": {"range": "12s", "for": "1s"},
    }
)
MIN_N = TEST_CONFIG.min_responses
_ids = itertools.count()


def response(queue: str, nps: int, seconds_ago: float) -> tuple[bytes, bytes]:
    rid = f"am-{queue}-{next(_ids)}"
    occurred = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    body = {
        "response_id": rid,
        "channel": "web",
        "occurred_at": occurred.isoformat(),
        "scores": {"nps": nps},
        "queue": queue,
        "customer_id": f"c-{rid}",
    }
    return rid.encode(), orjson.dumps(body)


class Traffic:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer, self.topic = producer, topic
        self.beating = True

    async def send(self, queue: str, scores: list[int], seconds_ago: float = 30) -> None:
        sent = [
            await self.producer.send(self.topic, value=value, key=key)
            for key, value in (response(queue, nps, seconds_ago) for nps in scores)
        ]
        await asyncio.gather(*sent)

    async def heartbeat(self) -> None:
        while True:
            if self.beating:
                await self.send("sales", [10], seconds_ago=5)
            await asyncio.sleep(1)


@contextlib.asynccontextmanager
async def traffic(bootstrap: str, topic: str) -> AsyncIterator[Traffic]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    sender = Traffic(producer, topic)
    beat = asyncio.create_task(sender.heartbeat())
    try:
        yield sender
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        await producer.stop()


def rule_files(servers: Servers) -> list[str]:
    rules = servers.home / "cx.rules.yml"
    alerts = servers.home / "cx.alerts.yml"
    rules.write_text(generate.rules_file(TEST_CONFIG))
    alerts.write_text(generate.alerts_file(TEST_CONFIG))
    return [str(rules), str(alerts)]


def alertmanager_config(receiver: Receiver) -> dict[str, Any]:
    """monitoring/alertmanager.yml with webhook receivers and second-scale timings."""
    config = load_yaml(ALERTMANAGER_CONFIG)
    config["global"] = {"resolve_timeout": "5m"}
    fast = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}
    config["route"].update(fast)
    for route in config["route"]["routes"]:
        route.update({key: value for key, value in fast.items() if key in route})
    config["receivers"] = [
        {"name": r["name"], "webhook_configs": [{"url": receiver.url(f"/{r['name']}"),
                                                  "send_resolved": True}]}
        for r in config["receivers"]
    ]  # fmt: skip
    return config


def show(title: str, notifications: list[Notification]) -> None:
    print(f"\n===== {title}: {len(notifications)} notification(s)")
    for notification in notifications:
        print(notification.summary())


def firing_alerts(prometheus: str, **labels: str) -> list[dict[str, Any]]:
    return [
        alert
        for alert in api(prometheus, "alerts")["alerts"]
        if all(alert["labels"].get(k) == v for k, v in labels.items())
    ]


async def test_alerts_reach_the_receiver_grouped_routed_gated_and_inhibited(
    kafka_bootstrap: str, topic_prefix: str, make_worker, servers: Servers, receiver: Receiver
) -> None:
    worker = make_worker().start(wait_for_partitions=4)
    alertmanager = servers.alertmanager(alertmanager_config(receiver))
    async with traffic(kafka_bootstrap, topic_prefix + "responses") as send:
        await send.send("sales", [10] * 400)
        await send.send("sales", [10] * 150 + [0] * 150, seconds_ago=2 * 86400)
        await send.send("retention", [10] * 300, seconds_ago=2 * 86400)
        await send.send("retention", [10] * 20 + [8] * 20)
        await send.send("billing", [0] * 40)
        await send.send("support", [0] * (MIN_N - 1))
        await wait_for(
            lambda: 'queue="support"' in worker.metrics(), 90, "the worker counted the traffic"
        )
        prometheus = servers.prometheus(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": rule_files(servers),
                "alerting": {"alertmanagers": [{"static_configs": [
                    {"targets": [alertmanager.removeprefix("http://")]}]}]},
                "scrape_configs": [{"job_name": TEST_CONFIG.job, "static_configs": [
                    {"targets": [f"127.0.0.1:{worker.web_port}"]}]}],
            },
            **{"rules.alert.resend-delay": "2s"},
        )  # fmt: skip

        # --- below target, enough responses: one notification, grouped by queue --------------
        (billing,) = await wait_for(
            lambda: receiver.matching(alertname="NpsBelowTarget", queue="billing"),
            120,
            "NpsBelowTarget for billing",
        )
        assert billing.path == "/ticket", "severity ticket must reach the ticket receiver"
        assert billing.status == "firing"
        assert billing.group == {"alertname": "NpsBelowTarget", "job": "cx-worker",
                                 "queue": "billing"}  # fmt: skip
        (alert,) = billing.body["alerts"]
        assert alert["labels"]["severity"] == "ticket"
        assert alert["labels"]["queue"] == "billing"
        assert (alert["labels"]["window"], alert["labels"]["channel"]) == ("1h", "all")
        low, high = nps_adjusted_wald(promoters=0, detractors=40, n=40)
        annotations = alert["annotations"]
        assert annotations["interval"] == f"{low:.1f} to {high:.1f}"
        assert (
            f"is -100.0, 95% interval {low:.1f} to {high:.1f}, on 40 responses"
            in (annotations["description"])
        )
        assert annotations["summary"] == "NPS of queue billing below target (50) over 1h"
        assert annotations["runbook_url"] == CONFIG.runbook("NpsBelowTarget")
        show("firing (billing)", [billing])

        # --- a significant drop against the 7-day NPS ----------------------------------------
        (drop,) = await wait_for(
            lambda: receiver.matching(alertname="NpsSignificantDrop", queue="retention"),
            60,
            "NpsSignificantDrop for retention",
        )
        channels = sorted(a["labels"]["channel"] for a in drop.body["alerts"])
        assert channels == ["all", "web"], "the channels of one queue come in one notification"
        low, high = nps_adjusted_wald(promoters=20, detractors=0, n=40)
        for alert in drop.body["alerts"]:
            assert alert["annotations"]["interval"] == f"{low:.1f} to {high:.1f}"
            assert (
                "below the 7d NPS of the same segment, 94.1" in alert["annotations"]["description"]
            )
        show("NpsSignificantDrop (retention)", [drop])

        # --- recovery: the resolved notification ---------------------------------------------
        await send.send("billing", [10] * 200)
        resolved = await wait_for(
            lambda: [n for n in receiver.matching(queue="billing") if n.status == "resolved"],
            60,
            "resolved notification for billing",
        )
        assert len(resolved) == 1
        assert resolved[0].body["alerts"][0]["labels"]["alertname"] == "NpsBelowTarget"
        show("resolved (billing)", resolved)

        # --- the inhibit rule: a stalled input holds back the KPI tickets of its job ---------
        send.beating = False
        stopped_at = time.time()
        await send.send("collections", [0] * (MIN_N + 5))
        # Only what the stall caused: on a starved machine a scrape that times out makes the
        # counter absent for a moment, and that fires (and resolves) SurveyInputStalled too.
        (stalled, *_) = await wait_for(
            lambda: [
                n
                for n in receiver.matching(alertname="SurveyInputStalled")
                if n.received > stopped_at and n.status == "firing"
            ],
            60,
            "SurveyInputStalled",
        )
        assert stalled.path == "/pager", "severity page must reach the pager receiver"
        earlier = [n for n in receiver.matching(alertname="SurveyInputStalled") if n is not stalled]
        show("SurveyInputStalled, other notifications", earlier)
        assert all(n.path == "/pager" for n in earlier)
        await wait_for(
            lambda: any(
                a["state"] == "firing"
                for a in firing_alerts(prometheus, alertname="NpsBelowTarget", queue="collections")
            ),
            60,
            "NpsBelowTarget for collections firing in Prometheus",
        )

        def inhibited() -> list[dict[str, Any]]:
            found = get(alertmanager, "/api/v2/alerts", filter='queue="collections"')
            return [a for a in found if a["status"]["inhibitedBy"]]

        (held,) = await wait_for(inhibited, 30, "the collections alert inhibited")
        assert held["status"]["state"] == "suppressed"
        await asyncio.sleep(5)  # several group intervals: nothing may be sent meanwhile
        held_back = receiver.matching(queue="collections")
        assert held_back == [], "a KPI ticket was sent while SurveyInputStalled fired"
        show("collections while SurveyInputStalled fires (inhibited)", held_back)
        show("SurveyInputStalled", [stalled])

        send.beating = True
        released_at = time.time()
        (collections,) = await wait_for(
            lambda: receiver.matching(queue="collections"), 60, "collections after the stall"
        )
        assert collections.received > released_at
        assert collections.body["alerts"][0]["labels"]["alertname"] == "NpsBelowTarget"
        show("collections once input flows again", [collections])

    # --- fewer responses than the minimum n: nothing, not even pending -----------------------
    gated = receiver.matching(queue="support")
    show(f"support, {MIN_N - 1} responses (below the minimum n)", gated)
    assert gated == []
    assert firing_alerts(prometheus, queue="support") == []
    assert 'queue="support"' in worker.metrics(), "the gated queue was exported all along"
    firing = [n for n in receiver.matching(alertname="NpsBelowTarget", queue="billing")
              if n.status == "firing"]  # fmt: skip
    assert len(firing) == 1, "exactly one firing notification for the billing queue"
    show("every notification received", receiver.notifications)
