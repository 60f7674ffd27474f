"""Liveness and readiness: /healthz/live, /healthz/ready and /healthz (= ready).

Live: the process runs and its event loop answers (always 200 when it answers at all).
Ready (200, else 503 with the reasons): a broker answered the worker's own probe within the
last CX_HEALTH_BROKER_TIMEOUT seconds, the consumer has partitions assigned, and the tables
are recovered. A broker count of the clients' cluster metadata would keep answering after
every broker is gone, so a small service sends a metadata request (for no topic: see
`probe_once`) every CX_HEALTH_PROBE_INTERVAL seconds with the project's Kafka settings.

Recovery comes from Faust's public table-recovery state, `app.tables.recovery`: `completed`
(set once the first recovery finished), `in_recovery` (a recovery runs now), `active_tps` (the
changelog partitions this worker is active for) and `active_remaining()` (changelog records
still to read per partition), plus `app.rebalancing`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, cast

from aiokafka.admin import AIOKafkaAdminClient
from faust.tables.manager import TableManager
from faust.web import Request, Response, View
from mode import Service

from stream.pipeline.app import CxApp
from stream.settings import KafkaSettings

log = logging.getLogger(__name__)


@dataclass
class BrokerProbe:
    """What the last metadata requests said about the cluster."""

    answered_at: float | None = None  # time.monotonic() of the last answer
    brokers: int = 0
    error: str | None = None  # the type of the last failure, never its text


@dataclass(frozen=True)
class Recovery:
    recovered: int
    total: int
    done: bool


@dataclass(frozen=True)
class Readiness:
    broker_timeout: float
    probe: BrokerProbe
    assigned: list[str]
    recovery: Recovery
    rebalancing: bool
    now: float = field(default_factory=time.monotonic)

    def broker_answered(self) -> bool:
        seen = self.probe.answered_at
        return seen is not None and self.now - seen <= self.broker_timeout

    def reasons(self) -> list[str]:
        reasons = []
        if self.probe.answered_at is None:
            reasons.append(_no_broker("yet", self.probe))
        elif (silent := self.now - self.probe.answered_at) > self.broker_timeout:
            reasons.append(_no_broker(f"for {silent:.0f} s", self.probe))
        if not self.assigned:
            reasons.append("no partitions assigned")
        if self.rebalancing:
            reasons.append("partitions are being rebalanced")
        if not self.recovery.done:
            reasons.append(
                f"tables recovering: {self.recovery.recovered} of {self.recovery.total} "
                "changelog partitions recovered"
            )
        return reasons

    def body(self) -> dict[str, Any]:
        reasons = self.reasons()
        seen = self.probe.answered_at
        return {
            "status": "ok" if not reasons else "unavailable",
            "reasons": reasons,
            "brokers": self.probe.brokers if self.broker_answered() else 0,
            "broker_answered_seconds_ago": None if seen is None else round(self.now - seen, 1),
            "partitions": len(self.assigned),
            "assigned": self.assigned,
            "recovery": {"recovered": self.recovery.recovered, "total": self.recovery.total},
        }


def _no_broker(since: str, probe: BrokerProbe) -> str:
    error = f" (last error: {probe.error})" if probe.error else ""
    return f"no Kafka broker answered {since}{error}"


def table_recovery(app: CxApp) -> Recovery:
    recovery = cast(TableManager, app.tables).recovery  # TableManagerT does not declare it
    active = set(recovery.active_tps)
    remaining = recovery.active_remaining()
    pending = sum(1 for tp in active if remaining.get(tp, 0) > 0)
    done = recovery.completed.is_set() and not recovery.in_recovery
    recovered = len(active) if done else len(active) - pending
    return Recovery(recovered=recovered, total=len(active), done=done)


def readiness(app: CxApp, probe: BrokerProbe, broker_timeout: float) -> Readiness:
    assigned = sorted(f"{tp.topic}:{tp.partition}" for tp in app.consumer.assignment())
    return Readiness(broker_timeout, probe, assigned, table_recovery(app), bool(app.rebalancing))


async def probe_once(admin: AIOKafkaAdminClient, probe: BrokerProbe, timeout: float) -> None:
    """One metadata request. aiokafka's `describe_cluster` asks for every topic of the cluster
    (and drops them), so it counts the brokers only on the first answer and after an outage;
    in between the probe asks for no topic, which costs the same on any cluster."""
    try:
        if probe.answered_at is None or probe.error is not None:
            cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
            brokers = len(cluster.get("brokers", []))
        else:
            await asyncio.wait_for(admin.describe_topics([]), timeout)
            brokers = probe.brokers
    except (TimeoutError, OSError, RuntimeError) as exc:  # aiokafka's errors are RuntimeErrors
        probe.error = type(exc).__name__
        return
    probe.brokers = brokers
    if probe.error is not None and probe.answered_at is not None:  # the end of an outage
        log.warning("Kafka reachable again: %d brokers answered", probe.brokers)
    probe.answered_at = time.monotonic()
    probe.error = None


def register_health(app: CxApp) -> BrokerProbe:
    """The /healthz endpoints and the broker probe service on `app`; returns the probe state."""
    settings = app.settings
    interval, broker_timeout = settings.health_probe_interval, settings.health_broker_timeout
    probe = BrokerProbe()

    class KafkaProbe(Service):
        """Sends a metadata request every `interval` seconds; records when a broker answered."""

        admin: AIOKafkaAdminClient | None = None

        async def _admin(self) -> AIOKafkaAdminClient | None:
            if self.admin is None:
                admin = new_admin(app.kafka, interval)
                try:
                    await asyncio.wait_for(admin.start(), interval)
                except (TimeoutError, OSError, RuntimeError) as exc:
                    probe.error = type(exc).__name__
                    await admin.close()
                    return None
                self.admin = admin
            return self.admin

        @Service.task
        async def _probe(self) -> None:
            while not self.should_stop:
                admin = await self._admin()
                if admin is not None:
                    await probe_once(admin, probe, interval)
                await self.sleep(interval)

        async def on_stop(self) -> None:
            if self.admin is not None:
                await self.admin.close()

    @app.page("/healthz/live")
    class Live(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "alive"})

    @app.page("/healthz/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            state = readiness(app, probe, broker_timeout)
            return self.json(state.body(), status=503 if state.reasons() else 200)

    @app.page("/healthz")
    class Health(Ready):
        """The same as /healthz/ready (what load balancers and compose check)."""

    # A dependency of the app rather than an @app.service: those start only once the tables
    # are recovered, and the probe should answer during recovery too.
    app.add_dependency(KafkaProbe(beacon=app.beacon))
    _ = (Live, Health)
    return probe


def new_admin(kafka: KafkaSettings, timeout: float) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        **kafka.aiokafka_kwargs(), request_timeout_ms=int(timeout * 1000), client_id="cx-health"
    )
