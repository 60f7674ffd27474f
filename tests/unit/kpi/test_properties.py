"""Properties of the mergeable summary vector and of the KPI intervals (hypothesis)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import reduce

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.kpi import nps, report
from stream.kpi import response as response_kpi
from stream.kpi import summary as s
from stream.kpi.intervals import nps_adjusted_wald, wilson
from stream.models import Acsi, CsiRating, Scores, SurveyResponse

SETTINGS = settings(deadline=None, max_examples=200)
FLOAT_SLOTS = frozenset({s.CSI_SUM, s.ACSI_SUM})
COUNT_KEYS = frozenset(
    {
        "nps_responses",
        "nps_promoters",
        "nps_passives",
        "nps_detractors",
        "csat_responses",
        "ces_responses",
    }
)
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

ten_point = st.integers(1, 10)
csi_ratings = st.dictionaries(
    st.sampled_from(["speed", "courtesy", "clarity", "price"]),
    st.builds(CsiRating, ten_point, ten_point),
    min_size=1,
    max_size=4,
)
scores = (
    st.fixed_dictionaries(
        {},
        optional={
            "nps": st.integers(0, 10),
            "csat": st.integers(1, 5),
            "ces": st.integers(1, 7),
            "thumbs": st.booleans(),
            "csi": csi_ratings,
            "acsi": st.builds(Acsi, ten_point, ten_point, ten_point),
        },
    )
    .filter(bool)
    .map(lambda fields: Scores(**fields))  # type: ignore[arg-type]
)
responses = st.builds(
    SurveyResponse,
    response_id=st.just("r"),
    channel=st.sampled_from(["ivr", "sms", "email", "web"]),
    occurred_at=st.just(WHEN),
    scores=scores,
)
csi_weights = st.one_of(st.none(), st.just({"speed": 2.0, "courtesy": 1.0, "price": 0.5}))
# A response, or (as the list element None) one dispatch, so response_ratio is covered too.
items = st.one_of(responses, st.none())


def contributions(
    answers: Iterable[SurveyResponse | None], weights: Mapping[str, float] | None
) -> list[s.Sparse]:
    return [
        [s.DISPATCHES, 1] if a is None else response_kpi.contribution(a, weights) for a in answers
    ]


def vector_of(sparse: Iterable[s.Sparse]) -> s.Vector:
    vector = s.initialize()
    for contribution in sparse:
        s.add(vector, contribution)
    return vector


def assert_same_vector(left: Sequence[float], right: Sequence[float]) -> None:
    assert len(left) == len(right) == s.SIZE
    for slot, (a, b) in enumerate(zip(left, right, strict=True)):
        if slot in FLOAT_SLOTS:
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (slot, a, b)
        else:
            assert a == b, (slot, a, b)


def assert_same_kpis(left: Mapping[str, float], right: Mapping[str, float]) -> None:
    assert left.keys() == right.keys()
    for key, value in left.items():
        if key in COUNT_KEYS:
            assert value == right[key], key
        else:
            assert math.isclose(value, right[key], rel_tol=1e-9, abs_tol=1e-9), key


@SETTINGS
@given(
    st.lists(items, max_size=8),
    st.lists(items, max_size=8),
    st.lists(items, max_size=8),
    csi_weights,
)
def test_merge_is_associative_and_commutative(
    a: list[SurveyResponse | None],
    b: list[SurveyResponse | None],
    c: list[SurveyResponse | None],
    weights: Mapping[str, float] | None,
) -> None:
    x, y, z = (vector_of(contributions(part, weights)) for part in (a, b, c))
    assert_same_vector(s.merge(x, y), s.merge(y, x))
    assert_same_vector(s.merge(s.merge(x, y), z), s.merge(x, s.merge(y, z)))
    assert_same_vector(s.merge_all([x, y, z]), reduce(s.merge, [z, x, y]))
    assert_same_vector(s.merge(x, s.initialize()), x)
    # Merging equals summing all contributions in one pass.
    assert_same_vector(s.merge_all([x, y, z]), vector_of(contributions(a + b + c, weights)))


@SETTINGS
@given(st.data(), st.lists(items, max_size=30), st.integers(1, 6), csi_weights)
def test_any_split_into_buckets_gives_the_one_pass_report(
    data: st.DataObject,
    answers: list[SurveyResponse | None],
    k: int,
    weights: Mapping[str, float] | None,
) -> None:
    sparse = contributions(answers, weights)
    groups = data.draw(st.lists(st.integers(0, k - 1), min_size=len(sparse), max_size=len(sparse)))
    buckets = [s.initialize() for _ in range(k)]
    # Bucket contents arrive in a random order as well.
    order = data.draw(st.permutations(range(len(sparse))))
    for i in order:
        s.add(buckets[groups[i]], sparse[i])
    merged = s.merge_all(data.draw(st.permutations(buckets)))
    one_pass = vector_of(sparse)
    assert_same_vector(merged, one_pass)
    assert_same_kpis(report.kpis(merged), report.kpis(one_pass))


@SETTINGS
@given(st.lists(items, max_size=15), responses, csi_weights)
def test_add_then_remove_restores_the_vector(
    answers: list[SurveyResponse | None],
    extra: SurveyResponse,
    weights: Mapping[str, float] | None,
) -> None:
    original = vector_of(contributions(answers, weights))
    vector = list(original)
    contribution = response_kpi.contribution(extra, weights)
    s.add(vector, contribution)
    assert vector[s.N] == original[s.N] + 1
    s.add(vector, contribution, sign=-1)
    assert_same_vector(vector, original)
    # A revision: remove the first answer's contribution and add the extra one.
    if answers:
        first = contributions(answers[:1], weights)[0]
        revised = vector_of(contributions(answers, weights))
        s.add(revised, first, sign=-1)
        s.add(revised, contribution)
        assert_same_vector(revised, vector_of(contributions([*answers[1:], extra], weights)))
        assert_same_vector(
            s.add(vector_of([first]), s.difference(contribution, first)),
            vector_of([contribution]),
        )


nps_histograms = st.lists(st.integers(0, 60), min_size=11, max_size=11).filter(any)


@SETTINGS
@given(nps_histograms)
def test_nps_within_bounds_and_interval(histogram: list[int]) -> None:
    vector = s.initialize()
    vector[s.NPS : s.NPS + 11] = histogram
    result = nps.nps(vector)
    assert result is not None
    n = result.responses
    assert n == sum(histogram)
    assert -100 <= result.value <= 100
    assert -100 <= result.lower <= result.upper <= 100
    # The adjusted-Wald interval is centred on the *adjusted* estimate, which is shrunk
    # towards 0: with n = 1 the point estimate itself lies outside (1 promoter: 100 vs
    # (-48.5, 98.5)). What it always contains is its own centre 100 * (p - d).
    p = (result.promoters + 0.75) / (n + 3)
    d = (result.detractors + 0.75) / (n + 3)
    assert result.lower <= 100 * (p - d) <= result.upper
    if n >= 2:  # from two answers on it contains the point estimate too
        assert result.lower <= result.value <= result.upper


def test_nps_interval_misses_point_estimate_only_for_a_single_answer() -> None:
    misses = [
        (promoters, detractors, n)
        for n in range(1, 61)
        for promoters in range(n + 1)
        for detractors in range(n + 1 - promoters)
        if not (
            (bounds := nps_adjusted_wald(promoters, detractors, n))[0]
            <= 100 * (promoters - detractors) / n
            <= bounds[1]
        )
    ]
    assert misses == [(0, 1, 1), (1, 0, 1)]


@SETTINGS
@given(st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_within_unit_interval_and_contains_ratio(sample: tuple[int, int]) -> None:
    x, n = sample
    lower, upper = wilson(x, n)
    assert 0.0 <= lower <= upper <= 1.0
    ratio = x / n
    if 0 < x < n:
        assert lower <= ratio <= upper
    else:
        # At x = 0 and x = n the exact bound is the ratio itself; rounding may leave it one
        # ulp-ish off (see test_formulas.test_wilson_contains_ratio_at_the_edges).
        assert lower <= ratio + 1e-12 and ratio - 1e-12 <= upper
    assert upper - lower > 0
