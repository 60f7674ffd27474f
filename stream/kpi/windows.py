"""Rolling windows by event time, built from tumbling buckets.

Each window has its own bucket width (at most 1/12 of the window):

    window   width    buckets
    5m       15 s     20
    1h       5 min    12
    24h      1 h      24
    7d       12 h     14

Bucket b of width g covers event times [b*g, (b+1)*g) (Unix seconds, UTC). At time `now` the
window holds the buckets c-k+1 .. c, where c = floor(now/g) is the current (partial) bucket and
k = window/g: an event counts when its bucket lies inside the window, so a window spans between
(k-1)*g and k*g seconds of history, edges on bucket boundaries. Buckets older than that are
expired; events a few minutes in the future wait in their future bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    seconds: int
    width: int

    @property
    def buckets(self) -> int:
        return self.seconds // self.width

    def bucket(self, t: float) -> int:
        return math.floor(t / self.width)

    def live(self, bucket: int, now: float) -> bool:
        """True while the bucket is inside the window or still ahead of `now`."""
        return bucket > self.bucket(now) - self.buckets

    def contains(self, bucket: int, now: float) -> bool:
        current = self.bucket(now)
        return current - self.buckets < bucket <= current

    def start(self, now: float) -> float:
        """Event time of the window's first edge at `now`."""
        return (self.bucket(now) - self.buckets + 1) * self.width


WINDOWS = (
    Window("5m", 300, 15),
    Window("1h", 3600, 300),
    Window("24h", 86400, 3600),
    Window("7d", 604800, 43200),
)
BY_NAME = {window.name: window for window in WINDOWS}
NAMES = tuple(window.name for window in WINDOWS)
# The window names as a type (query parameters, snapshot records): the same names, checked here.
WindowName = Literal["5m", "1h", "24h", "7d"]
assert get_args(WindowName) == NAMES
LONGEST = max(WINDOWS, key=lambda w: w.seconds)
