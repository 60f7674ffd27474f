"""Every broker gone for 20 s under a running worker: /healthz/ready says so within 15 s, the
log stays quiet (one line per cause every 10 s, no traceback), and readiness comes back.

A dedicated broker (its own home and ports, as in test_broker_restart) serves one worker
subprocess; the broker is stopped (data kept), left down for OUTAGE seconds and started again.
The figures (seconds to 503, log lines during the outage, seconds to 200) are printed.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from stream.localkafka import LocalBroker
from tests.reliability.test_broker_restart import own_broker, start_or_fail
from tests.support.worker import Worker

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(360)]
OUTAGE = 20.0
_ = own_broker  # the fixture
CAUSE = re.compile(r"Kafka (?:unreachable at (\S+),|at (\S+) not ready \((\w+)\),) retrying")


def ready(worker: Worker) -> tuple[int, dict[str, object]]:
    """(HTTP status, JSON body) of /healthz/ready; (0, {}) when nothing answers."""
    try:
        with urllib.request.urlopen(f"{worker.url}/healthz/ready", timeout=2) as reply:
            return reply.status, dict(json.load(reply))
    except urllib.error.HTTPError as error:
        return error.code, dict(json.load(error))
    except OSError:
        return 0, {}


async def wait_status(
    worker: Worker, status: int, timeout: float
) -> tuple[float, dict[str, object]]:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        code, body = await asyncio.to_thread(ready, worker)
        if code == status:
            return time.monotonic() - began, body
        await asyncio.sleep(0.25)
    raise AssertionError(f"/healthz/ready not {status} within {timeout}s:\n{worker.log_tail()}")


def log_size(worker: Worker) -> int:
    assert worker.log_path is not None
    return worker.log_path.stat().st_size


def log_lines(worker: Worker, start: int, end: int) -> list[str]:
    assert worker.log_path is not None
    with worker.log_path.open("rb") as log:
        log.seek(start)
        return log.read(end - start).decode(errors="replace").splitlines()


async def test_an_outage_is_reported_by_readiness_and_quiet_in_the_log(
    own_broker: LocalBroker, topic_prefix: str, tmp_path: Path
) -> None:
    worker = Worker(
        bootstrap=own_broker.address,
        prefix=topic_prefix,
        data_dir=tmp_path / "worker",
        app_id=f"{topic_prefix}app",
        extra_env={"CX_SESSION_TIMEOUT": "6"},
    )
    try:
        await asyncio.to_thread(worker.start, 4)
        await wait_status(worker, 200, 60)
        assert (await asyncio.to_thread(ready, worker))[0] == 200

        before = log_size(worker)
        await asyncio.to_thread(own_broker.stop)
        stopped = time.monotonic()
        to_503, body = await wait_status(worker, 503, 15)
        assert any("no Kafka broker answered" in r for r in body["reasons"]), body  # type: ignore[attr-defined]
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
        assert (await asyncio.to_thread(ready, worker))[0] == 503, "still down"
        outage = time.monotonic() - stopped
        during = log_lines(worker, before, log_size(worker))

        restart = time.monotonic()
        await asyncio.to_thread(start_or_fail, own_broker)
        accepting = time.monotonic() - restart
        to_200, _body = await wait_status(worker, 200, 120)
        back = accepting + to_200

        causes = Counter(next(g for g in m.groups() if g) + (f" {m.group(3)}" if m.group(3) else "")
                         for line in during if (m := CAUSE.search(line)))  # fmt: skip
        print(
            f"\nkafka_outage: seconds to 503 {to_503:.1f}; log lines during the {outage:.0f} s "
            f"outage {len(during)} ({dict(causes)}); seconds to 200 after the restart began "
            f"{back:.1f} (broker accepting clients after {accepting:.1f}, worker ready "
            f"{to_200:.1f} later)"
        )
        print("\n".join(during))
        assert worker.process is not None and worker.process.poll() is None, "worker alive"
        assert not any("Traceback" in line for line in during), during
        # at most one line per cause every 10 s (the first at once, then every 10 s)
        per_cause_bound = int(outage // 10) + 1
        assert causes and all(n <= per_cause_bound for n in causes.values()), causes
        assert len(during) <= 3 * per_cause_bound + 5, during
    finally:
        await asyncio.to_thread(worker.stop)
