"""Final-step wiring: each stage-2 partition's part goes to the final partition's owner, which
serves the merged agent and SCI rows (the maths: stream.aggregation.parts).

  - A timer sends, every `CX_PART_INTERVAL_SECONDS`, the part of every stage-2 partition this
    worker owns whose state or window edges changed (one record per partition, to the one
    final partition of the parts topic).
  - An agent on that partition keeps the latest part of each stage-2 partition in a table (a
    changelog, so a new owner recovers it).
  - The final partition's owner merges: its own partitions' parts fresh from its tables,
    the others' latest received ones. A single worker is therefore exact at any time; with
    several, the others' shares lag by up to the part interval (plus a produce round trip).
"""

from __future__ import annotations

import logging
import time
import zlib

from stream.aggregation.parts import (
    Part,
    decode_part,
    edges_at,
    encode_part,
    make_part,
    merge_agents,
    merge_sci,
)
from stream.faustx import (
    CodecTable,
    RecordBatch,
    assigned,
    confirmed,
    declare_table,
    send_batched,
)
from stream.kpi import report
from stream.kpi.rows import KpiRow
from stream.kpi.segments import Segment, agent_group
from stream.kpi.windows import WINDOWS
from stream.pipeline.app import CxApp
from stream.pipeline.batches import batch_agent, pass_turn
from stream.pipeline.codecs import PART
from stream.pipeline.group_windows import GroupWindows
from stream.pipeline.health import table_recovery
from stream.pipeline.kpi_engine import KpiEngine

log = logging.getLogger(__name__)


def final_partition(partitions: int) -> int:
    """The partition of the parts topic (and so the worker) that runs the final step."""
    return zlib.crc32(b"kpi-final") % partitions


# A part is sent again after this long even when unchanged, so a part that a fenced worker
# sent late (or one lost with a crashed final owner's table) is replaced within it.
PART_RESEND_SECONDS = 10.0


class KpiParts:
    """This worker's parts, the final step's table, and the merged rows."""

    def __init__(self, app: CxApp, engine: KpiEngine, groups: GroupWindows) -> None:
        self.app = app
        self.engine = engine
        self.groups = groups
        self.topic = app.names.parts
        self.final = final_partition(app.settings.partitions)
        self.top_k = app.settings.agent_top_k
        table = CodecTable(
            app, value_codec=PART, encode=encode_part, decode=decode_part, name="kpi-parts",
            beacon=app.tables.beacon, partitions=app.settings.partitions,
            store="memory://local",
        )  # fmt: skip
        self.table = declare_table(app, table)
        self._dirty: dict[int, bool] = {}  # partitions whose agents or customers changed
        self._own: dict[int, Part] = {}  # the last part computed per owned partition
        self._sent: dict[int, object] = {}  # what each partition's last sent part said
        self._sent_at: dict[int, float] = {}  # and when (monotonic)
        self._merged: tuple[object, tuple[list[KpiRow], list[KpiRow]]] = (None, ([], []))
        engine.listeners.append(self.mark)
        batch_agent(app, self.topic, "kpi-final", self.receive)
        app.timer(interval=app.settings.part_interval_seconds)(self.publish)

    def mark(self, partition: int, keys: set[bytes]) -> None:
        if any(key.startswith((b"a|", b"c|")) for key in keys):
            self._dirty[partition] = True

    # -- per partition ---------------------------------------------------------------------
    def compute(self, partition: int, now: float, fresh: bool = False) -> Part:
        """`partition`'s part at `now`, from this worker's tables (`fresh`: not through the
        read side's cache, e.g. for a request's `?at=`)."""
        group = agent_group(partition)
        agents = {w.name: self.groups.window(group, w, now, fresh) for w in WINDOWS}
        counts = self.engine.sci_band_counts(partition, now)
        return make_part(partition, now, agents, counts, self.top_k)

    def own_part(self, partition: int, now: float) -> Part:
        """`partition`'s part, recomputed when its state or window edges changed."""
        last = self._own.get(partition)
        dirty = self._dirty.pop(partition, False)
        if last is None or last.edges != edges_at(now) or dirty:
            last = self._own[partition] = self.compute(partition, now)
        return last

    async def refresh_own(self, now: float) -> None:
        """Bring the owned partitions' parts up to `now`, one partition per turn of the event
        loop (a part reads every agent of its partition's windows)."""
        for partition in sorted(self.engine.owned_partitions()):
            await pass_turn()
            self.own_part(partition, now)

    async def publish(self) -> None:
        """Send the parts of owned partitions that changed since they were last sent."""
        if not table_recovery(self.app).done:
            return  # a part of a half-recovered partition would be wrong until the next one
        now = time.time()
        try:
            values = []
            for partition in sorted(self.engine.owned_partitions()):
                await pass_turn()  # a part reads every agent of its partition's windows
                part = self.own_part(partition, now)
                part.generation = self.app.consumer_generation_id
                content = _content(part)
                due = time.monotonic() - self._sent_at.get(partition, 0.0) >= PART_RESEND_SECONDS
                if self._sent.get(partition) != content or due:
                    values.append((str(partition).encode(), encode_part(part)))
                    self._sent[partition] = content
                    self._sent_at[partition] = time.monotonic()
            if values:
                await confirmed(await send_batched(self.app, self.topic, self.final, values))
                self.app.metrics.written(self.topic, len(values))
        except Exception:  # a timer that raises stops the app; the next tick sends again
            log.exception("sending KPI parts failed")
            self._sent.clear()

    # -- the final step --------------------------------------------------------------------
    async def receive(self, batches: list[RecordBatch]) -> None:
        latest: dict[bytes, Part] = {}
        keys = sorted({r.key for b in batches for r in b.records if r.key is not None})
        kept = dict(zip(keys, self.table.get_many(self.final, keys), strict=True))
        for batch in batches:
            for record in batch.records:
                if record.key is None:
                    continue
                part = decode_part(record.value)
                previous = latest.get(record.key) or kept.get(record.key)
                if previous is not None and part.generation < previous.generation:
                    continue  # from a worker fenced since: its partition is another's now
                latest[record.key] = part
        self.table.put_many(self.final, latest)
        self.app.metrics.written(self.table.name, await self.table.confirm_changelog())

    def owns_final(self) -> bool:
        mine = assigned(self.app)
        return any(tp.topic == self.topic and tp.partition == self.final for tp in mine)

    def parts(self, now: float, fresh: bool = False) -> list[Part]:
        """Every stage-2 partition's latest part (own ones from the tables; `fresh`: computed
        at `now` rather than cached)."""
        owned = self.engine.owned_partitions()
        keys = [str(p).encode() for p in range(self.app.settings.partitions) if p not in owned]
        received = [part for part in self.table.get_many(self.final, keys) if part is not None]
        own = [self.compute(p, now, fresh=True) if fresh else self.own_part(p, now)
               for p in sorted(owned)]  # fmt: skip
        return own + received

    def merged(self, now: float, fresh: bool = False) -> tuple[list[KpiRow], list[KpiRow]]:
        """The merged (agent rows, SCI rows): on the final partition's owner only.

        Agent rows: each partition's top K per window and "other" (what the agent gauges
        export, folded to the global top K); every agent's own row stays with its partition's
        owner (stream.pipeline.kpi_views). SCI rows: over every customer."""
        if not self.owns_final():
            return [], []
        parts = self.parts(now, fresh)
        if fresh:
            return merged_rows(parts)
        version = tuple((p.partition, p.at) for p in parts)
        if self._merged[0] != version:
            self._merged = (version, merged_rows(parts))
        return self._merged[1]

    def agent_rows(self, now: float | None = None) -> list[KpiRow]:
        return self.merged(time.time() if now is None else now)[0]

    def sci_rows(self, now: float, fresh: bool = False) -> list[KpiRow]:
        return self.merged(now, fresh)[1]


def _content(part: Part) -> object:
    """What makes two parts different (not the time they were computed at)."""
    return (part.edges, part.agents, part.sci)


def merged_rows(parts: list[Part]) -> tuple[list[KpiRow], list[KpiRow]]:
    agents = [
        KpiRow(window, "a", None, vector, agent_id=Segment.parse(segment).agent_id)
        for (segment, window), vector in sorted(merge_agents(parts).items())
    ]
    scis = [
        KpiRow(window, "sci", report.sci_kpis(result))
        for window, result in sorted(merge_sci(parts).items())
    ]
    return agents, scis
