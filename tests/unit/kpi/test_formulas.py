"""Exact KPI formulas (contract, section "KPIs") against values computed by hand."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from statistics import NormalDist

import pytest

from stream.kpi import acsi, ces, churn, csat, csi, nps, ratios, report, sci
from stream.kpi import response as response_kpi
from stream.kpi import summary as s
from stream.kpi.intervals import nps_adjusted_wald, wilson
from stream.models import Acsi, CsiRating, Scores, SurveyResponse

# The 97.5% quantile of the standard normal, computed independently of stream.kpi.intervals.
Z = NormalDist().inv_cdf(0.975)


def vector_of(contributions: Iterable[Sequence[float]]) -> s.Vector:
    vector = s.initialize()
    for sparse in contributions:
        s.add(vector, sparse)
    return vector


def nps_vector(scores: Sequence[int]) -> s.Vector:
    return vector_of(nps.contribution(score) for score in scores)


def response(scores: Scores, **fields: object) -> SurveyResponse:
    return SurveyResponse(
        response_id="r1",
        channel="web",
        occurred_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        scores=scores,
        **fields,  # type: ignore[arg-type]
    )


# -- NPS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "value", "counts"),
    [
        ([10, 9, 9, 7, 3], 40.0, (3, 1, 1)),  # 3 promoters, 1 passive, 1 detractor
        ([10], 100.0, (1, 0, 0)),
        ([0], -100.0, (0, 0, 1)),
        ([7, 8], 0.0, (0, 2, 0)),
        ([9, 6], 0.0, (1, 0, 1)),
        ([6, 6, 6, 10], -50.0, (1, 0, 3)),  # 6 is the highest detractor score
        ([8, 9, 0, 1, 2, 3, 4, 5], -62.5, (1, 1, 6)),  # 8 passive, 9 promoter
        (list(range(11)), 100 * (2 - 7) / 11, (2, 2, 7)),
    ],
)
def test_nps_value_and_counts(
    scores: list[int], value: float, counts: tuple[int, int, int]
) -> None:
    result = nps.nps(nps_vector(scores))
    assert result is not None
    assert result.value == pytest.approx(value, abs=1e-12)
    assert (result.promoters, result.passives, result.detractors) == counts
    assert result.responses == len(scores)


def test_nps_absent_without_answers() -> None:
    assert nps.nps(s.initialize()) is None


# Adjusted Wald, by hand: n' = n + 3, p = (P + 0.75)/n', d = (D + 0.75)/n', centre = p - d,
# variance = (p + d - centre^2)/n'; bounds = 100 * (centre -/+ z * sqrt(variance)).
HAND_WALD = [
    # 3 promoters, 1 passive, 1 detractor: n' = 8, p = 3.75/8 = 0.46875, d = 1.75/8 = 0.21875,
    # centre = 0.25, variance = (0.6875 - 0.0625)/8 = 0.078125.
    pytest.param([10, 9, 9, 7, 3], 0.25, 0.078125, id="3P-1N-1D"),
    # One promoter: n' = 4, p = 1.75/4 = 0.4375, d = 0.75/4 = 0.1875, centre = 0.25,
    # variance = (0.625 - 0.0625)/4 = 0.140625 (standard deviation exactly 0.375).
    pytest.param([10], 0.25, 0.140625, id="1P"),
    # Two passives: n' = 5, p = d = 0.75/5 = 0.15, centre = 0, variance = 0.3/5 = 0.06.
    pytest.param([7, 8], 0.0, 0.06, id="2N"),
    # 2 promoters, 4 detractors: n' = 9, p = 2.75/9, d = 4.75/9, centre = -2/9,
    # variance = (7.5/9 - 4/81)/9 = (67.5 - 4)/729 = 63.5/729.
    pytest.param([9, 10, 0, 3, 5, 6], -2 / 9, 63.5 / 729, id="2P-4D"),
]


@pytest.mark.parametrize(("scores", "centre", "variance"), HAND_WALD)
def test_nps_adjusted_wald_by_hand(scores: list[int], centre: float, variance: float) -> None:
    half = Z * math.sqrt(variance)
    result = nps.nps(nps_vector(scores))
    assert result is not None
    assert result.lower == pytest.approx(100 * (centre - half), abs=1e-9)
    assert result.upper == pytest.approx(100 * (centre + half), abs=1e-9)


def test_nps_adjusted_wald_single_promoter_literal() -> None:
    # 25 +/- 37.5 * 1.959964 = (-48.4986..., 98.4986...): the point estimate 100 is outside.
    lower, upper = nps_adjusted_wald(1, 0, 1)
    assert lower == pytest.approx(-48.49864942, abs=1e-6)
    assert upper == pytest.approx(98.49864942, abs=1e-6)


@pytest.mark.parametrize("sign", [1, -1])
def test_nps_interval_clipped_at_100(sign: int) -> None:
    # 20 promoters (or 20 detractors): n' = 23, centre = +/-20/23,
    # variance = (21.5/23 - (20/23)^2)/23 = 94.5/23^3; centre + z*sd = 1.0423 > 1 -> clipped.
    centre = 20 / 23
    half = Z * math.sqrt(94.5 / 23**3)
    assert centre + half > 1  # the unclipped bound lies outside [-1, 1]
    result = nps.nps(nps_vector([10 if sign > 0 else 0] * 20))
    assert result is not None
    assert result.value == 100 * sign
    if sign > 0:
        assert result.upper == 100.0
        assert result.lower == pytest.approx(100 * (centre - half), abs=1e-9)
    else:
        assert result.lower == -100.0
        assert result.upper == pytest.approx(-100 * (centre - half), abs=1e-9)


# -- CSAT --------------------------------------------------------------------------------------


def textbook_wilson(x: int, n: int) -> tuple[float, float]:
    """Wilson score interval in its (x + z^2/2 +/- z sqrt(x(n-x)/n + z^2/4)) / (n + z^2) form."""
    z2 = Z * Z
    half = Z * math.sqrt(x * (n - x) / n + z2 / 4)
    return (x + z2 / 2 - half) / (n + z2), (x + z2 / 2 + half) / (n + z2)


@pytest.mark.parametrize(
    ("scores", "top", "top2", "top2_count"),
    [
        ([5, 5, 4, 3, 1], 0.4, 0.6, 3),
        ([4, 4, 4, 4], 0.0, 1.0, 4),  # 4 is top-2 box, not top box
        ([1, 2, 3], 0.0, 0.0, 0),
        ([5], 1.0, 1.0, 1),
        ([3, 4, 5, 2, 5, 1, 5, 4, 3, 5], 0.4, 0.6, 6),
    ],
)
def test_csat_top_box_top2_box_and_wilson(
    scores: list[int], top: float, top2: float, top2_count: int
) -> None:
    result = csat.csat(vector_of(csat.contribution(x) for x in scores))
    assert result is not None
    assert result.responses == len(scores)
    assert result.top_box_ratio == pytest.approx(top, abs=1e-12)
    assert result.top2_box_ratio == pytest.approx(top2, abs=1e-12)
    lower, upper = textbook_wilson(top2_count, len(scores))
    assert result.top2_box_lower == pytest.approx(max(0.0, lower), abs=1e-12)
    assert result.top2_box_upper == pytest.approx(min(1.0, upper), abs=1e-12)


def test_wilson_literal_value() -> None:
    # 8 of 10: (8 + 1.9207 -/+ 1.96 sqrt(1.6 + 0.9604)) / 13.8415 = (0.4902, 0.9433).
    lower, upper = wilson(8, 10)
    assert lower == pytest.approx(0.49016, abs=1e-5)
    assert upper == pytest.approx(0.94331, abs=1e-5)


def test_wilson_rejects_empty_sample() -> None:
    with pytest.raises(ValueError):
        wilson(0, 0)


@pytest.mark.parametrize(("x", "n"), [(0, 7), (10, 10)])
def test_wilson_contains_ratio_at_the_edges(x: int, n: int) -> None:
    lower, upper = wilson(x, n)
    assert lower <= x / n <= upper


def test_csat_absent_without_answers() -> None:
    assert csat.csat(s.initialize()) is None


# -- CES, thumbs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "average", "agree"),
    [
        ([7, 5, 4, 1], 4.25, 0.5),
        ([3], 3.0, 0.0),
        ([5], 5.0, 1.0),  # 5 is the lowest agreeing answer
        ([1, 2, 3, 4, 5, 6, 7], 4.0, 3 / 7),
        ([6, 6, 2], 14 / 3, 2 / 3),
    ],
)
def test_ces_average_and_agree_ratio(scores: list[int], average: float, agree: float) -> None:
    result = ces.ces(vector_of(ces.contribution(x) for x in scores))
    assert result is not None
    assert result.average == pytest.approx(average, abs=1e-12)
    assert result.agree_ratio == pytest.approx(agree, abs=1e-12)
    assert result.responses == len(scores)


def test_ces_absent_without_answers() -> None:
    assert ces.ces(s.initialize()) is None


@pytest.mark.parametrize(
    ("answers", "ratio"),
    [([True, True, False], 2 / 3), ([False], 0.0), ([True], 1.0), ([], None)],
)
def test_thumbs_up_ratio(answers: list[bool], ratio: float | None) -> None:
    result = ratios.thumbs_up_ratio(vector_of(ratios.thumbs_contribution(a) for a in answers))
    assert result == (None if ratio is None else pytest.approx(ratio, abs=1e-12))


def test_response_ratio() -> None:
    vector = vector_of([[s.N, 1], [s.N, 1], [s.N, 1]] + [[s.DISPATCHES, 1]] * 4)
    assert ratios.response_ratio(vector) == pytest.approx(0.75)
    assert ratios.response_ratio(vector_of([[s.N, 1]])) is None


# -- CSI -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratings", "weights", "expected"),
    [
        # Default: equal weights over the attributes the response rated.
        ({"a": (9, 6), "b": (5, 6)}, None, (3 - 1) / 2),
        ({"a": (10, 1)}, None, 9.0),
        ({"a": (1, 10)}, None, -9.0),
        ({"a": (7, 7), "b": (8, 8), "c": (4, 7)}, None, -1.0),
        ({"a": (9, 6), "b": (5, 6)}, {}, 1.0),  # empty config = equal weights
        # Configured: normalised over the weighted attributes rated; "d" has no weight.
        ({"a": (9, 6), "b": (5, 6), "d": (10, 1)}, {"a": 3, "b": 1, "c": 2}, (9 - 1) / 4),
        ({"a": (9, 6)}, {"a": 0.25, "b": 0.75}, 3.0),  # partial answer not penalised
        ({"a": (9, 6), "b": (2, 6)}, {"a": 0.5, "b": 0.5}, -0.5),
        ({"a": (9, 6), "b": (2, 6)}, {"a": 0, "b": 2}, -4.0),  # a zero weight is ignored
    ],
)
def test_response_csi(
    ratings: dict[str, tuple[int, int]], weights: dict[str, float] | None, expected: float
) -> None:
    assert csi.response_csi(ratings, weights) == pytest.approx(expected, abs=1e-12)


def test_response_csi_none_when_nothing_weighted() -> None:
    assert csi.response_csi({"d": (10, 1)}, {"a": 1.0}) is None
    assert csi.response_csi({}, None) is None


def test_csi_mean_over_responses() -> None:
    weights = {"speed": 2.0, "courtesy": 1.0}
    answers = [
        {"speed": CsiRating(8, 5), "courtesy": CsiRating(6, 9)},  # (2*3 + 1*(-3))/3 = 1
        {"speed": CsiRating(4, 7)},  # -3
        {"courtesy": CsiRating(9, 7), "decor": CsiRating(1, 10)},  # 2 ("decor" unweighted)
        {"decor": CsiRating(1, 10)},  # nothing weighted: no CSI answer
    ]
    vector = vector_of(
        response_kpi.contribution(response(Scores(csi=ratings)), weights) for ratings in answers
    )
    assert vector[s.CSI_N] == 3
    assert vector[s.N] == 4
    assert csi.csi(vector) == pytest.approx((1 - 3 + 2) / 3, abs=1e-12)
    # Without configured weights each attribute weighs the same: 0, -3, (2 - 9)/2, -9.
    plain = vector_of(response_kpi.contribution(response(Scores(csi=r))) for r in answers)
    assert plain[s.CSI_N] == 4
    assert csi.csi(plain) == pytest.approx((0 - 3 - 3.5 - 9) / 4, abs=1e-12)
    assert csi.csi(s.initialize()) is None


# -- ACSI ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("triple", "weights", "expected"),
    [
        ((10, 10, 10), acsi.EQUAL, 100.0),
        ((1, 1, 1), acsi.EQUAL, 0.0),
        ((8, 7, 9), acsi.EQUAL, (7 + 6 + 8) / 27 * 100),
        ((5, 5, 5), acsi.EQUAL, 12 / 27 * 100),
        ((10, 1, 1), (2.0, 1.0, 1.0), 2 * 9 / 4 / 9 * 100),  # 50
        ((1, 10, 1), (0.5, 0.25, 0.25), 0.25 * 9 / 9 * 100),  # 25
        ((7, 4, 10), (1.0, 1.0, 1.0), (6 + 3 + 9) / 27 * 100),  # explicit equal == default
        ((7, 4, 10), (3.0, 3.0, 3.0), (6 + 3 + 9) / 27 * 100),  # only relative weights matter
    ],
)
def test_acsi_response_index(
    triple: tuple[int, int, int], weights: tuple[float, float, float], expected: float
) -> None:
    assert acsi.response_index(*triple, weights) == pytest.approx(expected, abs=1e-9)


def test_acsi_mean_over_responses() -> None:
    triples = [(10, 10, 10), (1, 1, 1), (8, 7, 9)]
    vector = vector_of(response_kpi.contribution(response(Scores(acsi=Acsi(*t)))) for t in triples)
    assert vector[s.ACSI_N] == 3
    assert acsi.acsi(vector) == pytest.approx((100 + 0 + 21 / 27 * 100) / 3, abs=1e-9)
    weighted = vector_of(
        response_kpi.contribution(response(Scores(acsi=Acsi(*t))), acsi_weights=(2, 1, 1))
        for t in [(10, 1, 1), (1, 10, 10)]
    )
    assert acsi.acsi(weighted) == pytest.approx((50 + 50) / 2, abs=1e-9)
    assert acsi.acsi(s.initialize()) is None


# -- Churn ---------------------------------------------------------------------------------------


def lifecycle_vector(activations: int, cancellations: int) -> s.Vector:
    return vector_of([churn.activation()] * activations + [churn.cancellation()] * cancellations)


@pytest.mark.parametrize(
    ("all_time", "window", "expected"),
    [
        # before the window: 10 - 3 = 7 activated, 2 - 1 = 1 cancelled -> 6 active; 1 cancelled.
        ((10, 2), (3, 1), (1 / 6, 1, 6)),
        ((5, 0), (0, 0), (0.0, 0, 5)),  # customers but no cancellation: churn 0, not absent
        ((4, 2), (0, 2), (2 / 4, 2, 4)),
        ((100, 30), (20, 10), (10 / 60, 10, 60)),
        ((3, 1), (3, 1), None),  # everybody activated inside the window
        ((2, 2), (0, 0), None),  # everybody left before the window
        ((0, 0), (0, 0), None),
    ],
)
def test_churn_ratio(
    all_time: tuple[int, int],
    window: tuple[int, int],
    expected: tuple[float, int, int] | None,
) -> None:
    result = churn.churn(lifecycle_vector(*window), lifecycle_vector(*all_time))
    if expected is None:
        assert result is None
    else:
        assert result is not None
        assert result.ratio == pytest.approx(expected[0], abs=1e-12)
        assert (result.cancelled, result.active_at_start) == expected[1:]


# -- SCI -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (1.0, "secure"),
        (0.95, "secure"),
        (0.9, "secure"),  # boundary: >= 0.9 is secure
        (math.nextafter(0.9, 0), "neutral"),
        (0.8, "neutral"),
        (0.7, "neutral"),  # boundary: >= 0.7 is neutral
        (math.nextafter(0.7, 0), "at_risk"),
        (0.5, "at_risk"),
        (0.0, "at_risk"),
    ],
)
def test_sci_band(score: float, band: str) -> None:
    assert sci.band(score) == band


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ((9, None, None), [0.9]),
        ((10, 1, 4), [1.0, 0.0, 0.5]),
        ((None, 4, None), [0.75]),
        ((None, None, 7), [1.0]),
        ((None, None, None), []),
        ((0, 5, 1), [0.0, 1.0, 0.0]),
    ],
)
def test_sci_normalised_answers(
    answers: tuple[int | None, int | None, int | None], expected: list[float]
) -> None:
    assert sci.normalised_answers(*answers) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ((9, None, None), [54]),
        ((10, 1, 4), [60, 0, 30]),
        ((None, 4, None), [45]),
        ((None, None, 7), [60]),
        ((None, None, None), []),
        ((0, 5, 1), [0, 60, 0]),
    ],
)
def test_sci_answers_in_sixtieths(
    answers: tuple[int | None, int | None, int | None], expected: list[int]
) -> None:
    # nps/10 = 6 nps/60, (csat-1)/4 = 15 (csat-1)/60, (ces-1)/6 = 10 (ces-1)/60.
    assert sci.sixtieths(*answers) == expected
    assert [x / 60 for x in expected] == pytest.approx(sci.normalised_answers(*answers))
    assert sci.contribution(*answers) == (
        [s.SCI_SUM, sum(expected), s.SCI_N, len(expected)] if expected else []
    )


@pytest.mark.parametrize(
    ("total", "n", "band"),
    [
        (60, 1, "secure"),
        (54, 1, "secure"),  # exactly 0.9
        (108, 2, "secure"),
        (53, 1, "neutral"),
        (161, 3, "neutral"),  # 0.8944
        (42, 1, "neutral"),  # exactly 0.7
        (126, 3, "neutral"),  # three nps = 7 answers: exactly 0.7 (0.7+0.7+0.7 in floats is less)
        (41, 1, "at_risk"),
        (125, 3, "at_risk"),
        (0, 4, "at_risk"),
    ],
)
def test_sci_band_of_sum_is_exact_at_the_edges(total: int, n: int, band: str) -> None:
    assert sci.band_of_sum(total, n) == band


def test_sci_customers_and_secure_ratio() -> None:
    customers = [
        (120, 2),  # mean 60/60 = 1.0: secure
        (54, 1),  # nps 9 alone: exactly 0.9, secure
        (84, 2),  # 0.7: neutral
        (96, 2),  # 0.8: neutral
        (30, 1),  # 0.5: at risk
        (0, 0),  # no answers in the window: not a customer of the window
    ]
    result = sci.sci(customers)
    assert result is not None
    assert result.customers == {"secure": 2, "neutral": 2, "at_risk": 1}
    assert result.secure_ratio == pytest.approx(2 / 5)
    assert sci.sci([]) is None
    assert sci.sci([(0, 0)]) is None


def test_sci_of_a_customer_with_three_nps_7_answers_is_neutral() -> None:
    vector = vector_of(sci.contribution(7, None, None) for _ in range(3))
    result = sci.sci([(vector[s.SCI_SUM], vector[s.SCI_N])])
    assert result is not None
    assert result.customers == {"secure": 0, "neutral": 1, "at_risk": 0}


# -- Report and response contribution ----------------------------------------------------------


NPS_KEYS = {
    "nps",
    "nps_lower",
    "nps_upper",
    "nps_responses",
    "nps_promoters",
    "nps_passives",
    "nps_detractors",
}
CSAT_KEYS = {
    "csat_top_box_ratio",
    "csat_top2_box_ratio",
    "csat_top2_box_lower",
    "csat_top2_box_upper",
    "csat_responses",
}
CES_KEYS = {"ces_average", "ces_agree_ratio", "ces_responses"}


def test_report_of_empty_vector_is_empty() -> None:
    assert report.kpis(s.initialize()) == {}


@pytest.mark.parametrize(
    ("contributions", "keys"),
    [
        ([nps.contribution(9)], NPS_KEYS),
        ([csat.contribution(4)], CSAT_KEYS),
        ([ces.contribution(2)], CES_KEYS),
        ([ratios.thumbs_contribution(False)], {"thumbs_up_ratio"}),
        ([csi.contribution(0.0)], {"csi"}),
        ([acsi.contribution(0.0)], {"acsi_index"}),
        ([[s.N, 1], [s.DISPATCHES, 1]], {"response_ratio"}),
        ([[s.N, 1]], set()),  # a response without answers yields no KPI
        ([nps.contribution(3), ces.contribution(7)], NPS_KEYS | CES_KEYS),
    ],
)
def test_report_omits_absent_kpis(contributions: list[s.Sparse], keys: set[str]) -> None:
    assert set(report.kpis(vector_of(contributions))) == keys


def test_report_values() -> None:
    scores = [
        Scores(nps=10, csat=5, ces=7, thumbs=True),
        Scores(nps=9, csat=4, ces=5, thumbs=False),
        Scores(nps=9, csat=3, acsi=Acsi(10, 10, 10)),
        Scores(nps=7, csi={"a": CsiRating(6, 8)}),
        Scores(nps=3),
    ]
    vector = vector_of(response_kpi.contribution(response(sc)) for sc in scores)
    s.add(vector, [s.DISPATCHES, 10])
    out = report.kpis(vector)
    lower, upper = nps_adjusted_wald(3, 1, 5)
    w_lower, w_upper = textbook_wilson(2, 3)
    expected = {
        "nps": 40.0,
        "nps_lower": lower,
        "nps_upper": upper,
        "nps_responses": 5,
        "nps_promoters": 3,
        "nps_passives": 1,
        "nps_detractors": 1,
        "csat_top_box_ratio": 1 / 3,
        "csat_top2_box_ratio": 2 / 3,
        "csat_top2_box_lower": w_lower,
        "csat_top2_box_upper": w_upper,
        "csat_responses": 3,
        "ces_average": 6.0,
        "ces_agree_ratio": 1.0,
        "ces_responses": 2,
        "thumbs_up_ratio": 0.5,
        "csi": -2.0,
        "acsi_index": 100.0,
        "response_ratio": 0.5,
    }
    assert out.keys() == expected.keys()
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, abs=1e-12), key


def test_response_contribution_slots() -> None:
    r = response(
        Scores(
            nps=8,
            csat=2,
            ces=6,
            thumbs=True,
            csi={"a": CsiRating(9, 6)},
            acsi=Acsi(10, 10, 10),
        )
    )
    vector = vector_of([response_kpi.contribution(r)])
    expected = s.initialize()
    for slot, value in [
        (s.N, 1),
        (s.NPS + 8, 1),
        (s.CSAT + 1, 1),
        (s.CES + 5, 1),
        (s.THUMBS_N, 1),
        (s.THUMBS_UP, 1),
        (s.CSI_N, 1),
        (s.CSI_SUM, 3.0),
        (s.ACSI_N, 1),
        (s.ACSI_SUM, 100.0),
        (s.SCI_SUM, 6 * 8 + 15 * (2 - 1) + 10 * (6 - 1)),  # nps, csat, ces in sixtieths
        (s.SCI_N, 3),
    ]:
        expected[slot] = value
    assert vector == pytest.approx(expected)
