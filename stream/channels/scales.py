"""The answer scale of each survey question kind."""

from __future__ import annotations

from stream.channels.outcome import Reason, Rejected

SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


def check_score(kind: str, value: int) -> Rejected | None:
    low, high = SCALES[kind]
    if low <= value <= high:
        return None
    return Rejected(Reason.OUT_OF_RANGE, f"{kind} score must be within {low}..{high}")
