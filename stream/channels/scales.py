"""The answer scale of each survey question kind."""

from __future__ import annotations

from collections.abc import Mapping

from stream.channels.outcome import Reason, Rejected
from stream.models import Scores

SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


def check_score(kind: str, value: int) -> Rejected | None:
    low, high = SCALES[kind]
    if low <= value <= high:
        return None
    return Rejected(Reason.OUT_OF_RANGE, f"{kind} score must be within {low}..{high}")


def answer_scores(answers: Mapping[str, int]) -> Scores:
    """Scores holding the checked answers of a channel, by question kind (nps, csat, ces)."""
    return Scores(nps=answers.get("nps"), csat=answers.get("csat"), ces=answers.get("ces"))
