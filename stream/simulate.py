"""Synthetic call-center traffic for demos: raw IVR/SMS/email answers, canonical web responses
(with thumbs, CSI and ACSI, which no raw channel carries), dispatches, lifecycle.

Each channel has its own response rate and score mix; queues and agents vary a little, and now
and then an incident makes one queue's or agent's scores collapse for a while, so dashboards and
alerts have something to show. A fixed seed reproduces the traffic's content (channels, scores,
incidents); every id carries a run id drawn outside the seeded generator, so a second run with
the same seed adds new surveys and customers instead of replaying duplicates of the first.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from stream.pipeline.topics import TopicNames

QUEUES = ("billing", "sales", "support", "retention")
AGENTS = tuple(f"agent-{i:02d}" for i in range(1, 21))
CHANNEL_SHARE = {"ivr": 0.35, "sms": 0.3, "email": 0.2, "web": 0.15}
RESPONSE_RATE = {"ivr": 0.35, "sms": 0.22, "email": 0.12, "web": 0.3}
CUSTOMERS = 5000  # customers of one run: cust-<run>-1 .. cust-<run>-5000
CSI_ATTRIBUTES = ("wait_time", "resolution", "courtesy")
NPS_MIX = {"billing": [0, 4, 6, 7, 8, 8, 9, 9, 10, 10], "sales": [6, 7, 8, 9, 9, 10, 10, 10, 10, 9]}
SMS_WORDS = {9: "neuf", 10: "10!!", 8: "I'd say 8", 7: "seven", 6: "6/10"}


def new_run_id() -> str:
    # Not from the seeded generator: the seed must not decide the ids.
    return secrets.token_hex(4)


def _ten_point(value: int) -> int:
    return min(10, max(1, value))


@dataclass
class Simulator:
    names: TopicNames
    seed: int = 42
    started: float = 0.0
    run_id: str = ""  # "" draws a fresh one

    def __post_init__(self) -> None:
        self.run_id = self.run_id or new_run_id()
        self.rng = random.Random(self.seed)
        self.counter = 0
        self.customers = 0
        # An incident: one queue or agent whose scores collapse until survey number `until`.
        self.incident: tuple[str, str, int] | None = None

    def _maybe_incident(self) -> None:
        if self.incident is not None and self.counter >= self.incident[2]:
            self.incident = None
        if self.incident is None and self.rng.random() < 0.0005:
            kind = self.rng.choice(["queue", "agent"])
            name = self.rng.choice(QUEUES if kind == "queue" else AGENTS)
            self.incident = (kind, name, self.counter + self.rng.randint(500, 3000))

    def _nps(self, queue: str, agent: str) -> int:
        if self.incident is not None and self.incident[1] in (queue, agent):
            return self.rng.choice([0, 1, 2, 3, 4, 5, 6, 7])
        return self.rng.choice(NPS_MIX.get(queue, [5, 7, 8, 8, 9, 9, 10, 10, 6, 3]))

    def customer_id(self, number: int) -> str:
        return f"cust-{self.run_id}-{number}"

    def _web_scores(self, nps: int) -> dict[str, object]:
        """Thumbs, CSI and ACSI that follow the NPS answer (so incidents show in all of them)."""
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
        self._maybe_incident()
        n = f"{self.run_id}-{self.counter}"
        rng = self.rng
        channel = rng.choices(list(CHANNEL_SHARE), list(CHANNEL_SHARE.values()))[0]
        queue, agent = rng.choice(QUEUES), rng.choice(AGENTS)
        customer = self.customer_id(rng.randint(1, CUSTOMERS))
        at = now.isoformat()
        dispatch = f"d-{n}"
        yield self.names.dispatches, dispatch.encode(), orjson.dumps(
            {"dispatch_id": dispatch, "channel": channel, "occurred_at": at, "queue": queue,
             "agent_id": agent, "customer_id": customer}
        )  # fmt: skip
        if rng.random() < 0.01:
            self.customers += 1
            kind = "cancelled" if rng.random() < 0.3 else "activated"
            yield (
                self.names.lifecycle,
                customer.encode(),
                orjson.dumps(
                    {"event_id": f"l-{n}", "customer_id": customer, "type": kind, "occurred_at": at}
                ),
            )
        if rng.random() >= RESPONSE_RATE[channel]:
            return
        nps = self._nps(queue, agent)
        if channel == "ivr":
            value = {"call_id": f"c-{n}", "ended_at": at, "queue": queue, "agent_id": agent,
                     "customer_id": customer, "ani": "+33612345678",
                     "digits": {"1": str(nps), "2": str(rng.choice([3, 4, 4, 5, 5]))}}  # fmt: skip
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
            score = {"nps": nps, "csat": rng.choice([2, 3, 4, 5, 5]), "ces": rng.randint(3, 7)}
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
