"""Read the KPI tables: rows per (window, segment), the /kpi endpoints and periodic snapshots."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable

import msgspec
from faust.web import Request, Response, View

from stream.aggregation.buckets import AFTER, ALL_TIME, parse_key, window_vectors
from stream.aggregation.messages import BucketState
from stream.kpi import churn, report
from stream.kpi import summary as s
from stream.kpi.rows import KpiRow
from stream.kpi.segments import CHURN, Segment
from stream.kpi.windows import WINDOWS
from stream.pipeline.app import CxApp
from stream.pipeline.batches import pass_turn
from stream.pipeline.health import table_recovery
from stream.pipeline.kpi_engine import KpiEngine
from stream.pipeline.kpi_parts import KpiParts
from stream.pipeline.queries import (
    At,
    QueryError,
    QueueRankingQuery,
    RankingQuery,
    SegmentQuery,
    parse,
    ranking,
)

_encode = msgspec.json.Encoder().encode
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
    owned partitions change, every segment is. So a scrape costs O(series), plus the
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

    def segment_rows(self, now: float, agents: bool = True) -> list[KpiRow]:
        """`agents=False` leaves the agents' own rows out, and their recomputation for later:
        /metrics exports agents from the final step's merged parts, and under a flood of
        agent ids their rows (one per agent, window and shard) cost seconds per scrape."""
        edges = (frozenset(self.engine.owned_partitions()), tuple(w.bucket(now) for w in WINDOWS))
        if edges != self._edges:
            self._edges = edges
            self._keys.clear()
            self._rows.clear()
            for key, _ in self.engine.owned_items():
                self.mark(-1, [key])
        due = self._dirty if agents else {s for s in self._dirty if not _is_agents(s)}
        for segment in due:
            self._refresh(segment, now)
        self._dirty -= due
        return self._cached(agents)

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

    def _cached(self, agents: bool) -> list[KpiRow]:
        return [
            row
            for segment in sorted(self._rows)
            if agents or not _is_agents(segment)
            for row in self._rows[segment]
        ]

    def rows(self, now: float | None = None, agents: bool = True) -> list[KpiRow]:
        now = time.time() if now is None else now
        return self.segment_rows(now, agents) + self.parts.sci_rows(now)

    async def rows_stepwise(self, now: float) -> list[KpiRow]:
        """`rows(now)`, with the agent groups recomputed one at a time between turns of the
        event loop (the snapshot timer: a group can hold thousands of agents' rows)."""
        rows = self.rows(now, agents=False)
        for segment in sorted(seg for seg in self._dirty if _is_agents(seg)):
            await pass_turn()
            if segment in self._dirty:  # not refreshed meanwhile by another reader
                self._refresh(segment, now)
                self._dirty.discard(segment)
        return rows + [
            row
            for segment in sorted(self._rows)
            if _is_agents(segment)
            for row in self._rows[segment]
        ]

    def exported_rows(self) -> list[KpiRow]:
        """What /metrics reads: every row but the agents' own (see `segment_rows`)."""
        return self.rows(agents=False)


def register_kpi_views(app: CxApp, engine: KpiEngine, reader: KpiReader) -> None:
    def rows_at(at: float | None) -> tuple[float, list[KpiRow]]:
        now = time.time() if at is None else at
        return now, kpi_rows(engine, reader.parts, now) if at is not None else reader.rows(now)

    def refused(view: View, error: QueryError) -> Response:
        return view.json(error.body, status=400)

    @app.page("/kpi")
    class Kpi(View):
        async def get(self, request: Request) -> Response:
            try:
                query = parse(SegmentQuery, dict(request.query))
            except QueryError as error:
                return refused(self, error)
            _, rows = rows_at(query.at)
            for row in rows:
                if (row.window, row.channel, row.queue) == (query.window, query.channel,
                                                            query.queue):  # fmt: skip
                    return self.json(row.as_dict(vector=False))
            recovery = table_recovery(app)
            if not recovery.done:  # say why nothing is there yet
                why = (
                    f"loading state: {recovery.recovered} of {recovery.total} partitions recovered"
                )
            else:
                why = "no responses in this window and segment on this worker"
            return self.json({"error": why}, status=404)

    @app.page("/kpi/all")
    class KpiAll(View):
        async def get(self, request: Request) -> Response:
            try:
                query = parse(At, dict(request.query))
            except QueryError as error:
                return refused(self, error)
            now, rows = rows_at(query.at)
            recovery = table_recovery(app)
            state = {"recovered": recovery.recovered, "total": recovery.total,
                     "done": recovery.done}  # fmt: skip
            return self.json({"at": now, "state": state, "rows": [r.as_dict() for r in rows]})

    @app.page("/kpi/agents")
    class KpiAgents(View):
        async def get(self, request: Request) -> Response:
            try:
                query = parse(RankingQuery, dict(request.query))
            except QueryError as error:
                return refused(self, error)
            now, rows = rows_at(query.at)
            return self.json({"at": now, "rows": ranking(rows, query, "a")})

    @app.page("/kpi/queues")
    class KpiQueues(View):
        async def get(self, request: Request) -> Response:
            try:
                query = parse(QueueRankingQuery, dict(request.query))
            except QueryError as error:
                return refused(self, error)
            now, rows = rows_at(query.at)
            return self.json({"at": now, "rows": ranking(rows, query, "q", query.channel)})

    _ = (Kpi, KpiAll, KpiAgents, KpiQueues)

    snapshots = app.topics_by_name[app.names.snapshots]

    @app.timer(interval=app.settings.snapshot_interval)
    async def publish_snapshots() -> None:
        now = time.time()
        try:
            for row in await reader.rows_stepwise(now):
                key = "|".join((row.window, row.kind, row.channel or "", row.queue or ""))
                value = row.as_dict(vector=False) | {"at": now}
                await snapshots.send(key=key.encode(), value=_encode(value))
        except Exception:  # a timer that raises stops the whole app; a missed snapshot does not
            # (e.g. the producer already stopped while the worker shuts down)
            log.exception("KPI snapshot failed")

    _ = publish_snapshots
