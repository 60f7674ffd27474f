"""The read model: one row per (window, segment) a worker serves, with its KPIs.

/metrics, /kpi, /kpi/all, /kpi/agents, /kpi/queues and the snapshots all read these rows.
A row's `kpis` are keyed by metric name without the cx_ prefix (stream.kpi.catalogue) and
leave out a KPI without answers; `vector` is the summary vector they are computed from
(empty for churn and SCI rows, whose KPIs are given: they are not functions of one vector).

A row built from a vector computes its KPIs when first read: /metrics reads the KPIs of the
top-K queues of a channel only, and folds the rest by their vectors, so a flood of queue
names costs the scrape one summary per name, not every KPI of every name.
"""

from __future__ import annotations

from typing import Any, Literal

from stream.kpi import report

RowKind = Literal["q", "a", "churn", "sci"]  # channel x queue, agent, churn, SCI bands


class KpiRow:
    __slots__ = ("_kpis", "agent_id", "channel", "kind", "queue", "vector", "window")

    def __init__(
        self,
        window: str,
        kind: RowKind,
        kpis: dict[str, float] | None = None,
        vector: list[float] | None = None,
        *,
        channel: str | None = None,  # kind "q"
        queue: str | None = None,  # kind "q"
        agent_id: str | None = None,  # kind "a"
    ) -> None:
        self.window = window
        self.kind = kind
        self._kpis = kpis
        self.vector: list[float] = vector if vector is not None else []
        self.channel = channel
        self.queue = queue
        self.agent_id = agent_id

    @property
    def kpis(self) -> dict[str, float]:
        if self._kpis is None:
            self._kpis = report.kpis(self.vector)
        return self._kpis

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

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KpiRow) and self.as_dict() == other.as_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"KpiRow({self.as_dict(vector=False)!r})"
