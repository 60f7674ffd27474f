"""The catalogue of KPIs: for each, the summary slots it reads, the values it yields from a
summary vector, their metric names and help texts. Everything that lists KPIs reads it: the
rows' `kpis` (stream.kpi.report), the exporter's gauges, the per-agent gauges.

Adding a KPI: give it slots at the end of the summary layout (stream.kpi.summary, whose
layout version says how stored vectors are read), a contribution and a formula in its own
module, and one `Kpi` here. Nothing else lists KPIs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stream.kpi import acsi, ces, csat, csi, nps, ratios, sci
from stream.kpi import summary as s


@dataclass(frozen=True)
class Gauge:
    """One value of a KPI: its metric name without the cx_ prefix (the key in a row's kpis)."""

    name: str
    help: str
    per_agent: bool = False  # also exported per agent, as cx_agent_<name>

    @property
    def agent_metric(self) -> str:
        return f"cx_agent_{self.name}"


@dataclass(frozen=True)
class Kpi:
    name: str
    slots: tuple[int, ...]  # the summary slots its values are computed from
    values: Callable[[Sequence[float]], Sequence[float] | None]  # one per gauge; None: no answers
    gauges: tuple[Gauge, ...]

    def of(self, vector: Sequence[float]) -> dict[str, float]:
        values = self.values(vector)
        if values is None:
            return {}
        return {gauge.name: value for gauge, value in zip(self.gauges, values, strict=True)}


def _block(start: int, size: int) -> tuple[int, ...]:
    return tuple(range(start, start + size))


def _nps(vector: Sequence[float]) -> Sequence[float] | None:
    n = nps.nps(vector)
    if n is None:
        return None
    return (n.value, n.lower, n.upper, n.responses, n.promoters, n.passives, n.detractors)


def _csat(vector: Sequence[float]) -> Sequence[float] | None:
    c = csat.csat(vector)
    if c is None:
        return None
    return (c.top_box_ratio, c.top2_box_ratio, c.top2_box_lower, c.top2_box_upper, c.responses)


def _ces(vector: Sequence[float]) -> Sequence[float] | None:
    e = ces.ces(vector)
    return None if e is None else (e.average, e.agree_ratio, e.responses)


Formula = Callable[[Sequence[float]], float | None]


def _one(formula: Formula) -> Callable[[Sequence[float]], Sequence[float] | None]:
    def values(vector: Sequence[float]) -> Sequence[float] | None:
        value = formula(vector)
        return None if value is None else (value,)

    return values


KPIS: tuple[Kpi, ...] = (
    Kpi("nps", _block(s.NPS, 11), _nps, (
        Gauge("nps", "Net Promoter Score, -100..100.", per_agent=True),
        Gauge("nps_lower", "Lower bound of the NPS 95% adjusted-Wald interval."),
        Gauge("nps_upper", "Upper bound of the NPS 95% adjusted-Wald interval."),
        Gauge("nps_responses", "Answers to the NPS question in the window.", per_agent=True),
        Gauge("nps_promoters", "NPS answers 9-10."),
        Gauge("nps_passives", "NPS answers 7-8."),
        Gauge("nps_detractors", "NPS answers 0-6."),
    )),
    Kpi("csat", _block(s.CSAT, 5), _csat, (
        Gauge("csat_top_box_ratio", "Share of CSAT answers equal to 5."),
        Gauge("csat_top2_box_ratio", "Share of CSAT answers of 4 or 5.", per_agent=True),
        Gauge("csat_top2_box_lower", "Lower bound of the top-2-box 95% Wilson interval."),
        Gauge("csat_top2_box_upper", "Upper bound of the top-2-box 95% Wilson interval."),
        Gauge("csat_responses", "Answers to the CSAT question in the window.", per_agent=True),
    )),
    Kpi("ces", _block(s.CES, 7), _ces, (
        Gauge("ces_average", "Mean CES answer, 1..7 (higher is easier)."),
        Gauge("ces_agree_ratio", "Share of CES answers of 5 or more."),
        Gauge("ces_responses", "Answers to the CES question in the window."),
    )),
    Kpi("thumbs", (s.THUMBS_N, s.THUMBS_UP), _one(ratios.thumbs_up_ratio), (
        Gauge("thumbs_up_ratio", "Share of thumbs-up answers."),
    )),
    Kpi("csi", (s.CSI_N, s.CSI_SUM), _one(csi.csi), (
        Gauge("csi", "Customer Satisfaction Index: mean of sum_j w_j (perceived_j - expected_j)."),
    )),
    Kpi("acsi", (s.ACSI_N, s.ACSI_SUM), _one(acsi.acsi), (
        Gauge("acsi_index", "ACSI-style satisfaction index, 0..100."),
    )),
    Kpi("response_ratio", (s.N, s.DISPATCHES), _one(ratios.response_ratio), (
        Gauge("response_ratio", "Responses / dispatched surveys in the window."),
    )),
)  # fmt: skip

# The channel x queue gauges, in the catalogue's order, and the per-agent ones.
SEGMENT_GAUGES: tuple[Gauge, ...] = tuple(g for kpi in KPIS for g in kpi.gauges)
AGENT_GAUGES: tuple[Gauge, ...] = tuple(g for g in SEGMENT_GAUGES if g.per_agent)

# KPIs that are not a function of one summary vector (stream.kpi.churn, stream.kpi.sci).
CHURN_RATIO = Gauge("churn_ratio", "Customers cancelled in the window / active at its start.")
SCI_CUSTOMERS = Gauge("sci_customers", "Customers with answers in the window, by SCI band.")
SCI_SECURE_RATIO = Gauge("sci_secure_ratio", "Share of customers in the secure SCI band.")
SCI_BANDS = sci.BANDS
