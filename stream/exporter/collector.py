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
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from stream.kpi import report, summary
from stream.kpi.segments import ALL, OTHER

# Contract metric -> help text, for the channel/queue KPI gauges (name without the cx_ prefix).
SEGMENT_GAUGES = {
    "nps": "Net Promoter Score, -100..100.",
    "nps_lower": "Lower bound of the NPS 95% adjusted-Wald interval.",
    "nps_upper": "Upper bound of the NPS 95% adjusted-Wald interval.",
    "nps_responses": "Answers to the NPS question in the window.",
    "nps_promoters": "NPS answers 9-10.",
    "nps_passives": "NPS answers 7-8.",
    "nps_detractors": "NPS answers 0-6.",
    "csat_top_box_ratio": "Share of CSAT answers equal to 5.",
    "csat_top2_box_ratio": "Share of CSAT answers of 4 or 5.",
    "csat_top2_box_lower": "Lower bound of the top-2-box 95% Wilson interval.",
    "csat_top2_box_upper": "Upper bound of the top-2-box 95% Wilson interval.",
    "csat_responses": "Answers to the CSAT question in the window.",
    "ces_average": "Mean CES answer, 1..7 (higher is easier).",
    "ces_agree_ratio": "Share of CES answers of 5 or more.",
    "ces_responses": "Answers to the CES question in the window.",
    "thumbs_up_ratio": "Share of thumbs-up answers.",
    "csi": "Customer Satisfaction Index: mean of sum_j w_j (perceived_j - expected_j).",
    "acsi_index": "ACSI-style satisfaction index, 0..100.",
    "response_ratio": "Responses / dispatched surveys in the window.",
}
AGENT_GAUGES = {
    "nps": ("cx_agent_nps", "NPS of one agent (top agents by volume; the rest as 'other')."),
    "csat_top2_box_ratio": (
        "cx_agent_csat_top2_box_ratio",
        "CSAT top-2-box ratio of one agent (top agents by volume; the rest as 'other').",
    ),
    "nps_responses": ("cx_agent_nps_responses", "NPS answers of one agent in the window."),
    "csat_responses": ("cx_agent_csat_responses", "CSAT answers of one agent in the window."),
}
Row = dict[str, Any]


class KpiCollector(Collector):
    def __init__(
        self,
        rows: Callable[[], list[Row]],
        top_k: int = 100,
        queue_top_k: int = 50,
        agent_rows: Callable[[], list[Row]] | None = None,
    ) -> None:
        self.rows = rows
        # Agents spread over partitions: their gauges come from the final step's merged
        # candidates (stream.pipeline.kpi_parts), not from this worker's own agents.
        self.agent_rows = agent_rows
        self.top_k = top_k
        self.queue_top_k = queue_top_k

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = self.rows()
        agents = self.agent_rows() if self.agent_rows is not None else rows
        yield from self._segment_gauges([r for r in rows if r["kind"] == "q"])
        yield from self._agent_gauges([r for r in agents if r["kind"] == "a"])
        yield from self._churn_and_sci(rows)

    def _segment_gauges(self, rows: list[Row]) -> Iterator[GaugeMetricFamily]:
        labels = ["window", "channel", "queue"]
        families = {
            name: GaugeMetricFamily(f"cx_{name}", text, labels=labels)
            for name, text in SEGMENT_GAUGES.items()
        }
        by_window: dict[tuple[str, str], list[Row]] = defaultdict(list)
        for row in rows:
            if row["queue"] == ALL:
                self._add(families, [row["window"], row["channel"], ALL], row["kpis"])
            else:
                by_window[(row["window"], row["channel"])].append(row)
        for (window, channel), queues in by_window.items():
            for queue, kpis in fold(queues, "queue", self.queue_top_k):
                self._add(families, [window, channel, queue], kpis)
        yield from (family for family in families.values() if family.samples)

    @staticmethod
    def _add(families: dict[str, GaugeMetricFamily], labels: list[str], kpis: Row) -> None:
        for name, value in kpis.items():
            if name in families:
                families[name].add_metric(labels, value)

    def _agent_gauges(self, rows: list[Row]) -> Iterator[GaugeMetricFamily]:
        families = {
            kpi: GaugeMetricFamily(name, text, labels=["window", "agent_id"])
            for kpi, (name, text) in AGENT_GAUGES.items()
        }
        by_window: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            by_window[row["window"]].append(row)
        for window, agents in by_window.items():
            for agent_id, kpis in fold(agents, "agent_id", self.top_k):
                for kpi, family in families.items():
                    if kpi in kpis:
                        family.add_metric([window, agent_id], kpis[kpi])
        yield from (family for family in families.values() if family.samples)

    def _churn_and_sci(self, rows: list[Row]) -> Iterator[GaugeMetricFamily]:
        churn = GaugeMetricFamily(
            "cx_churn_ratio", "Customers cancelled in the window / active at its start.",
            labels=["window"],
        )  # fmt: skip
        customers = GaugeMetricFamily(
            "cx_sci_customers", "Customers with answers in the window, by SCI band.",
            labels=["window", "band"],
        )  # fmt: skip
        secure = GaugeMetricFamily(
            "cx_sci_secure_ratio", "Share of customers in the secure SCI band.", labels=["window"]
        )
        for row in rows:
            kpis, window = row["kpis"], row["window"]
            if row["kind"] == "churn" and "churn_ratio" in kpis:
                churn.add_metric([window], kpis["churn_ratio"])
            elif row["kind"] == "sci":
                for band in ("secure", "neutral", "at_risk"):
                    customers.add_metric([window, band], kpis[f"sci_customers_{band}"])
                secure.add_metric([window], kpis["sci_secure_ratio"])
        yield from (family for family in (churn, customers, secure) if family.samples)


def fold(rows: list[Row], label: str, top_k: int) -> Iterator[tuple[str, dict[str, float]]]:
    """The top_k rows by responses, then every other row (and "other" itself) merged as "other"."""
    ranked = sorted(
        (r for r in rows if r[label] != OTHER), key=lambda r: (-r["vector"][summary.N], r[label])
    )
    for row in ranked[:top_k]:
        yield row[label], row["kpis"]
    rest = ranked[top_k:] + [r for r in rows if r[label] == OTHER]
    if rest:
        yield OTHER, report.kpis(summary.merge_all(r["vector"] for r in rest))
