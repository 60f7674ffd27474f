"""The read model: one row per (window, segment) a worker serves, with its KPIs.

/metrics, /kpi, /kpi/all, /kpi/agents, /kpi/queues and the snapshots all read these rows.
A row's `kpis` are keyed by metric name without the cx_ prefix (stream.kpi.catalogue) and
leave out a KPI without answers; `vector` is the summary vector they were computed from
(empty for churn and SCI rows, whose KPIs are not functions of one summary vector).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

RowKind = Literal["q", "a", "churn", "sci"]  # channel x queue, agent, churn, SCI bands


class KpiRow(msgspec.Struct, frozen=True):
    window: str
    kind: RowKind
    kpis: dict[str, float]
    vector: list[float] = msgspec.field(default_factory=list)
    channel: str | None = None  # kind "q"
    queue: str | None = None  # kind "q"
    agent_id: str | None = None  # kind "a"

    @property
    def label(self) -> str:
        """The agent's id or the queue's name (what a ranking or a fold names the row by)."""
        return self.agent_id or self.queue or ""

    def as_dict(self, vector: bool = True) -> dict[str, Any]:
        """The row as JSON shows it: its segment's fields only, `vector` when asked."""
        out: dict[str, Any] = {"window": self.window, "kind": self.kind}
        for name in ("channel", "queue", "agent_id"):
            if (value := getattr(self, name)) is not None:
                out[name] = value
        out["kpis"] = self.kpis
        if vector:
            out["vector"] = self.vector
        return out
