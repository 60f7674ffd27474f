"""Synthetic call-center traffic for demos: raw IVR/SMS/email answers, canonical web responses
(with thumbs, CSI and ACSI, which no raw channel carries), dispatches, lifecycle.

Each channel has its own response rate (RESPONSE_RATE) and every channel is used. Queues differ
in size and level (PROFILES): billing, support and sales sit near or above the seed documents'
targets (NPS 50, CSAT top box 80 %), so their alerts stay quiet; `escalations` is tiny and
unhappy, so its KPIs are below target on fewer answers than the alerts' minimum n (30 in an
hour at 50 surveys/s): a low score that does not alert. `retention` is healthy too, except
during a `degradation` (event times from its start to its end, set by the demo to begin a few
minutes before it starts): its answers then turn bad, and the target alerts and the
significance-aware NPS drop alert fire for that queue only: it is a small queue (3 % of the
surveys), so the all-queue rollups move too little for any alert. Nothing else changes over
time (no random incidents): any other alert would be noise. Agents are drawn uniformly.

A fixed seed reproduces the traffic's content (channels, queues, scores); every id
carries a run id drawn outside the seeded generator, so a second run with the same seed adds
new surveys and customers instead of replaying duplicates of the first.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from stream.pipeline.topics import TopicNames


@dataclass(frozen=True)
class Profile:
    """How one queue's customers answer: shares of NPS promoters (9-10) and detractors (0-6),
    and of CSAT ratings of 5 (the top box)."""

    promoters: float
    detractors: float
    top_box: float


# Share of the surveys per queue, and how each queue answers (NPS about 100 * (p - d)).
QUEUE_SHARE = {
    "billing": 0.36,
    "support": 0.33,
    "sales": 0.2796,
    "retention": 0.03,
    "escalations": 0.0004,
}
QUEUES = tuple(QUEUE_SHARE)
QUEUE_WEIGHTS = tuple(QUEUE_SHARE.values())
PROFILES = {
    "billing": Profile(promoters=0.71, detractors=0.08, top_box=0.88),  # NPS 63
    "support": Profile(promoters=0.73, detractors=0.07, top_box=0.89),  # NPS 66
    "sales": Profile(promoters=0.78, detractors=0.06, top_box=0.91),  # NPS 72
    "retention": Profile(promoters=0.71, detractors=0.08, top_box=0.89),  # NPS 63
    "escalations": Profile(promoters=0.30, detractors=0.45, top_box=0.50),  # NPS -15
}
DEGRADED_QUEUE = "retention"
DEGRADED = Profile(promoters=0.22, detractors=0.52, top_box=0.42)  # NPS -30
AGENTS = tuple(f"agent-{i:02d}" for i in range(1, 21))
CHANNEL_SHARE = {"ivr": 0.35, "sms": 0.3, "email": 0.2, "web": 0.15}
RESPONSE_RATE = {"ivr": 0.35, "sms": 0.22, "email": 0.12, "web": 0.3}
CUSTOMERS = 5000  # customers of one run: cust-<run>-1 .. cust-<run>-5000
CANCELLED_SHARE = 0.1  # of the lifecycle events: weekly churn stays under its 5 % target
CSI_ATTRIBUTES = ("wait_time", "resolution", "courtesy")
SMS_WORDS = {9: "neuf", 10: "10!!", 8: "I'd say 8", 7: "seven", 6: "6/10"}


def new_run_id() -> str:
    # Not from the seeded generator: the seed must not decide the ids.
    return secrets.token_hex(4)


def _ten_point(value: int) -> int:
    return min(10, max(1, value))


def degradation_from(now: datetime) -> tuple[datetime, datetime]:
    """The demo's degradation of DEGRADED_QUEUE: from 10 minutes before `now` (so the end of
    the backfilled history shows it) to 30 minutes after (live traffic continues it)."""
    return now - timedelta(minutes=10), now + timedelta(minutes=30)


@dataclass
class Simulator:
    names: TopicNames
    seed: int = 42
    run_id: str = ""  # "" draws a fresh one
    # Event times [start, end) during which DEGRADED_QUEUE answers as DEGRADED; None: never.
    degradation: tuple[datetime, datetime] | None = None

    def __post_init__(self) -> None:
        self.run_id = self.run_id or new_run_id()
        self.rng = random.Random(self.seed)
        self.counter = 0
        self.customers = 0

    def profile(self, queue: str, at: datetime) -> Profile:
        """How this survey is answered: its queue's profile, unless degraded."""
        if queue == DEGRADED_QUEUE and self.degradation is not None:
            start, end = self.degradation
            if start <= at < end:
                return DEGRADED
        return PROFILES[queue]

    def _nps(self, profile: Profile) -> int:
        draw = self.rng.random()
        if draw < profile.promoters:
            return self.rng.choice((9, 10, 10))
        if draw < profile.promoters + profile.detractors:
            return self.rng.choice((0, 2, 3, 4, 5, 5, 6, 6))
        return self.rng.choice((7, 8, 8))

    def _csat(self, profile: Profile) -> int:
        return 5 if self.rng.random() < profile.top_box else self.rng.choice((1, 2, 3, 4, 4, 4))

    def customer_id(self, number: int) -> str:
        return f"cust-{self.run_id}-{number}"

    def _web_scores(self, nps: int) -> dict[str, object]:
        """Thumbs, CSI and ACSI that follow the NPS answer (so a degradation shows in all)."""
        rng = self.rng
        mood = nps - 7  # detractors perceive less than they expected, promoters more
        csi = {}
        for attribute in CSI_ATTRIBUTES:
            expected = rng.randint(6, 9)
            perceived = _ten_point(expected + mood // 2 + rng.randint(-1, 1))
            csi[attribute] = {"perceived": perceived, "expected": expected}
        acsi = {
            name: _ten_point(nps + rng.randint(-1, 1) - shift)
            for name, shift in (("satisfaction", 0), ("expectation", 1), ("ideal", 2))
        }
        return {"nps": nps, "thumbs": nps >= 7 or rng.random() < 0.1, "csi": csi, "acsi": acsi}

    def messages(self, now: datetime) -> Iterator[tuple[str, bytes, bytes]]:
        """(topic, key, value) for one survey offered to one customer."""
        self.counter += 1
        n = f"{self.run_id}-{self.counter}"
        rng = self.rng
        channel = rng.choices(list(CHANNEL_SHARE), list(CHANNEL_SHARE.values()))[0]
        queue = rng.choices(QUEUES, QUEUE_WEIGHTS)[0]
        agent = rng.choice(AGENTS)
        customer = self.customer_id(rng.randint(1, CUSTOMERS))
        at = now.isoformat()
        dispatch = f"d-{n}"
        yield self.names.dispatches, dispatch.encode(), orjson.dumps(
            {"dispatch_id": dispatch, "channel": channel, "occurred_at": at, "queue": queue,
             "agent_id": agent, "customer_id": customer}
        )  # fmt: skip
        if rng.random() < 0.01:
            self.customers += 1
            kind = "cancelled" if rng.random() < CANCELLED_SHARE else "activated"
            yield (
                self.names.lifecycle,
                customer.encode(),
                orjson.dumps(
                    {"event_id": f"l-{n}", "customer_id": customer, "type": kind, "occurred_at": at}
                ),
            )
        if rng.random() >= RESPONSE_RATE[channel]:
            return
        profile = self.profile(queue, now)
        nps = self._nps(profile)
        if channel == "ivr":
            value = {"call_id": f"c-{n}", "ended_at": at, "queue": queue, "agent_id": agent,
                     "customer_id": customer, "ani": "+33612345678",
                     "digits": {"1": str(nps), "2": str(self._csat(profile))}}  # fmt: skip
            yield self.names.raw_ivr, f"c-{n}".encode(), orjson.dumps(value)
        elif channel == "web":  # a survey tool that speaks SurveyResponse v1 itself
            response_id = f"web:{n}"
            value = {"response_id": response_id, "channel": "web", "occurred_at": at,
                     "scores": self._web_scores(nps), "interaction_id": dispatch,
                     "queue": queue, "agent_id": agent, "customer_id": customer}  # fmt: skip
            yield self.names.responses, response_id.encode(), orjson.dumps(value)
        elif channel == "sms":
            body = "STOP" if rng.random() < 0.02 else SMS_WORDS.get(nps, str(nps))
            value = {"message_id": f"m-{n}", "received_at": at, "from": "+33698765432",
                     "body": body, "survey": "nps", "dispatch_id": dispatch, "queue": queue,
                     "agent_id": agent, "customer_id": customer}  # fmt: skip
            yield self.names.raw_sms, f"m-{n}".encode(), orjson.dumps(value)
        else:
            survey = rng.choice(["nps", "csat", "ces"])
            score = {"nps": nps, "csat": self._csat(profile), "ces": rng.randint(3, 7)}
            value = {"event_id": f"e-{n}", "submitted_at": at, "survey": survey,
                     "score": str(score[survey]), "dispatch_id": dispatch, "queue": queue,
                     "agent_id": agent, "customer_id": customer,
                     "recipient": "someone@example.com"}  # fmt: skip
            yield self.names.raw_email, f"e-{n}".encode(), orjson.dumps(value)


async def run_simulation(
    names: TopicNames,
    producer_kwargs: dict[str, object],
    rate: float,
    duration: float | None,
    seed: int,
    on_tick: Callable[[int], None] | None = None,
    simulator: Simulator | None = None,
) -> int:
    """Offer `rate` surveys per second for `duration` seconds (forever when None).

    `simulator` continues the surveys of a given one (say after its backfill; `seed` unused).
    """
    from aiokafka import AIOKafkaProducer

    simulator = simulator or Simulator(names, seed)
    producer = AIOKafkaProducer(**producer_kwargs, linger_ms=20)
    await producer.start()
    sent = 0
    began = time.monotonic()
    try:
        while duration is None or time.monotonic() - began < duration:
            tick = time.monotonic()
            for _ in range(max(1, int(rate / 10))):
                for topic, key, value in simulator.messages(datetime.now(UTC)):
                    await producer.send(topic, value=value, key=key)
                    sent += 1
            if on_tick is not None:
                on_tick(sent)
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
    finally:
        await producer.stop()
    return sent
