"""The contribution of one canonical response to a summary vector (see summary.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stream.kpi import acsi, ces, csat, csi, nps, ratios, sci
from stream.kpi import summary as s
from stream.models import SurveyResponse


def contribution(
    response: SurveyResponse,
    csi_weights: Mapping[str, float] | None = None,
    acsi_weights: Sequence[float] = acsi.EQUAL,
) -> s.Sparse:
    scores = response.scores
    sparse: s.Sparse = [s.N, 1]
    if scores.nps is not None:
        sparse += nps.contribution(scores.nps)
    if scores.csat is not None:
        sparse += csat.contribution(scores.csat)
    if scores.ces is not None:
        sparse += ces.contribution(scores.ces)
    if scores.thumbs is not None:
        sparse += ratios.thumbs_contribution(scores.thumbs)
    if scores.csi:
        ratings = {name: (r.perceived, r.expected) for name, r in scores.csi.items()}
        value = csi.response_csi(ratings, csi_weights)
        if value is not None:
            sparse += csi.contribution(value)
    if scores.acsi is not None:
        a = scores.acsi
        sparse += acsi.contribution(
            acsi.response_index(a.satisfaction, a.expectation, a.ideal, acsi_weights)
        )
    sparse += sci.contribution(scores.nps, scores.csat, scores.ces)
    return sparse
