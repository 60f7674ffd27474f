"""Which event a table write belongs to, when an agent processes events in batches.

Faust routes a table write to the changelog partition of the "current event", a context
variable that it sets while a stream yields one event at a time. Batch agents set it
themselves for each event before touching a table. They must not use Stream's
`_set_current_event`: that also rewrites `stream.current_event`, which `take_events` reads
to pair buffered values with their events, and batches then repeat one event and lose another.
"""

from __future__ import annotations

import weakref

import faust
from faust.streams import _current_event


def use_event(event: faust.EventT) -> None:
    _current_event.set(weakref.ref(event))
