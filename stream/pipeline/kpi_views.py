"""The /kpi endpoints and the periodic snapshots on cx.kpi.snapshots, read from the read model
(stream/pipeline/read_model.py); only `?at=EPOCH` computes rows for its request."""

from __future__ import annotations

import logging

import msgspec
from faust.web import Request, Response, View

from stream.kpi.rows import KpiRow
from stream.pipeline.app import CxApp
from stream.pipeline.batches import pass_turn
from stream.pipeline.health import table_recovery
from stream.pipeline.kpi_engine import KpiEngine
from stream.pipeline.queries import (
    At,
    QueryError,
    QueueRankingQuery,
    RankingQuery,
    SegmentQuery,
    parse,
    ranking,
)
from stream.pipeline.read_model import ReadModel, kpi_rows

_encode = msgspec.json.Encoder().encode
SNAPSHOT_TURN = 1000  # records of the snapshot topic sent between two turns of the event loop
log = logging.getLogger(__name__)


def register_kpi_views(app: CxApp, engine: KpiEngine, model: ReadModel) -> None:
    async def rows_at(at: float | None) -> tuple[float, list[KpiRow]]:
        if at is not None:
            return at, kpi_rows(engine, model.reader.parts, at)
        snapshot = model.snapshot
        return snapshot.at, list(await snapshot.made_rows())

    def refused(view: View, error: QueryError) -> Response:
        return view.json(error.body, status=400)

    @app.page("/kpi")
    class Kpi(View):
        async def get(self, request: Request) -> Response:
            try:
                query = parse(SegmentQuery, dict(request.query))
            except QueryError as error:
                return refused(self, error)
            if query.at is None:
                found = model.snapshot.row(query.window, query.channel, query.queue)
            else:
                _, rows = await rows_at(query.at)
                found = next((row for row in rows if (row.window, row.channel, row.queue)
                              == (query.window, query.channel, query.queue)), None)  # fmt: skip
            if found is not None:
                return self.json(found.as_dict(vector=False))
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
            now, rows = await rows_at(query.at)
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
            now, rows = await rows_at(query.at)
            return self.json({"at": now, "rows": ranking(rows, query, "a")})

    @app.page("/kpi/queues")
    class KpiQueues(View):
        async def get(self, request: Request) -> Response:
            try:
                query = parse(QueueRankingQuery, dict(request.query))
            except QueryError as error:
                return refused(self, error)
            now, rows = await rows_at(query.at)
            return self.json({"at": now, "rows": ranking(rows, query, "q", query.channel)})

    _ = (Kpi, KpiAll, KpiAgents, KpiQueues)

    snapshots = app.topics_by_name[app.names.snapshots]

    @app.timer(interval=app.settings.snapshot_interval)
    async def publish_snapshots() -> None:
        snapshot = model.snapshot
        if not snapshot.built:
            return
        try:
            for i, row in enumerate(await snapshot.made_rows()):
                if i % SNAPSHOT_TURN == SNAPSHOT_TURN - 1:
                    await pass_turn()  # a flood of names: tens of thousands of segments
                key = "|".join((row.window, row.kind, row.channel or "", row.queue or ""))
                value = row.as_dict(vector=False) | {"at": snapshot.at}
                await snapshots.send(key=key.encode(), value=_encode(value))
        except Exception:  # a timer that raises stops the whole app; a missed snapshot does not
            # (e.g. the producer already stopped while the worker shuts down)
            log.exception("KPI snapshot failed")

    _ = publish_snapshots
