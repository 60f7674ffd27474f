"""Read the KPI tables: rows per (window, segment), the /kpi endpoints and periodic snapshots."""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from faust.web import Request, Response, View

from stream.aggregation.buckets import AFTER, ALL_TIME, customer_window_sums, window_vectors
from stream.kpi import churn, report, sci
from stream.kpi import summary as s
from stream.kpi.segments import CHURN, Segment
from stream.kpi.windows import WINDOWS
from stream.pipeline.app import CxApp
from stream.pipeline.kpi_engine import KpiEngine

_encode = msgspec.json.Encoder().encode
log = logging.getLogger(__name__)


def kpi_rows(engine: KpiEngine, now: float) -> list[dict[str, Any]]:
    """Every (window, segment) this worker owns, with its KPIs and raw counts."""
    vectors = window_vectors(engine.owned_items(), now)
    for key, window in list(vectors):
        if window == ALL_TIME:  # churn is defined (maybe 0) in every window once customers exist
            for w in WINDOWS:
                vectors.setdefault((key, w.name), s.initialize())
    rows = []
    for (key, window), vector in sorted(vectors.items()):
        if window == ALL_TIME or window.endswith(AFTER):
            continue
        segment = Segment.parse(key)
        row: dict[str, Any] = {"window": window, "kind": segment.kind}
        if segment.kind == CHURN:
            total = vectors.get((key, ALL_TIME), s.initialize())
            result = churn.churn(vector, total, vectors.get((key, window + AFTER)))
            row["kpis"] = (
                {
                    "churn_ratio": result.ratio,
                    "churn_cancelled": result.cancelled,
                    "churn_active_at_start": result.active_at_start,
                }
                if result
                else {}
            )
        else:
            if segment.kind == "q":
                row |= {"channel": segment.channel, "queue": segment.queue}
            else:
                row["agent_id"] = segment.agent_id
            row["kpis"] = report.kpis(vector)
        row["vector"] = vector
        rows.append(row)
    return rows + sci_rows(engine, now)


def sci_rows(engine: KpiEngine, now: float) -> list[dict[str, Any]]:
    """SCI per window over the customers of the partitions this worker owns."""
    rows = []
    for window, customers in customer_window_sums(engine.owned_items(customers=True), now).items():
        result = sci.sci((total, n) for total, n in customers.values())
        if result is None:
            continue
        kpis: dict[str, float] = {
            f"sci_customers_{band}": n for band, n in result.customers.items()
        }
        kpis["sci_secure_ratio"] = result.secure_ratio
        rows.append({"window": window, "kind": "sci", "kpis": kpis, "vector": []})
    return rows


def register_kpi_views(app: CxApp, engine: KpiEngine) -> None:
    @app.page("/kpi")
    class Kpi(View):
        async def get(self, request: Request) -> Response:
            query = request.query
            window = query.get("window", "1h")
            channel, queue = query.get("channel", "all"), query.get("queue", "all")
            now = float(query.get("at", time.time()))
            for row in kpi_rows(engine, now):
                if (
                    row["window"] == window
                    and row.get("channel") == channel
                    and row.get("queue") == queue
                ):
                    return self.json({k: v for k, v in row.items() if k != "vector"})
            return self.json(
                {"error": "no responses in this window and segment on this worker"}, status=404
            )

    @app.page("/kpi/all")
    class KpiAll(View):
        async def get(self, request: Request) -> Response:
            now = float(request.query.get("at", time.time()))
            return self.json({"at": now, "rows": kpi_rows(engine, now)})

    _ = (Kpi, KpiAll)

    snapshots = app.topics_by_name[app.names.snapshots]

    @app.timer(interval=app.settings.snapshot_interval)
    async def publish_snapshots() -> None:
        now = time.time()
        try:
            rows = kpi_rows(engine, now)
        except Exception:  # a timer that raises stops the whole app; a missed snapshot does not
            log.exception("KPI snapshot failed")
            return
        for row in rows:
            row.pop("vector")
            row["at"] = now
            key = "|".join(str(row.get(k, "")) for k in ("window", "kind", "channel", "queue"))
            await snapshots.send(key=key.encode(), value=_encode(row))

    _ = publish_snapshots
