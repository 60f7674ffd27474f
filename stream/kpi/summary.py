"""A mergeable summary of survey answers: one flat vector of counts and sums.

Every KPI of a segment and time bucket is a function of this vector, and the vector of a set of
responses is the element-wise sum of their contributions, so summaries merge by addition
(associative and commutative) and a revised answer is removed by subtracting its contribution.

Slots: n (responses), NPS histogram 0..10, CSAT histogram 1..5, CES histogram 1..7, thumbs
(answered, up), CSI (answered, sum of per-response CSI), ACSI (answered, sum of per-response
index), dispatches, lifecycle (activations, cancellations), SCI (sum and number of
normalised answers).

Stored vectors (stage-2 bucket states, the final step's parts) carry the version of this
layout, `LAYOUT`. Slots are only ever appended: a vector of an older layout is read by
padding it with zeros (`upgrade`), and a vector of a newer layout than this code knows is
refused (`UnknownLayout`), so that an older worker never misreads a newer worker's state.
Sparse contributions ([slot, value, ...]) stay valid across layouts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

N = 0
NPS = 1  # 11 slots, score 0..10
CSAT = 12  # 5 slots, score 1..5
CES = 17  # 7 slots, score 1..7
THUMBS_N = 24
THUMBS_UP = 25
CSI_N = 26
CSI_SUM = 27
ACSI_N = 28
ACSI_SUM = 29
DISPATCHES = 30
ACTIVATIONS = 31
CANCELLATIONS = 32
SCI_SUM = 33  # sum of normalised answers (for a customer's SCI)
SCI_N = 34  # number of normalised answers
SIZE = 35

LAYOUT = 1  # raise when slots are appended, and record the new SIZE in LAYOUT_SIZES
LAYOUT_SIZES = {1: 35}

Vector = list[float]
Sparse = list[float]  # flat [slot, value, slot, value, ...]


def initialize() -> Vector:
    return [0] * SIZE


def add(vector: Vector, sparse: Sequence[float], sign: int = 1) -> Vector:
    """Add (or with sign=-1 remove) one contribution, in place."""
    for i in range(0, len(sparse), 2):
        vector[int(sparse[i])] += sign * sparse[i + 1]
    return vector


def merge(left: Sequence[float], right: Sequence[float]) -> Vector:
    return [a + b for a, b in zip(left, right, strict=True)]


def merge_all(vectors: Iterable[Sequence[float]]) -> Vector:
    total = initialize()
    for vector in vectors:
        for i, value in enumerate(vector):
            if value:
                total[i] += value
    return total


def difference(new: Sequence[float], old: Sequence[float]) -> Sparse:
    """The sparse contribution that turns `old` into `new` (used for revisions)."""
    delta: dict[int, float] = {}
    for sparse, sign in ((new, 1), (old, -1)):
        for i in range(0, len(sparse), 2):
            slot = int(sparse[i])
            delta[slot] = delta.get(slot, 0) + sign * sparse[i + 1]
    return [x for slot, value in sorted(delta.items()) if value for x in (slot, value)]


class UnknownLayout(ValueError):
    """State written with a summary layout this code does not know (a newer worker's)."""


def upgrade(vector: Vector, layout: int) -> Vector:
    """`vector`, stored with summary layout `layout`, in the current layout (in place).

    Vectors of another length (a customer's [sum, n], a group's empty vector) are not
    summary vectors and stay as they are."""
    if layout == LAYOUT:
        return vector
    if layout not in LAYOUT_SIZES or layout > LAYOUT:
        raise UnknownLayout(
            f"stored state uses summary layout {layout}; this worker knows layouts "
            f"{sorted(LAYOUT_SIZES)}: run the newer worker, or reset the state"
        )
    if len(vector) == LAYOUT_SIZES[layout]:
        vector.extend([0] * (SIZE - len(vector)))
    return vector
