"""Which event a table write belongs to, when an agent processes events in batches.

Faust routes a table write to the changelog partition of the "current event", a context
variable that it sets while a stream yields one event at a time. Batch agents set it
themselves for each event before touching a table. They must not use Stream's
`_set_current_event`: that also rewrites `stream.current_event`, which `take_events` reads
to pair buffered values with their events, and batches then repeat one event and lose another.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from typing import cast

import faust
from faust.streams import _current_event


def use_event(event: faust.EventT) -> None:
    _current_event.set(weakref.ref(event))


async def batches(
    stream: faust.StreamT[bytes], size: int, within: float
) -> AsyncIterator[list[faust.EventT]]:
    """Events in batches of at most `size`, waiting at most `within` seconds for one to fill.

    The events of a batch are acknowledged (their offsets may commit) only once the caller
    asks for the next batch, that is after it has handled this one.
    """
    async for batch in cast(faust.Stream[bytes], stream).take_events(size, within):
        yield list(batch)
