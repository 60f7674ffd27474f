"""The read model: one immutable snapshot of every KPI row this worker serves.

A timer rebuilds it every `CX_READ_REFRESH_SECONDS` from the incremental readers (KpiReader:
only the segments a stage-2 batch changed, every segment at a window edge; KpiParts: the
merged agents and SCI), passing the event loop's turn between agent groups. /metrics, /kpi,
/kpi/all, /kpi/agents, /kpi/queues and the snapshot topic read the current snapshot: no
request recomputes state, and what one scrape shows is one consistent moment (`at`). A
group's members stay arrays in the snapshot: /metrics and /kpi read them as they are, and the
endpoints that list every member make their rows once per snapshot, a group per turn of the
event loop. `?at=EPOCH` asks for another time than the snapshot's: it is computed for that
request, as before.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

from stream.aggregation.buckets import AFTER, ALL_TIME, CUSTOMER_KEYS, parse_key, window_vectors
from stream.aggregation.group_sums import MemberBucket
from stream.aggregation.messages import BucketState
from stream.kpi import churn, report
from stream.kpi import summary as s
from stream.kpi.rows import KpiRow
from stream.kpi.segments import CHURN, Segment, is_group, member_segment
from stream.kpi.windows import WINDOWS
from stream.pipeline.app import CxApp
from stream.pipeline.batches import pass_turn
from stream.pipeline.group_windows import GroupWindows
from stream.pipeline.kpi_engine import KpiEngine
from stream.pipeline.kpi_parts import KpiParts

log = logging.getLogger(__name__)


def kpi_rows(engine: KpiEngine, parts: KpiParts, now: float) -> list[KpiRow]:
    """Every (window, segment) this worker serves at `now`, with its KPIs and raw counts."""
    return segment_rows(engine, now) + parts.sci_rows(now, fresh=True)


def segment_rows(
    engine: KpiEngine, now: float, items: Iterable[tuple[bytes, BucketState]] | None = None
) -> list[KpiRow]:
    """The rows of every segment but customers (`items`: of these bucket states only): the
    queues' and agents' of the partitions this worker owns, and churn."""
    vectors = window_vectors(engine.owned_items() if items is None else items, now)
    for key, window in list(vectors):
        if window == ALL_TIME:  # churn is defined (maybe 0) in every window once customers exist
            for w in WINDOWS:
                vectors.setdefault((key, w.name), s.initialize())
    rows = []
    for (key, window), vector in sorted(vectors.items()):
        if window == ALL_TIME or window.endswith(AFTER):
            continue
        segment = Segment.parse(key)
        if segment.kind == CHURN:
            total = vectors.get((key, ALL_TIME), s.initialize())
            result = churn.churn(vector, total, vectors.get((key, window + AFTER)))
            rows.append(KpiRow(window, "churn", report.churn_kpis(result), vector))
        elif segment.kind == "q":
            rows.append(KpiRow(window, "q", None, vector,
                               channel=segment.channel, queue=segment.queue))  # fmt: skip
        else:
            rows.append(KpiRow(window, "a", None, vector,
                               agent_id=segment.agent_id))  # fmt: skip
    return rows


def group_rows(group: str, windows: Mapping[str, MemberBucket]) -> list[KpiRow]:
    """The rows of a group's members (queues of a channel, or agents), from each window's
    sums, in the order `segment_rows` gives them (by member, then window)."""
    members = sorted(
        ((name, window, vector)
         for window, bucket in windows.items()
         for name, vector in zip(bucket.names, bucket.matrix.tolist(), strict=True)),
        key=lambda member: (member[0], member[1]),
    )  # fmt: skip
    probe = Segment.parse(member_segment(group, "-"))
    if probe.kind == "q":
        return [KpiRow(window, "q", None, vector, channel=probe.channel, queue=name)
                for name, window, vector in members]  # fmt: skip
    return [KpiRow(window, "a", None, vector, agent_id=name) for name, window, vector in members]


Members = Mapping[str, MemberBucket]  # a group's members summed per window (name -> sums)
Segments = tuple[tuple[str, tuple[KpiRow, ...] | Members], ...]  # by stored segment


class KpiReader:
    """`kpi_rows` at the current time, kept up to date as batches land.

    Rows depend on the time only through each window's current bucket (window edges fall on
    bucket boundaries). Between two edges only the segments a stage-2 batch changed are
    computed again (the engine reports the keys it wrote, `mark`); at an edge, or when the
    owned partitions change, every segment is. So a build costs O(series), plus the
    changed segments' buckets. A group's members stay arrays (stream.pipeline.group_windows):
    a flood of names costs a build one scatter-add per changed bucket, and no Python object
    per member (`Snapshot.rows` makes the rows when a request asks for them). The SCI rows
    come merged from every partition's part (stream.pipeline.kpi_parts), which caches per
    partition the same way.
    """

    def __init__(self, engine: KpiEngine, parts: KpiParts, groups: GroupWindows) -> None:
        self.engine = engine
        self.parts = parts
        self.groups = groups
        self._edges: object = None
        self._keys: dict[str, set[bytes]] = defaultdict(set)  # stored segment -> bucket keys
        self._segments: dict[str, tuple[KpiRow, ...] | Members] = {}  # stored segment -> rows
        self._dirty: set[str] = set()
        engine.listeners.append(self.mark)

    def mark(self, partition: int, keys: Iterable[bytes]) -> None:
        """Bucket keys a batch wrote: their segments' rows are computed again when read."""
        for key in keys:
            if key.startswith(CUSTOMER_KEYS):
                continue  # customers: see KpiParts
            try:
                segment = parse_key(key)[0]
            except ValueError:
                continue
            if not is_group(segment):  # a group's buckets: by window (GroupWindows)
                self._keys[segment].add(key)
            self._dirty.add(segment)

    async def segments(self, now: float) -> Segments:
        """Every segment's rows at `now` (a group's: its members' sums), the changed segments
        computed again, one at a time between turns of the event loop."""
        edges = (frozenset(self.engine.owned_partitions()), tuple(w.bucket(now) for w in WINDOWS))
        if edges != self._edges:
            self._edges = edges
            self._keys.clear()
            self._segments.clear()
            for key, _ in self.engine.owned_items():
                self.mark(-1, [key])
        for segment in sorted(self._dirty):
            await pass_turn()
            if segment in self._dirty:  # (not refreshed meanwhile)
                self._refresh(segment, now)
                self._dirty.discard(segment)
        # What batches changed during those turns, with no turn from here on: the rows (and
        # the parts the caller reads next) are then all of one moment.
        for segment in sorted(self._dirty):
            self._refresh(segment, now)
        self._dirty.clear()
        return tuple(sorted(self._segments.items()))

    def _refresh(self, segment: str, now: float) -> None:
        if is_group(segment):
            sums = {w.name: self.groups.window(segment, w, now) for w in WINDOWS}
            members = {window: bucket for window, bucket in sums.items() if bucket.names}
            if members:
                self._segments[segment] = members
            else:
                self._segments.pop(segment, None)
            return
        keys = sorted(self._keys[segment])
        states = self.engine.buckets.get_many(0, keys, staged=False)  # memory: any partition
        items = [(k, state) for k, state in zip(keys, states, strict=True) if state]
        self._keys[segment] = {k for k, _ in items}
        rows = segment_rows(self.engine, now, items)
        if rows:
            self._segments[segment] = tuple(rows)
        else:
            self._segments.pop(segment, None)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Every row at `at`, of the segments this worker owns: `segments` (a group's members as
    arrays per window), `sci`, and, on the final partition's owner, `top_agents` (the merged
    candidates /metrics folds into the top K agents)."""

    at: float
    segments: Segments
    sci: tuple[KpiRow, ...]
    top_agents: tuple[KpiRow, ...] = ()
    built: bool = True  # False: the empty snapshot before the first build

    @cached_property
    def rows(self) -> tuple[KpiRow, ...]:
        """Every row (queues, every agent of the owned partitions, churn, SCI), made once
        per snapshot when first asked for (on the event loop: `made_rows`)."""
        out: list[KpiRow] = []
        for segment, rows in self.segments:
            out += rows if isinstance(rows, tuple) else group_rows(segment, rows)
        return (*out, *self.sci)

    async def made_rows(self) -> tuple[KpiRow, ...]:
        """`rows`, a group per turn of the event loop (a shard's agents under a flood of names
        are tens of thousands of rows)."""
        if "rows" not in vars(self):
            out: list[KpiRow] = []
            for segment, rows in self.segments:
                if not isinstance(rows, tuple):
                    await pass_turn()
                    rows = tuple(group_rows(segment, rows))
                out += rows
            vars(self).setdefault("rows", (*out, *self.sci))
        return self.rows

    @property
    def totals(self) -> list[KpiRow]:
        """The rows that are not a group's members: channel totals, churn, SCI."""
        out = [row for _, rows in self.segments if isinstance(rows, tuple) for row in rows]
        return out + list(self.sci)

    def members(self, kind: str) -> Iterator[tuple[str, str, MemberBucket]]:
        """(window, channel, members) of every group of `kind` ("q": a channel's queues,
        "a": agents; channel "" for agents)."""
        for segment, rows in self.segments:
            if isinstance(rows, tuple) or segment[0] != kind:
                continue
            channel = Segment.parse(member_segment(segment, "-")).channel if kind == "q" else ""
            for window, bucket in rows.items():
                yield window, channel, bucket

    def row(self, window: str, channel: str, queue: str) -> KpiRow | None:
        """The row of one (window, channel, queue), without making the others."""
        for row in self.totals:
            if (row.kind, row.window, row.channel, row.queue) == ("q", window, channel, queue):
                return row
        for w, c, bucket in self.members("q"):
            if (w, c) == (window, channel) and queue in bucket.names:
                i = bucket.names.index(queue)
                return KpiRow(w, "q", None, bucket.matrix[i].tolist(), channel=c, queue=queue)
        return None


class ReadModel:
    def __init__(self, app: CxApp, reader: KpiReader) -> None:
        self.reader = reader
        self.snapshot = Snapshot(0.0, (), (), built=False)
        app.timer(interval=app.settings.read_refresh_seconds)(self.refresh)

    async def refresh(self) -> None:
        """Build the next snapshot (a timer: one that raises would stop the app)."""
        try:
            self.snapshot = await self.build(time.time())
        except Exception:
            log.exception("building the KPI snapshot failed; the previous one stays")

    def snapshot_at(self) -> float | None:
        """The current snapshot's time; None before the first build."""
        return self.snapshot.at if self.snapshot.built else None

    async def build(self, now: float) -> Snapshot:
        await self.reader.parts.refresh_own(now)
        segments = await self.reader.segments(now)  # no turn of the loop from its end to here
        sci = self.reader.parts.sci_rows(now)
        top_agents = self.reader.parts.agent_rows(now)
        return Snapshot(now, segments, tuple(sci), tuple(top_agents))
