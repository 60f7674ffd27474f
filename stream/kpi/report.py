"""Every KPI of one summary vector, keyed by its metric name (without the cx_ prefix).

A KPI with no answers is left out, so exporters and snapshots show it as absent, not 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from stream.kpi import acsi, ces, csat, csi, nps, ratios


def kpis(vector: Sequence[float]) -> dict[str, float]:
    out: dict[str, float] = {}
    if (n := nps.nps(vector)) is not None:
        out |= {
            "nps": n.value,
            "nps_lower": n.lower,
            "nps_upper": n.upper,
            "nps_responses": n.responses,
            "nps_promoters": n.promoters,
            "nps_passives": n.passives,
            "nps_detractors": n.detractors,
        }
    if (c := csat.csat(vector)) is not None:
        out |= {
            "csat_top_box_ratio": c.top_box_ratio,
            "csat_top2_box_ratio": c.top2_box_ratio,
            "csat_top2_box_lower": c.top2_box_lower,
            "csat_top2_box_upper": c.top2_box_upper,
            "csat_responses": c.responses,
        }
    if (e := ces.ces(vector)) is not None:
        out |= {
            "ces_average": e.average,
            "ces_agree_ratio": e.agree_ratio,
            "ces_responses": e.responses,
        }
    optional = {
        "thumbs_up_ratio": ratios.thumbs_up_ratio(vector),
        "csi": csi.csi(vector),
        "acsi_index": acsi.acsi(vector),
        "response_ratio": ratios.response_ratio(vector),
    }
    out |= {name: value for name, value in optional.items() if value is not None}
    return out
