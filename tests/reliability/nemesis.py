"""The nemesis: a seeded random schedule of overlapping faults against a group of workers.

The cluster is a dedicated broker (its own home and free ports) with one extra PLAINTEXT
listener per worker, each advertised at the address of a TCP relay (tests/support/relay.py):
worker i bootstraps through relay i and the broker tells it to stay there, so cutting relay i
isolates worker i from the broker, connections open, while the others and the test's own
producer (on the direct listener) carry on.

Fault kinds, each holding its target for a seeded duration and undone in a `finally`:

- kill:   kill -9 of a worker, restarted after the duration, alternately on its own state
          directory and on a wiped one (recovery from the changelogs alone)
- stop:   SIGSTOP of a worker for 1.5 to 3 session timeouts while a peer worker is kept free of
          faults (it takes the partitions over), then SIGCONT: the worker wakes up as a zombie
          of the old generation. While the broker is away the session cannot expire, so the
          stop lasts until the broker has been back for a session timeout
- leave:  SIGTERM (a graceful leave), and the worker joins again after the duration
- broker: the broker stopped (data kept) and started again on the same ports
- cut:    the worker's relay stops passing bytes both ways, connections kept open; then heals

A kill or a stop strikes while its target works: after a chunk of the feed is acknowledged, at
the first moment the worker's process is seen using the CPU (`Fault.at_work`).

Faults of different targets overlap freely (a SIGSTOP during a broker restart, a cut during a
kill of another worker); two faults never hold the same worker (or the broker) at once: a
fault whose target is busy takes another free worker, or waits; a worker is left alone `REST`
seconds after a fault. A worker that exits on its own is restarted, as the deployment's
`restart: unless-stopped` would, and counted as a crash with its cause; one that exits at
start-up because the broker is away is started again once it is back (`refused`).
CX_NEMESIS_FAULTS selects the kinds (comma-separated, default all five); CX_RELIABILITY_SEED
the seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from stream.localkafka import LocalBroker
from tests.reliability.harness import Feed
from tests.reliability.test_broker_restart import dedicated_broker, start_or_fail
from tests.support.relay import Relay
from tests.support.worker import Worker

KINDS = ("kill", "stop", "leave", "broker", "cut")
SESSION_TIMEOUT = 6.0  # CX_SESSION_TIMEOUT of the workers
STOP_GRACE = 10.0  # seconds a worker has to leave after SIGTERM before SIGKILL
REST = 3.0  # seconds a worker is left alone after a fault, before the next may take it
RESTART_TIMEOUT = 180.0  # a worker restarted (or joining) must answer /healthz within this


def selected_kinds(default: tuple[str, ...] = KINDS) -> tuple[str, ...]:
    """The fault kinds of this run: CX_NEMESIS_FAULTS (e.g. "kill,leave,broker,cut")."""
    raw = os.environ.get("CX_NEMESIS_FAULTS")
    if raw is None:
        return default
    kinds = tuple(k.strip() for k in raw.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"CX_NEMESIS_FAULTS: unknown kinds {unknown}; choose among {KINDS}")
    return kinds


# -- the cluster ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RelayedBroker(LocalBroker):
    """A LocalBroker with one more PLAINTEXT listener per relay: (listener port, the port
    advertised for it, i.e. the relay's)."""

    relayed: tuple[tuple[int, int], ...] = ()

    def server_properties(self) -> str:
        lines = super().server_properties().splitlines()
        settings = dict(line.split("=", 1) for line in lines)
        for i, (port, advertised) in enumerate(self.relayed):
            name = f"RELAY{i}"
            settings["listeners"] += f",{name}://127.0.0.1:{port}"
            settings["advertised.listeners"] += f",{name}://127.0.0.1:{advertised}"
            settings["listener.security.protocol.map"] += f",{name}:PLAINTEXT"
        return "".join(f"{key}={value}\n" for key, value in settings.items())


def free_ports(count: int, avoid: set[int]) -> list[int]:
    """`count` distinct free ports, none in `avoid` (held open together while chosen)."""
    sockets = []
    try:
        ports: list[int] = []
        while len(ports) < count:
            sock = socket.socket()
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port not in avoid:
                ports.append(port)
        return ports
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Node:
    """A worker and the relay it reaches the broker through."""

    index: int
    worker: Worker
    relay: Relay
    busy: str | None = None  # the fault holding this worker
    rested_at: float = 0.0  # free for the next fault from then (time.monotonic())

    @property
    def name(self) -> str:
        return f"w{self.index}"

    def alive(self) -> bool:
        return self.worker.process is not None and self.worker.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        assert self.worker.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.worker.process.pid, sig)


def up(worker: Worker, ready_within: float = 15.0) -> None:
    """Start `worker` and return once it is ready (/healthz 200), or once it has answered
    /healthz for `ready_within` seconds without becoming ready: a member of a group may
    legitimately own no partition (Faust's assignor can leave one of three workers without
    any, and a worker without partitions never reports ready), so Worker.start's wait for a
    partition is not used. Raises RuntimeError when the process exits, TimeoutError when it
    never answers."""
    with contextlib.suppress(TimeoutError):
        worker.start(1, timeout=0.0)  # spawns the process; its wait gives up at once
    deadline = time.monotonic() + RESTART_TIMEOUT
    live_since: float | None = None
    while True:
        if worker.process is None or worker.process.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{worker.log_tail()}")
        body = worker.readiness()
        if body.get("status") == "ok":
            return
        now = time.monotonic()
        if "error" not in body:  # the web server answers: the process is up
            live_since = live_since or now
            if now - live_since > ready_within:
                return
        elif now > deadline:
            raise TimeoutError(f"worker not up within {RESTART_TIMEOUT}s:\n{worker.log_tail()}")
        time.sleep(0.3)


def cpu_ticks(pid: int) -> int:
    """User plus system CPU time of a process so far, in clock ticks (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def wait_busy(pid: int, timeout: float) -> bool:
    """Until the process uses the CPU (its tick count grows between two looks 5 ms apart);
    False if it did not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = cpu_ticks(pid)
    while time.monotonic() < deadline:
        time.sleep(0.005)
        now = cpu_ticks(pid)
        if now > last:
            return True
        last = now
    return False


def input_partitions(worker: Worker) -> list[str]:
    """The worker's assigned input partitions (changelogs left out), as /healthz says."""
    assigned = worker.readiness().get("assigned", [])
    assert isinstance(assigned, list)
    return [str(tp) for tp in assigned if "changelog" not in str(tp)]


def crash_cause(worker: Worker) -> str:
    """The reason of a worker's exit, from the end of its log: Faust's "Crashed reason=...",
    else its last error line, else the exit code."""
    code = worker.process.returncode if worker.process is not None else None
    lines = worker.log_tail(400).splitlines()
    for marker in ("Crashed reason=", "[CRITICAL]", "[ERROR]"):
        for line in reversed(lines):
            if marker in line:
                return f"exit {code}: {line.split('] ', 3)[-1].strip()[:200]}"
    return f"exit {code}"


@dataclass
class Cluster:
    broker: RelayedBroker
    nodes: list[Node]
    broker_busy: str | None = None
    broker_events: int = 0  # broker stops and starts so far
    broker_up_since: float = field(default_factory=time.monotonic)
    kills: int = 0  # kill faults so far: every second one wipes the state directory
    crashes: list[str] = field(default_factory=list)  # workers that exited on their own
    # returns once the next chunk of traffic is acknowledged (set by the test's feed)
    beat: Callable[[], Awaitable[None]] | None = None
    refused: int = 0  # worker starts that gave up because the broker was down

    @classmethod
    def build(cls, home: Path, prefix: str, workers: int, env: dict[str, str]) -> Cluster:
        """Relays, then the broker's configuration (not started), then the workers' (not
        started)."""
        plain = dedicated_broker(home / "kafka")  # free ports and the jars of another broker
        listeners = free_ports(workers, {plain.port, plain.controller_port})
        relays = [Relay(target_port=port).start() for port in listeners]
        broker = RelayedBroker(
            home=plain.home,
            port=plain.port,
            controller_port=plain.controller_port,
            relayed=tuple(
                (port, relay.port) for port, relay in zip(listeners, relays, strict=True)
            ),
        )
        nodes = [
            Node(
                index=i,
                worker=Worker(
                    bootstrap=relay.address,
                    prefix=prefix,
                    data_dir=home / f"w{i}",
                    app_id=f"{prefix}app",
                    extra_env={"CX_SESSION_TIMEOUT": f"{SESSION_TIMEOUT:g}", **env},
                ),
                relay=relay,
            )
            for i, relay in enumerate(relays)
        ]
        return cls(broker, nodes)

    @property
    def workers(self) -> list[Worker]:
        return [node.worker for node in self.nodes]

    async def start_workers(self) -> None:
        """The first worker alone (it declares the topics), then the others together."""
        first, *others = self.nodes
        await self.launch(first)
        await asyncio.gather(*(self.launch(n) for n in others))

    async def launch(self, node: Node) -> None:
        """Start the node's worker and wait until it is up (`up`). A worker that exits while
        starting is started again, as the deployment's supervisor would (compose's
        `restart: unless-stopped`). An exit while the broker is being restarted is the
        worker's refusal to start without Kafka (`refused`: retried until the broker is back);
        any other is a crash, counted with its cause (5 in a row fail the test)."""
        crashes = 0
        while True:
            events = self.broker_events
            try:
                await asyncio.to_thread(up, node.worker)
                return
            except RuntimeError as exc:  # it exited
                if self.broker_busy is not None or self.broker_events != events:
                    self.refused += 1
                    await asyncio.sleep(1.0)
                    continue
                self.crashes.append(f"{node.name}: {crash_cause(node.worker)}")
                crashes += 1
                if crashes == 5:
                    raise AssertionError(f"{node.name} crashed 5 times in a row starting") from exc

    async def revive(self) -> None:
        """Restart every worker that exited while no fault held it (a crash of its own)."""
        for node in self.nodes:
            if node.busy is None and not node.alive():
                node.busy = "restart"
                try:
                    self.crashes.append(f"{node.name}: {crash_cause(node.worker)}")
                    await self.launch(node)
                finally:
                    node.busy = None

    def tear_down(self) -> None:
        """Leave no mess, whatever happened: wake stopped workers, heal and close the relays,
        stop the workers (the broker is stopped by its owner)."""
        for node in self.nodes:
            if node.alive():
                node.signal(signal.SIGCONT)
            with contextlib.suppress(Exception):
                node.relay.heal()
        for node in self.nodes:
            node.worker.stop()
        for node in self.nodes:
            node.relay.close()


# -- faults -----------------------------------------------------------------------------------
class Fault:
    """One fault on one target: `inject`, hold for the duration, `undo` (always)."""

    kind: ClassVar[str]
    on_worker: ClassVar[bool] = True
    # with a peer: another worker, kept free of faults meanwhile (to take over the target's
    # partitions)
    needs_peer: ClassVar[bool] = False

    def __init__(self, cluster: Cluster, node: Node | None, jitter: float = 0.0) -> None:
        self.cluster = cluster
        self.node = node
        self.jitter = jitter
        self.notes: list[str] = []

    async def at_work(self) -> None:
        """Until the target is in the middle of its work: after the feed's next chunk is
        acknowledged (at most 5 s of waiting for it) and `jitter` seconds, the first moment the
        worker's process is seen using the CPU (within a second)."""
        if self.cluster.beat is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cluster.beat(), 5.0)
        await asyncio.sleep(self.jitter)
        process = self.worker.process
        if process is not None:
            await asyncio.to_thread(wait_busy, process.pid, 1.0)

    @property
    def note(self) -> str:
        return ",".join(self.notes)

    async def timed(self, label: str, step: Awaitable[object]) -> None:
        """Await `step`, noting how long it took."""
        began = time.monotonic()
        try:
            await step
        finally:
            self.notes.append(f"{label} {time.monotonic() - began:.0f}s")

    @property
    def worker(self) -> Worker:
        assert self.node is not None
        return self.node.worker

    @staticmethod
    def duration(rng: random.Random) -> float:
        raise NotImplementedError

    async def inject(self) -> None:
        raise NotImplementedError

    async def undo(self) -> None:
        raise NotImplementedError

    def held_enough(self) -> bool:
        """Whether the fault, its duration over, may end (True unless a kind says otherwise)."""
        return True


class Kill(Fault):
    kind = "kill"
    wipe = False

    @staticmethod
    def duration(rng: random.Random) -> float:
        return rng.uniform(0.5, 4.0)  # down before the restart begins

    async def inject(self) -> None:
        self.cluster.kills += 1
        self.wipe = self.cluster.kills % 2 == 0
        self.notes.append("wipe" if self.wipe else "keep")
        await self.at_work()
        self.worker.kill()

    async def undo(self) -> None:
        self.worker.kill()  # in case `inject` was interrupted before
        if self.wipe:
            shutil.rmtree(self.worker.data_dir, ignore_errors=True)
        assert self.node is not None
        await self.timed("restart", self.cluster.launch(self.node))


class Stop(Fault):
    kind = "stop"
    needs_peer = True

    @staticmethod
    def duration(rng: random.Random) -> float:
        return SESSION_TIMEOUT * rng.uniform(1.5, 3.0)  # the peer works a while meanwhile

    async def inject(self) -> None:
        assert self.node is not None
        self.notes.append(f"owned {len(await asyncio.to_thread(input_partitions, self.worker))}")
        await self.at_work()
        self.node.signal(signal.SIGSTOP)

    def held_enough(self) -> bool:
        """A stop only outlives the session when the group coordinator runs: while the broker
        is away (or back for less than a session timeout), the worker stays stopped."""
        cluster = self.cluster
        up = time.monotonic() - cluster.broker_up_since
        return cluster.broker_busy is None and up > SESSION_TIMEOUT + 1.0

    async def undo(self) -> None:
        assert self.node is not None
        self.node.signal(signal.SIGCONT)


class Leave(Fault):
    kind = "leave"

    @staticmethod
    def duration(rng: random.Random) -> float:
        return rng.uniform(2.0, 10.0)  # away before joining again

    async def inject(self) -> None:
        # SIGTERM, then SIGKILL after compose's default grace period (stop_grace_period: 10s)
        await self.timed("stop", asyncio.to_thread(self.worker.stop, STOP_GRACE))
        process = self.worker.process
        if process is not None and process.returncode == -signal.SIGKILL:
            self.notes.append("killed after the grace period")

    async def undo(self) -> None:
        if self.node is not None and not self.node.alive():
            await self.timed("join", self.cluster.launch(self.node))


class BrokerRestart(Fault):
    kind = "broker"
    on_worker = False

    @staticmethod
    def duration(rng: random.Random) -> float:
        return rng.uniform(3.0, 10.0)

    async def inject(self) -> None:
        self.cluster.broker_events += 1
        await self.timed("stop", asyncio.to_thread(self.cluster.broker.stop))

    async def undo(self) -> None:
        try:
            await self.timed("start", asyncio.to_thread(start_or_fail, self.cluster.broker))
        finally:
            self.cluster.broker_events += 1
            self.cluster.broker_up_since = time.monotonic()


class Cut(Fault):
    kind = "cut"

    @staticmethod
    def duration(rng: random.Random) -> float:
        return rng.uniform(2.0, 15.0)  # shorter or longer than the session timeout

    async def inject(self) -> None:
        assert self.node is not None
        self.node.relay.cut()

    async def undo(self) -> None:
        assert self.node is not None
        self.node.relay.heal()


FAULTS: dict[str, type[Fault]] = {f.kind: f for f in (Kill, Stop, Leave, BrokerRestart, Cut)}


# -- the schedule -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Planned:
    at: float  # seconds after the schedule starts
    kind: str
    duration: float
    target: int  # the preferred worker (worker faults)
    jitter: float  # seconds after a chunk of traffic was acknowledged (kill, stop)

    def __str__(self) -> str:
        return f"{self.kind}@{self.at:.1f}s({self.duration:.1f}s,w{self.target})"


@dataclass(frozen=True)
class Done:
    kind: str
    target: str
    start: float
    end: float
    note: str

    def __str__(self) -> str:
        note = f",{self.note}" if self.note else ""
        return f"{self.kind}[{self.target}{note}]@{self.start:.1f}-{self.end:.1f}s"


def make_plan(
    rng: random.Random, counts: dict[str, int], start: float, end: float, workers: int
) -> list[Planned]:
    """`counts[kind]` faults of each kind at uniform random times in [start, end)."""
    plan = [
        Planned(
            at=rng.uniform(start, end),
            kind=kind,
            duration=FAULTS[kind].duration(rng),
            target=rng.randrange(workers),
            jitter=rng.uniform(0.0, 0.4),
        )
        for kind, count in counts.items()
        for _ in range(count)
    ]
    return sorted(plan, key=lambda p: p.at)


@dataclass
class Nemesis:
    """Runs a plan against a cluster, and a supervisor that restarts workers crashing on their
    own; `stop()` ends every fault (each undone) and skips the ones not begun, `close()` ends
    the supervisor (keep it through the final check: a worker may crash then too)."""

    cluster: Cluster
    plan: list[Planned]
    done: list[Done] = field(default_factory=list)
    skipped: list[Planned] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _closed: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _supervisor: asyncio.Task[None] | None = None
    _t0: float = 0.0

    def start(self) -> Nemesis:
        self._t0 = time.monotonic()
        self._tasks = [asyncio.create_task(self._run(p)) for p in self.plan]
        self._supervisor = asyncio.create_task(self._supervise())
        return self

    async def _supervise(self) -> None:
        """Restart workers that crash on their own, as the deployment would."""
        while not self._closed.is_set():
            await self.cluster.revive()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), 0.5)

    def now(self) -> float:
        return time.monotonic() - self._t0

    async def _pause(self, seconds: float) -> bool:
        """Sleep up to `seconds`; False when stopped meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), max(0.0, seconds))
        return not self._stop.is_set()

    async def _claim(self, planned: Planned) -> tuple[bool, list[Node]]:
        """(True, the nodes marked busy): the target, a free worker (the preferred one
        first), and for a kind that `needs_peer` a free peer too; no node for the broker.
        (False, []) when stopped before they were free."""
        kind = FAULTS[planned.kind]
        nodes = self.cluster.nodes
        order = [nodes[(planned.target + i) % len(nodes)] for i in range(len(nodes))]
        while not self._stop.is_set():
            now = time.monotonic()
            free = [  # a dead one is revive's
                n for n in order if n.busy is None and n.alive() and now >= n.rested_at
            ]
            claimed: list[Node] | None = None
            if not kind.on_worker:
                if self.cluster.broker_busy is None:
                    self.cluster.broker_busy = planned.kind
                    claimed = []
            elif len(free) >= (2 if kind.needs_peer else 1):
                claimed = free[:2] if kind.needs_peer else free[:1]
            if claimed is not None:
                for i, node in enumerate(claimed):
                    node.busy = planned.kind if i == 0 else f"{planned.kind}-peer"
                return True, claimed
            await asyncio.sleep(0.2)
        return False, []

    async def _run(self, planned: Planned) -> None:
        if not await self._pause(planned.at - self.now()):
            self.skipped.append(planned)
            return
        claimed, nodes = await self._claim(planned)
        if not claimed:
            self.skipped.append(planned)
            return
        node = nodes[0] if nodes else None
        fault = FAULTS[planned.kind](self.cluster, node, planned.jitter)
        if len(nodes) > 1:
            fault.notes.append(f"peer {nodes[1].name}")
        start = self.now()
        try:
            await fault.inject()
            if await self._pause(planned.duration):
                while not fault.held_enough() and await self._pause(0.5):
                    pass
        finally:
            try:
                await fault.undo()
            finally:
                target = node.name if node else "broker"
                self.done.append(Done(planned.kind, target, start, self.now(), fault.note))
                if node is None:
                    self.cluster.broker_busy = None
                for claimed_node in nodes:
                    claimed_node.busy = None
                    claimed_node.rested_at = time.monotonic() + REST

    async def wait(self, timeout: float) -> None:
        """Until every planned fault has run, or `timeout` seconds."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=max(0.0, timeout))

    async def stop(self) -> None:
        """End every fault now (each undone), skip those not begun, restart crashed workers;
        re-raise a fault's error."""
        self._stop.set()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.cluster.revive()
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def close(self) -> None:
        """Stop the faults (if not done yet) and the supervisor; re-raise its error."""
        try:
            await self.stop()
        finally:
            self._closed.set()
            if self._supervisor is not None:
                await self._supervisor

    def by_kind(self) -> Counter[str]:
        return Counter(d.kind for d in self.done)

    def overlaps(self) -> int:
        """Pairs of faults that were active at the same time."""
        spans = sorted((d.start, d.end) for d in self.done)
        return sum(
            1 for i, a in enumerate(spans) for b in spans[i + 1 :] if b[0] < a[1] and a[0] < b[1]
        )

    def most_at_once(self) -> int:
        edges = sorted([(d.start, 1) for d in self.done] + [(d.end, -1) for d in self.done])
        active = peak = 0
        for _, step in edges:
            active += step
            peak = max(peak, active)
        return peak


# -- the load ---------------------------------------------------------------------------------
async def pace(feed: Feed, period: float) -> float:
    """Keep `feed` on a schedule of one chunk per `period` seconds: its pause is set so that
    the next chunk starts on time (none after a stall, until it has caught up: the average
    rate holds). The feed reads its pause right after a chunk is acknowledged, so it is
    refreshed often. Returns the seconds the feed took, once it is done."""
    t0 = time.monotonic()
    while not feed.done:
        feed.pause = max(0.0, t0 + (feed.sent + 1) * period - time.monotonic())
        await asyncio.sleep(0.02)
    return time.monotonic() - t0
