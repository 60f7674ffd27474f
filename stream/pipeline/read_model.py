"""The read model: one immutable snapshot of every KPI row this worker serves.

A timer rebuilds it every `CX_READ_REFRESH_SECONDS` from the incremental readers (KpiReader:
only the segments a stage-2 batch changed, every segment at a window edge; KpiParts: the
merged agents and SCI), passing the event loop's turn between agent groups. /metrics, /kpi,
/kpi/all, /kpi/agents, /kpi/queues and the snapshot topic read the current snapshot: no
request recomputes state, so a request costs the same whatever the state's size, and what one
scrape shows is one consistent moment (`at`). `?at=EPOCH` asks for another time than the
snapshot's: it is computed for that request, as before.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from stream.aggregation.buckets import AFTER, ALL_TIME, parse_key, window_vectors
from stream.aggregation.messages import BucketState
from stream.kpi import churn, report
from stream.kpi import summary as s
from stream.kpi.rows import KpiRow
from stream.kpi.segments import CHURN, Segment
from stream.kpi.windows import WINDOWS
from stream.pipeline.app import CxApp
from stream.pipeline.batches import pass_turn
from stream.pipeline.kpi_engine import KpiEngine
from stream.pipeline.kpi_parts import KpiParts

log = logging.getLogger(__name__)


def kpi_rows(engine: KpiEngine, parts: KpiParts, now: float) -> list[KpiRow]:
    """Every (window, segment) this worker serves at `now`, with its KPIs and raw counts."""
    return segment_rows(engine, now) + parts.sci_rows(now, fresh=True)


def segment_rows(
    engine: KpiEngine, now: float, items: Iterable[tuple[bytes, BucketState]] | None = None
) -> list[KpiRow]:
    """The rows of every segment but customers (`items`: of these bucket states only): the
    queues' and agents' of the partitions this worker owns, and churn."""
    vectors = window_vectors(engine.owned_items() if items is None else items, now)
    for key, window in list(vectors):
        if window == ALL_TIME:  # churn is defined (maybe 0) in every window once customers exist
            for w in WINDOWS:
                vectors.setdefault((key, w.name), s.initialize())
    rows = []
    for (key, window), vector in sorted(vectors.items()):
        if window == ALL_TIME or window.endswith(AFTER):
            continue
        segment = Segment.parse(key)
        if segment.kind == CHURN:
            total = vectors.get((key, ALL_TIME), s.initialize())
            result = churn.churn(vector, total, vectors.get((key, window + AFTER)))
            rows.append(KpiRow(window, "churn", report.churn_kpis(result), vector))
        elif segment.kind == "q":
            rows.append(KpiRow(window, "q", None, vector,
                               channel=segment.channel, queue=segment.queue))  # fmt: skip
        else:
            rows.append(KpiRow(window, "a", None, vector,
                               agent_id=segment.agent_id))  # fmt: skip
    return rows


def _is_agents(stored_segment: str) -> bool:
    return stored_segment.startswith("a|")


class KpiReader:
    """`kpi_rows` at the current time, kept up to date as batches land.

    Rows depend on the time only through each window's current bucket (window edges fall on
    bucket boundaries). Between two edges only the segments a stage-2 batch changed are
    computed again (the engine reports the keys it wrote, `mark`); at an edge, or when the
    owned partitions change, every segment is. So a build costs O(series), plus the
    changed segments' buckets. The SCI rows come merged from every partition's part
    (stream.pipeline.kpi_parts), which caches per partition the same way.
    """

    def __init__(self, engine: KpiEngine, parts: KpiParts) -> None:
        self.engine = engine
        self.parts = parts
        self._edges: object = None
        self._keys: dict[str, set[bytes]] = defaultdict(set)  # stored segment -> bucket keys
        self._rows: dict[str, list[KpiRow]] = {}  # stored segment -> its rows
        self._dirty: set[str] = set()
        engine.listeners.append(self.mark)

    def mark(self, partition: int, keys: Iterable[bytes]) -> None:
        """Bucket keys a batch wrote: their segments' rows are computed again when read."""
        for key in keys:
            if key.startswith(b"c|"):
                continue  # customers: see KpiParts
            try:
                segment = parse_key(key)[0]
            except ValueError:
                continue
            self._keys[segment].add(key)
            self._dirty.add(segment)

    async def rows(self, now: float) -> list[KpiRow]:
        """Every row at `now`: the changed segments' computed again, one at a time between
        turns of the event loop."""
        edges = (frozenset(self.engine.owned_partitions()), tuple(w.bucket(now) for w in WINDOWS))
        if edges != self._edges:
            self._edges = edges
            self._keys.clear()
            self._rows.clear()
            for key, _ in self.engine.owned_items():
                self.mark(-1, [key])
        for segment in sorted(self._dirty):
            await pass_turn()  # a group can hold thousands of members' vectors per bucket
            if segment in self._dirty:  # (not refreshed meanwhile)
                self._refresh(segment, now)
                self._dirty.discard(segment)
        # What batches changed during those turns, with no turn from here on: the rows (and
        # the parts the caller reads next) are then all of one moment.
        for segment in sorted(self._dirty):
            self._refresh(segment, now)
        self._dirty.clear()
        rows = [row for segment in sorted(self._rows) for row in self._rows[segment]]
        return rows + self.parts.sci_rows(now)

    def _refresh(self, segment: str, now: float) -> None:
        keys = sorted(self._keys[segment])
        states = self.engine.buckets.get_many(0, keys)  # memory store: any partition
        items = [(k, state) for k, state in zip(keys, states, strict=True) if state]
        self._keys[segment] = {k for k, _ in items}
        rows = segment_rows(self.engine, now, items)
        if rows:
            self._rows[segment] = rows
        else:
            self._rows.pop(segment, None)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every row at `at`: `rows` (queues, every agent of the owned partitions, churn, SCI)
    and, on the final partition's owner, `top_agents` (the merged candidates /metrics folds
    into the top K agents)."""

    at: float
    rows: tuple[KpiRow, ...]
    top_agents: tuple[KpiRow, ...]
    built: bool = True  # False: the empty snapshot before the first build

    @property
    def exported(self) -> list[KpiRow]:
        """What /metrics exports from `rows`: all but the agents' own (see `top_agents`)."""
        return [row for row in self.rows if row.kind != "a"]


class ReadModel:
    def __init__(self, app: CxApp, reader: KpiReader) -> None:
        self.reader = reader
        self.snapshot = Snapshot(0.0, (), (), built=False)
        app.timer(interval=app.settings.read_refresh_seconds)(self.refresh)

    async def refresh(self) -> None:
        """Build the next snapshot (a timer: one that raises would stop the app)."""
        try:
            self.snapshot = await self.build(time.time())
        except Exception:
            log.exception("building the KPI snapshot failed; the previous one stays")

    def snapshot_at(self) -> float | None:
        """The current snapshot's time; None before the first build."""
        return self.snapshot.at if self.snapshot.built else None

    async def build(self, now: float) -> Snapshot:
        await self.reader.parts.refresh_own(now)
        rows = await self.reader.rows(now)  # no turn of the loop from its last step to here
        top_agents = self.reader.parts.agent_rows(now)
        return Snapshot(now, tuple(rows), tuple(top_agents))
