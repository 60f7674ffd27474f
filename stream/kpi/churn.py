"""Churn ratio over a window = customers cancelled in the window / customers active at its start.

Customers active at the window start are derived from all-time totals and the window's own
counts: active_at_start = (activated_all_time - activated_in_window - activated_after)
                        - (cancelled_all_time - cancelled_in_window - cancelled_after),
where "after" counts events in buckets after the window's end (accepted a few minutes ahead).
Target: churn <= 5%. Absent when no customer was active at the window start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stream.kpi import summary as s


@dataclass(frozen=True, slots=True)
class Churn:
    ratio: float
    cancelled: int
    active_at_start: int


def activation() -> s.Sparse:
    return [s.ACTIVATIONS, 1]


def cancellation() -> s.Sparse:
    return [s.CANCELLATIONS, 1]


def churn(
    window: Sequence[float], all_time: Sequence[float], after: Sequence[float] | None = None
) -> Churn | None:
    later = after if after is not None else s.initialize()
    activated_before = all_time[s.ACTIVATIONS] - window[s.ACTIVATIONS] - later[s.ACTIVATIONS]
    cancelled_before = all_time[s.CANCELLATIONS] - window[s.CANCELLATIONS] - later[s.CANCELLATIONS]
    active = int(activated_before - cancelled_before)
    if active <= 0:
        return None
    cancelled = int(window[s.CANCELLATIONS])
    return Churn(cancelled / active, cancelled, active)
