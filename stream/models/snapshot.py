"""KPI snapshot v1 (cx.kpi.snapshots): one segment's KPIs in one window at one time.

Every CX_SNAPSHOT_INTERVAL seconds each worker publishes one row per (window, segment) it owns.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from stream.kpi.windows import WindowName
from stream.models.types import Label

SegmentKind = Literal["q", "a", "churn", "sci"]
KpiName = Annotated[str, msgspec.Meta(pattern="^[a-z0-9_]+$")]


class KpiSnapshot(msgspec.Struct, omit_defaults=True):
    """`kind` names the segment: "q" a (channel, queue) segment, where either may be "all";
    "a" one agent (`agent_id`, or "other" beyond the state cap); "churn" and "sci" the
    worker's churn and secure-customer figures (no channel, queue or agent).

    `kpis` maps metric names without the cx_ prefix (nps, nps_lower, csat_top2_box_ratio,
    churn_ratio, sci_secure_ratio, ...) to values; a KPI with no answers in the window is
    absent. `at` is the snapshot time in seconds since the Unix epoch.
    """

    window: WindowName
    kind: SegmentKind
    kpis: dict[KpiName, float]
    at: float
    channel: Literal["ivr", "sms", "email", "web", "all"] | None = None
    queue: Label | None = None
    agent_id: Label | None = None
