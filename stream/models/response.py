"""SurveyResponse v1: the canonical event on cx.responses (key: response_id)."""

from __future__ import annotations

import msgspec

from stream.models.types import (
    CesScore,
    Channel,
    Comment,
    CsatScore,
    Id,
    Label,
    NpsScore,
    Revision,
    TenPoint,
    Timestamp,
)


class CsiRating(msgspec.Struct, forbid_unknown_fields=False):
    """One CSI attribute: how the customer perceived it and what they expected (1..10)."""

    perceived: TenPoint
    expected: TenPoint


class Acsi(msgspec.Struct):
    """ACSI-style triple, each 1..10."""

    satisfaction: TenPoint
    expectation: TenPoint
    ideal: TenPoint


class Scores(msgspec.Struct, omit_defaults=True):
    """The answers of one response; at least one must be present."""

    nps: NpsScore | None = None
    csat: CsatScore | None = None
    ces: CesScore | None = None
    thumbs: bool | None = None
    csi: dict[Label, CsiRating] | None = None
    acsi: Acsi | None = None

    def __post_init__(self) -> None:
        if (
            self.nps is None
            and self.csat is None
            and self.ces is None
            and self.thumbs is None
            and not self.csi
            and self.acsi is None
        ):
            raise ValueError("scores needs at least one of nps, csat, ces, thumbs, csi, acsi")


class SurveyResponse(msgspec.Struct, omit_defaults=True):
    """A customer's answer to a post-interaction survey, whatever the channel."""

    response_id: Id
    channel: Channel
    occurred_at: Timestamp
    scores: Scores
    customer_id: Label | None = None
    interaction_id: Label | None = None
    queue: Label | None = None
    agent_id: Label | None = None
    region: Label | None = None
    revision: Revision = 0
    comment: Comment | None = None
