"""Constrained field types shared by the v1 models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

Channel = Literal["ivr", "sms", "email", "web"]
SurveyKind = Literal["nps", "csat", "ces"]

Timestamp = Annotated[
    datetime, msgspec.Meta(tz=True, description="RFC 3339 timestamp with a UTC offset")
]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
# Raw ids get a channel prefix ("email:" is the longest) and must still fit in Id.
RawId = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
NpsScore = Annotated[int, msgspec.Meta(ge=0, le=10)]
CsatScore = Annotated[int, msgspec.Meta(ge=1, le=5)]
CesScore = Annotated[int, msgspec.Meta(ge=1, le=7)]
TenPoint = Annotated[int, msgspec.Meta(ge=1, le=10)]
Comment = Annotated[str, msgspec.Meta(max_length=2000)]
Revision = Annotated[int, msgspec.Meta(ge=0)]
