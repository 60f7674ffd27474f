"""A prometheus_client collector that turns KPI rows into the contract's gauges at scrape time.

It holds no state: each scrape asks `rows()` for the (window, segment) rows the worker owns
now, so after a rebalance a worker stops exporting what it no longer owns. Agent-level KPIs
are capped to the `top_k` agents by volume in each window, and queue-level KPIs to the
`queue_top_k` queues by volume in each (window, channel); the others are merged into
agent_id="other" / queue="other" (their summary vectors are added, then the KPIs computed),
together with what the state already folded into "other". Label cardinality stays bounded
whatever the traffic: at most (top_k + 1) agent series per window and gauge, and
(queue_top_k + 2) queue series (with queue="all") per window, channel and gauge.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

import numpy as np
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from stream.aggregation.group_sums import MemberBucket, ranked
from stream.kpi import catalogue, report, summary
from stream.kpi.rows import KpiRow
from stream.kpi.segments import ALL, OTHER

QueueMembers = tuple[str, str, MemberBucket]  # window, channel, its queues

# Agent gauge name -> the KPI it exports, with its help text.
AGENT_GAUGES = {
    g.name: (g.agent_metric, f"{g.help} Per agent: the top agents by volume, the rest as 'other'.")
    for g in catalogue.AGENT_GAUGES
}


class KpiCollector(Collector):
    def __init__(
        self,
        rows: Callable[[], list[KpiRow]],
        top_k: int = 100,
        queue_top_k: int = 50,
        agent_rows: Callable[[], list[KpiRow]] | None = None,
        queue_members: Callable[[], Iterable[QueueMembers]] | None = None,
    ) -> None:
        self.rows = rows
        # The queues of each (window, channel) as arrays (stream.aggregation.group_sums),
        # besides any queue rows in `rows`: a flood of queue names costs a scrape a sort of
        # their counts, not a row per name.
        self.queue_members = queue_members
        # Agents spread over partitions: their gauges come from the final step's merged
        # candidates (stream.pipeline.kpi_parts), not from this worker's own agents.
        self.agent_rows = agent_rows
        self.top_k = top_k
        self.queue_top_k = queue_top_k

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = self.rows()
        agents = self.agent_rows() if self.agent_rows is not None else rows
        yield from self._segment_gauges([r for r in rows if r.kind == "q"])
        yield from self._agent_gauges([r for r in agents if r.kind == "a"])
        yield from self._churn_and_sci(rows)

    def _segment_gauges(self, rows: list[KpiRow]) -> Iterator[GaugeMetricFamily]:
        labels = ["window", "channel", "queue"]
        families = {
            g.name: GaugeMetricFamily(f"cx_{g.name}", g.help, labels=labels)
            for g in catalogue.SEGMENT_GAUGES
        }
        by_window: dict[tuple[str, str], list[KpiRow]] = defaultdict(list)
        for row in rows:
            channel = row.channel or ALL
            if row.queue == ALL:
                self._add(families, [row.window, channel, ALL], row.kpis)
            else:
                by_window[(row.window, channel)].append(row)
        for (window, channel), queues in by_window.items():
            for queue, kpis in fold(queues, self.queue_top_k):
                self._add(families, [window, channel, queue], kpis)
        for window, channel, members in self.queue_members() if self.queue_members else ():
            for queue, kpis in fold_members(members, self.queue_top_k):
                self._add(families, [window, channel or ALL, queue], kpis)
        yield from (family for family in families.values() if family.samples)

    @staticmethod
    def _add(
        families: dict[str, GaugeMetricFamily], labels: list[str], kpis: dict[str, float]
    ) -> None:
        for name, value in kpis.items():
            if name in families:
                families[name].add_metric(labels, value)

    def _agent_gauges(self, rows: list[KpiRow]) -> Iterator[GaugeMetricFamily]:
        families = {
            kpi: GaugeMetricFamily(name, text, labels=["window", "agent_id"])
            for kpi, (name, text) in AGENT_GAUGES.items()
        }
        by_window: dict[str, list[KpiRow]] = defaultdict(list)
        for row in rows:
            by_window[row.window].append(row)
        for window, agents in by_window.items():
            for agent_id, kpis in fold(agents, self.top_k):
                for kpi, family in families.items():
                    if kpi in kpis:
                        family.add_metric([window, agent_id], kpis[kpi])
        yield from (family for family in families.values() if family.samples)

    def _churn_and_sci(self, rows: list[KpiRow]) -> Iterator[GaugeMetricFamily]:
        def family(gauge: catalogue.Gauge, *labels: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"cx_{gauge.name}", gauge.help, labels=list(labels))

        churn = family(catalogue.CHURN_RATIO, "window")
        customers = family(catalogue.SCI_CUSTOMERS, "window", "band")
        secure = family(catalogue.SCI_SECURE_RATIO, "window")
        for row in rows:
            if row.kind == "churn" and "churn_ratio" in row.kpis:
                churn.add_metric([row.window], row.kpis["churn_ratio"])
            elif row.kind == "sci":
                kpis = row.kpis
                for band in catalogue.SCI_BANDS:
                    customers.add_metric([row.window, band], kpis[f"sci_customers_{band}"])
                secure.add_metric([row.window], kpis["sci_secure_ratio"])
        yield from (family for family in (churn, customers, secure) if family.samples)


def fold_members(members: MemberBucket, top_k: int) -> Iterator[tuple[str, dict[str, float]]]:
    """The top_k members by responses (ties by name), then every other member (and "other"
    itself) merged as "other"."""
    top, rest = ranked(members, top_k)
    for i in top:
        yield members.names[i], report.kpis(members.matrix[i].tolist())
    if rest:
        # Rows summed in order along axis 0, as a loop over them would.
        yield OTHER, report.kpis(members.matrix[rest].sum(axis=0).tolist())


def fold(rows: list[KpiRow], top_k: int) -> Iterator[tuple[str, dict[str, float]]]:
    """`fold_members` of rows (one member per row)."""
    matrix = np.array([r.vector for r in rows], dtype=np.float64).reshape(len(rows), summary.SIZE)
    return fold_members(MemberBucket([r.label for r in rows], matrix), top_k)
