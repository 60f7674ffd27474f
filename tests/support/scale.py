"""One scale-out run measured from outside the workers: who owns which partitions, how much CPU
each worker spends draining the same traffic, and how much state each one holds.

What `measure_run` does with N not yet started workers on fresh topics:
  1. starts them together and waits until the assignment has settled: every worker ready, every
     partition of every input topic on exactly one worker, each worker owning some (N <= the
     partition count), the same assignment on two polls `STABLE_SECONDS` apart;
  2. reads each worker's CPU time (utime + stime of the process, all threads, /proc/<pid>/stat)
     over `idle_seconds` with nothing to do (the idle floor, reported), then produces the
     traffic, pre-generated, and waits until the workers' consumer group has committed the end
     of every partition they consume (inputs and the internal topics between stages, except
     `PERIODIC_TOPICS`, which a timer writes whatever the traffic): drained.
     The CPU window runs from the settled assignment to that moment. The traffic is produced
     only once the assignment settled so that no worker drains a share that belongs to another
     one while the others are still joining; the commit-based drain detection reads nothing
     from the workers (no request of ours spends their CPU) and finishes up to one Faust commit
     interval (about 3 s) after the last record was processed;
  3. compares the union of the workers' /kpi/all rows with the batch computation (exact, with
     a bounded wait) and checks that every /metrics series is exported by exactly one worker
     (tests/reliability/harness.py: `settle`, `check_exported_once`);
  4. stops the workers and measures the state of each table partition where it is ACTIVE:
     RocksDB tables by opening the active worker's copy read-only with rocksdict (the library
     faust-streaming's store uses): live keys (Faust's own offset key left out), key + value
     bytes, and the bytes of its data files (SST and WAL) on disk; in-memory tables (no RocksDB
     directory) from their compacted changelog: the latest record per key, tombstones dropped.
     Standby copies (num_standby_replicas 1: every worker also keeps another's partitions)
     are measured too but reported apart, never in the shares.

A table partition is active where its source topic's partition is assigned (Faust's rule);
`TABLE_SOURCES` names the source of each table, anything else is fed by the internal partials
topic. The consumer assignment in /healthz also lists changelog partitions (active and
standby alike), which are therefore not used to attribute state.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from stream.pipeline.topics import ensure_topics
from stream.settings import KafkaSettings, Settings
from tests.reliability.harness import check_exported_once, settle
from tests.support.traffic import Traffic
from tests.support.worker import Worker

PARTITIONS = 4
PARTIALS = "internal.kpi-partials"
# Table -> the topic (without prefix) whose partitions decide where the table is active;
# a table not named here (or whose topic no worker consumes) goes with the partials topic.
TABLE_SOURCES = {"ids-responses": "responses", "ids-dispatches": "dispatches",
                 "ids-lifecycle": "lifecycle", "kpi-parts": "internal.kpi-parts"}  # fmt: skip
# Topics a timer writes whatever the traffic (per-partition parts for a final merge step): their
# end keeps moving while the workers idle, so the drain is judged on every other topic.
PERIODIC_TOPICS = frozenset({"internal.kpi-parts"})
FAUST_OFFSET_KEY = b"__faust\x00offset__"  # faust.stores.rocksdb.Store.offset_key
DATA_FILES = (".sst", ".log")  # RocksDB tables and write-ahead logs (not LOG*, its info log)
DB_DIR = re.compile(r"^(?P<table>.+)-(?P<partition>\d+)\.db$")
STABLE_SECONDS = 2.0
JOINED = re.compile(rb"Joined group '[^']*' \(generation (\d+)\)")
Ownership = dict[str, set[int]]  # topic (without prefix) -> partitions a worker consumes


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def shares(values: Sequence[float]) -> list[float]:
    total = sum(values)
    return [v / total if total else 0.0 for v in values]


# -- assignment -------------------------------------------------------------------------------
def ownership(health: dict[str, Any], prefix: str, app_id: str) -> Ownership:
    """The input partitions a worker consumes, from its /healthz `assigned` (changelogs left
    out: a worker reads active and standby changelog partitions alike)."""
    owned: Ownership = defaultdict(set)
    for entry in health.get("assigned", []):
        topic, _, partition = str(entry).rpartition(":")
        if topic.startswith(app_id + "-") or not topic.startswith(prefix):
            continue
        owned[topic.removeprefix(prefix)].add(int(partition))
    return dict(owned)


def settled(owners: Sequence[Ownership], partitions: int) -> bool:
    """Every partition of every input topic on exactly one worker; each worker owns some."""
    topics = set().union(*(set(o) for o in owners))
    if not topics or any(not o for o in owners[:partitions]):
        return False
    for topic in topics:
        held = [p for o in owners for p in o.get(topic, set())]
        if sorted(held) != list(range(partitions)):
            return False
    return True


def generation(worker: Worker) -> int:
    """The last consumer-group generation the worker joined, from its log (aiokafka logs each
    join): read from the file, so that asking costs the worker nothing."""
    if worker.log_path is None or not worker.log_path.exists():
        return -1
    found = JOINED.findall(worker.log_path.read_bytes())
    return int(found[-1]) if found else -1


async def start_together(workers: Sequence[Worker], timeout: float) -> None:
    """Start every worker at once (each start waits only for its web port to answer)."""
    await asyncio.gather(*(asyncio.to_thread(w.start, 0, timeout) for w in workers))


async def wait_settled(
    workers: Sequence[Worker], prefix: str, app_id: str, timeout: float
) -> list[Ownership]:
    deadline = time.monotonic() + timeout
    last: list[Ownership] | None = None
    while True:
        healths = await asyncio.gather(*(asyncio.to_thread(w.health) for w in workers))
        owners = [ownership(h or {}, prefix, app_id) for h in healths]
        ready = all(h is not None and h.get("status") == "ok" for h in healths)
        if ready and settled(owners, PARTITIONS):
            if owners == last:
                return owners
            last = owners
        else:
            last = None
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.data_dir.name}:\n{w.log_tail(15)}" for w in workers)
            raise TimeoutError(f"assignment not settled within {timeout:.0f}s: {owners}\n{logs}")
        for worker in workers:
            if worker.process is not None and worker.process.poll() is not None:
                raise RuntimeError(f"worker {worker.data_dir.name} exited:\n{worker.log_tail()}")
        await asyncio.sleep(STABLE_SECONDS)


# -- traffic and drain ------------------------------------------------------------------------
async def produce_traffic(bootstrap: str, prefix: str, traffic: Traffic) -> float:
    """Send the whole traffic (one producer, acks=all, each topic's produce order kept);
    returns the seconds it took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=262144
    )
    await producer.start()
    began = time.perf_counter()
    try:
        futures = []
        for topic, messages in (("responses", traffic.response_messages),
                                ("dispatches", traffic.dispatch_messages),
                                ("lifecycle", traffic.lifecycle_messages)):  # fmt: skip
            for key, value in messages:
                futures.append(await producer.send(prefix + topic, value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - began


async def wait_drained(
    bootstrap: str, group: str, topics: Sequence[str], timeout: float, poll: float = 0.25
) -> None:
    """Until the group's committed offsets reach the end of every partition of `topics`."""
    tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            # Commits first: an end read afterwards is at least as far, so equal means drained.
            offsets = await admin.list_consumer_group_offsets(group)
            committed = {tp: meta.offset for tp, meta in offsets.items()}
            ends = await consumer.end_offsets(tps)
            behind = {tp: end - max(committed.get(tp, 0), 0) for tp, end in ends.items()}
            if any(n > 0 for n in behind.values()):
                behind = await past_markers(bootstrap, committed, ends, behind)
            if not any(n > 0 for n in behind.values()):
                return
            if time.monotonic() > deadline:
                left = {f"{tp.topic}:{tp.partition}": n for tp, n in behind.items() if n > 0}
                raise TimeoutError(f"not drained within {timeout:.0f}s: {left}")
            await asyncio.sleep(poll)
    finally:
        await consumer.stop()
        await admin.close()


async def past_markers(
    bootstrap: str,
    committed: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
    behind: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """`behind` with the partitions whose committed offset reaches their last record put at 0:
    a transaction's commit marker (or aborted records) may follow the last record."""
    from faust.types import TP

    from stream.pipeline.transactions import last_record_ends

    late = {TP(tp.topic, tp.partition): ends[tp] for tp, n in behind.items() if n > 0}
    last = await last_record_ends(KafkaSettings(bootstrap_servers=bootstrap), late)
    out = dict(behind)
    for tp, end in last.items():
        part = TopicPartition(tp.topic, tp.partition)
        out[part] = max(0, end - max(committed.get(part, 0), 0))
    return out


async def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        return {(tp.topic, tp.partition): n for tp, n in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


# -- state ------------------------------------------------------------------------------------
@dataclass
class Store:
    """One table partition's state as measured."""

    table: str
    partition: int
    kind: str  # "rocksdb" or "memory" (from its compacted changelog)
    keys: int
    bytes: int  # key + value bytes of the live keys
    disk_bytes: int | None = None  # RocksDB data files (SST + WAL)


def rocksdb_store(path: Path, table: str, partition: int) -> Store:
    from rocksdict import AccessType, Options, Rdict

    keys = size = 0
    db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
    try:
        for key, value in db.items():  # raw mode: bytes keys and values
            if key == FAUST_OFFSET_KEY:
                continue
            keys += 1
            size += len(bytes(key)) + len(bytes(value))  # type: ignore[arg-type]
    finally:
        db.close()
    disk = sum(f.stat().st_size for f in path.iterdir() if f.name.endswith(DATA_FILES))
    return Store(table, partition, "rocksdb", keys, size, disk)


async def changelog_stores(bootstrap: str, topic: str, table: str) -> list[Store]:
    """Each partition of a compacted changelog as its table's state: the latest record per key
    up to the end offsets read at the start, tombstones dropped."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1048576,
        isolation_level="read_committed",  # the tables' changelogs are written in transactions
    )  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        latest: dict[int, dict[bytes, bytes | None]] = defaultdict(dict)
        pending = {tp for tp in tps if ends[tp] > 0}
        for tp in tps:
            await consumer.seek_to_beginning(tp)
        while pending:
            for tp, records in (await consumer.getmany(*pending, timeout_ms=1000)).items():
                for record in records:
                    if record.offset < ends[tp]:
                        latest[tp.partition][record.key] = record.value
            for tp in list(pending):  # past the end, commit markers included
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    stores = []
    for partition in range(PARTITIONS):
        live = {k: v for k, v in latest[partition].items() if v is not None}
        size = sum(len(k) + len(v) for k, v in live.items())
        stores.append(Store(table, partition, "memory", len(live), size))
    return stores


def rocksdb_copies(data_dir: Path) -> dict[tuple[str, int], Path]:
    """(table, partition) -> the RocksDB directory of that table partition in a worker's dir."""
    out = {}
    for path in data_dir.rglob("*.db"):
        if path.is_dir() and (match := DB_DIR.match(path.name)):
            out[(match["table"], int(match["partition"]))] = path
    return out


async def changelog_tables(bootstrap: str, app_id: str) -> dict[str, str]:
    """table -> its changelog topic, for every table of the app (Faust names them
    `<app id>-<table>-changelog`)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        topics = await consumer.topics()
    finally:
        await consumer.stop()
    head, tail = f"{app_id}-", "-changelog"
    return {t[len(head) : -len(tail)]: t for t in topics if t.startswith(head) and t.endswith(tail)}


def active_worker(owners: Sequence[Ownership], table: str, partition: int) -> int:
    source = TABLE_SOURCES.get(table, PARTIALS)
    if not any(source in owned for owned in owners):
        source = PARTIALS
    for index, owned in enumerate(owners):
        if partition in owned.get(source, set()):
            return index
    raise LookupError(f"no worker owns {source}:{partition} (the source of {table})")


@dataclass
class StateOf:
    keys: int = 0
    bytes: int = 0
    disk_bytes: int = 0
    tables: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> keys, bytes

    def add(self, store: Store) -> None:
        self.keys += store.keys
        self.bytes += store.bytes
        self.disk_bytes += store.disk_bytes or 0
        mine = self.tables.setdefault(store.table, {"keys": 0, "bytes": 0})
        mine["keys"] += store.keys
        mine["bytes"] += store.bytes


async def measure_state(
    bootstrap: str, app_id: str, workers: Sequence[Worker], owners: Sequence[Ownership]
) -> tuple[list[StateOf], list[StateOf], list[Store]]:
    """(active state per worker, standby RocksDB copies per worker, every active store);
    call it once the workers have stopped (their RocksDB directories are then complete)."""
    tables = await changelog_tables(bootstrap, app_id)
    copies = [rocksdb_copies(w.data_dir) for w in workers]
    on_rocksdb = {table for found in copies for table, _ in found}
    active = [StateOf() for _ in workers]
    standby = [StateOf() for _ in workers]
    stores: list[Store] = []
    for table in sorted(set(tables) | on_rocksdb):
        if table not in on_rocksdb:
            for store in await changelog_stores(bootstrap, tables[table], table):
                active[active_worker(owners, table, store.partition)].add(store)
                stores.append(store)
            continue
        for partition in range(PARTITIONS):
            owner = active_worker(owners, table, partition)
            for index, found in enumerate(copies):
                path = found.get((table, partition))
                if path is None:
                    continue
                store = await asyncio.to_thread(rocksdb_store, path, table, partition)
                if index == owner:
                    active[index].add(store)
                    stores.append(store)
                else:
                    standby[index].add(store)
    return active, standby, stores


# -- one run ----------------------------------------------------------------------------------
@dataclass
class WorkerFigures:
    name: str
    partitions: list[int]  # the internal partials topic's partitions (stage 2) it owns
    cpu_seconds: float
    cpu_share: float
    idle_cpu_per_second: float
    state_keys: int
    state_bytes: int
    state_disk_bytes: int
    keys_share: float
    bytes_share: float
    standby_keys: int
    standby_bytes: int
    state_by_table: dict[str, dict[str, int]]
    records_consumed: dict[str, int]  # topic (without prefix) -> records of its partitions


@dataclass
class ScaleRun:
    workers: int
    responses: int  # response messages (revisions, re-deliveries and too-old ones included)
    input_messages: int
    produce_seconds: float
    drain_seconds: float
    exact: bool
    exact_error: str | None
    exported_once: bool
    exported_error: str | None
    series: int
    rebalanced: bool  # a worker joined a new group generation between settling and drained
    largest_cpu_share: float
    largest_keys_share: float
    largest_bytes_share: float
    per_worker: list[WorkerFigures]
    stores: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        cpu = "/".join(f"{w.cpu_share:.2f}" for w in self.per_worker)
        keys = "/".join(f"{w.keys_share:.2f}" for w in self.per_worker)
        size = "/".join(f"{w.bytes_share:.2f}" for w in self.per_worker)
        return (
            f"SCALE workers={self.workers} exact={self.exact} exported_once={self.exported_once} "
            f"drain_s={self.drain_seconds:.1f} cpu_shares={cpu} keys_shares={keys} "
            f"bytes_shares={size} largest_cpu={self.largest_cpu_share:.3f} "
            f"largest_keys={self.largest_keys_share:.3f} "
            f"largest_bytes={self.largest_bytes_share:.3f} rebalanced={self.rebalanced}"
        )


async def measure_run(
    bootstrap: str,
    prefix: str,
    workers: Sequence[Worker],
    traffic: Traffic,
    idle_seconds: float = 3.0,
    timeout: float = 600.0,
    exact_timeout: float = 240.0,
) -> ScaleRun:
    """Start `workers` (same prefix and app id, own data dirs), feed `traffic`, measure."""
    app_id = workers[0].app_id
    await ensure_topics(Settings(topic_prefix=prefix), KafkaSettings(bootstrap_servers=bootstrap))
    await start_together(workers, timeout=180)
    owners = await wait_settled(workers, prefix, app_id, timeout=180)
    generations = [generation(w) for w in workers]
    pids = [w.process.pid for w in workers if w.process is not None]
    idle_start = [cpu_seconds(pid) for pid in pids]
    await asyncio.sleep(idle_seconds)
    cpu0 = [cpu_seconds(pid) for pid in pids]
    idle = [(b - a) / idle_seconds for a, b in zip(idle_start, cpu0, strict=True)]
    began = time.monotonic()
    produce_seconds = await produce_traffic(bootstrap, prefix, traffic)
    topics = sorted(set().union(*(set(o) for o in owners)))
    drained = [prefix + t for t in topics if t not in PERIODIC_TOPICS]
    await wait_drained(bootstrap, app_id, drained, timeout)
    drain_seconds = time.monotonic() - began
    cpu = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu0, strict=True)]
    rebalanced = [generation(w) for w in workers] != generations

    exact_error = exported_error = None
    series = 0
    try:
        await settle(workers, traffic, timeout=exact_timeout)
    except AssertionError as exc:
        exact_error = str(exc)[:2000]
    if exact_error is None:
        try:
            series = await asyncio.to_thread(check_exported_once, workers, traffic)
        except AssertionError as exc:
            exported_error = str(exc)[:2000]
    for worker in workers:
        worker.stop()

    ends = await end_offsets(bootstrap, [prefix + t for t in topics])
    active, standby, stores = await measure_state(bootstrap, app_id, workers, owners)
    cpu_share = shares(cpu)
    keys_share = shares([s.keys for s in active])
    bytes_share = shares([s.bytes for s in active])
    per_worker = []
    for i, worker in enumerate(workers):
        consumed = {t: sum(ends[(prefix + t, p)] for p in sorted(owners[i].get(t, set())))
                    for t in topics}  # fmt: skip
        per_worker.append(WorkerFigures(
            name=worker.data_dir.name, partitions=sorted(owners[i].get(PARTIALS, set())),
            cpu_seconds=cpu[i], cpu_share=cpu_share[i], idle_cpu_per_second=idle[i],
            state_keys=active[i].keys, state_bytes=active[i].bytes,
            state_disk_bytes=active[i].disk_bytes, keys_share=keys_share[i],
            bytes_share=bytes_share[i], standby_keys=standby[i].keys,
            standby_bytes=standby[i].bytes, state_by_table=active[i].tables,
            records_consumed=consumed,
        ))  # fmt: skip
    return ScaleRun(
        workers=len(workers),
        responses=len(traffic.response_messages),
        input_messages=len(traffic.response_messages) + len(traffic.dispatch_messages)
        + len(traffic.lifecycle_messages),
        produce_seconds=produce_seconds,
        drain_seconds=drain_seconds,
        exact=exact_error is None,
        exact_error=exact_error,
        exported_once=exact_error is None and exported_error is None,
        exported_error=exported_error,
        series=series,
        rebalanced=rebalanced,
        largest_cpu_share=max(cpu_share),
        largest_keys_share=max(keys_share),
        largest_bytes_share=max(bytes_share),
        per_worker=per_worker,
        stores=[asdict(s) for s in stores],
    )  # fmt: skip


def remove_state(workers: Sequence[Worker]) -> None:
    """Delete the workers' data dirs and logs (a bench run's state can be large)."""
    for worker in workers:
        shutil.rmtree(worker.data_dir, ignore_errors=True)
        if worker.log_path is not None:
            worker.log_path.unlink(missing_ok=True)
