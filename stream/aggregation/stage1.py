"""Stage 1 over a batch, pure: parse, route, decide each id once, sum the deltas.

One batch holds consecutive records of one source partition. The plan says what the agent
must send (partials per stage-2 partition, follow-ups, dead letters, re-published mis-keyed
messages) and which id states to write, one per id however often it occurs in the batch.

Pre-aggregation (before the keyed hop to stage 2): the contributions of a batch's new
decisions are summed per (segment, window, bucket) (stream/aggregation/batch_sums.py) and
tagged with the batch's last offset L. A queue or agent that gets half of all answers then
costs stage 2 one entry per live bucket and batch, not one per answer, for live traffic and
for a backfill spread over days alike. Stage 2 applies an entry once per key and source (its
offset above the key's mark), so summing is only safe for offsets no earlier attempt may
have sent, under another cut: before sending a batch's partials, the agent records "every
offset up to L may have been sent" (the in-flight mark, `inflight_until`), and a batch that
starts at or below the mark (a re-read after a crash) goes one entry per message, as
replays always do (stream/aggregation/dedupe.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from stream.aggregation.batch_sums import BatchSums
from stream.aggregation.dedupe import Decision
from stream.aggregation.followups import followup_of
from stream.aggregation.messages import (
    MAX_ENTRIES,
    Entry,
    IdState,
    Partial,
    split_partial,
)
from stream.channels import Rejected, TimeLimits
from stream.channels.guard import guarded
from stream.kpi.segments import group_of, is_customer
from stream.models import SurveyResponse
from stream.models.followup import Followup


class Parsed(NamedTuple):
    """A decoded stage-1 message: its id, and how to decide it against the id's state."""

    key: bytes
    decide: Callable[[IdState | None, str, int], Decision]
    response: SurveyResponse | None = None


Parser = Callable[[bytes, TimeLimits], Parsed | Rejected]


class PartialsBuilder:
    """The entries of one batch bound for each stage-2 partition: one per message (`add`), or
    the batch's sums per (segment, window, bucket) (`add_summed`, stream/aggregation/
    batch_sums.py), all tagged with the batch's last offset.

    Sums are split into records of about `max_entries` only between different state records:
    the sums that reach one state record (the members of one group in one bucket) carry the
    same tag, and split apart the second half would find the state marked by the first.
    """

    def __init__(
        self, owner_of: Callable[[str], int], src: str, now: float = 0.0, shards: int = 1,
        max_entries: int = MAX_ENTRIES,
    ) -> None:  # fmt: skip
        self.owner_of = owner_of
        self.src = src
        self.shards = shards
        self.max_entries = max_entries
        self.single: dict[int, list[Entry]] = defaultdict(list)
        self.sums = BatchSums(now)

    def add(self, entries: list[Entry]) -> None:
        for entry in entries:
            self.single[self.owner_of(entry.segment)].append(entry)

    def add_summed(self, state: IdState) -> None:
        """Add a decision's transition: its new contribution, less the one it replaces."""
        if state.previous is not None:
            self.sums.add(state.previous, -1)
        if state.current is not None:
            self.sums.add(state.current)

    @property
    def summed(self) -> bool:
        return len(self.sums) > 0

    def records(self, last_offset: int) -> dict[int, list[Partial]]:
        """Per stage-2 partition, its partials in sending order: the one-per-message entries
        first (their offsets are at or below the sums' tag), then the sums."""
        sums: dict[int, list[Entry]] = defaultdict(list)
        for entry in self.sums.entries(last_offset):
            sums[self.owner_of(entry.segment)].append(entry)
        out: dict[int, list[Partial]] = {}
        for dest in self.single.keys() | sums.keys():
            single = split_partial(Partial(self.src, self.single.get(dest, [])), self.max_entries)
            chunks = split_sums(sums.get(dest, []), self.max_entries, self.shards)
            records = [r for r in single if r.entries] + [Partial(self.src, c) for c in chunks]
            if records:
                out[dest] = records
        return out


def split_sums(entries: list[Entry], max_entries: int, shards: int) -> list[list[Entry]]:
    """`entries` (sums of one tag) in chunks of about `max_entries`, never splitting the
    sums that reach one state record: a (segment or group, window, bucket)'s, and all of one
    customer's (its sums per finest bucket share the longer windows' buckets)."""
    if len(entries) <= max_entries:
        return [entries] if entries else []
    records: dict[tuple[str, int, float], list[Entry]] = defaultdict(list)
    for entry in entries:
        if is_customer(entry.segment):
            records[(entry.segment, -1, 0.0)].append(entry)
        else:
            group = group_of(entry.segment, shards)
            stored = entry.segment if group is None else group[0]
            records[(stored, entry.window, entry.t)].append(entry)
    # A chunk holds at most max(max_entries, the largest state record's sums) entries.
    chunks: list[list[Entry]] = [[]]
    for record in records.values():
        if chunks[-1] and len(chunks[-1]) + len(record) > max_entries:
            chunks.append([])
        chunks[-1] += record
    return chunks


@dataclass
class Stage1Plan:
    rejected: list[tuple[int, Rejected]] = field(default_factory=list)  # (index, why)
    misrouted: list[tuple[int, bytes, int]] = field(default_factory=list)  # (index, id, home)
    partials: dict[int, list[Partial]] = field(default_factory=dict)  # per stage-2 partition
    summed: bool = False  # some partials hold sums
    last_offset: int = -1
    states: dict[bytes, IdState] = field(default_factory=dict)
    followups: list[Followup] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


def plan_batch(
    src: str,
    partition: int,
    records: Sequence[tuple[int, bytes | None]],
    parse: Parser,
    limits: TimeLimits,
    load_states: Callable[[list[bytes]], list[IdState | None]],
    homes_of: Callable[[list[bytes]], Sequence[int]],
    owner_of: Callable[[str], int],
    followup_max_age: float = 48 * 3600.0,
    inflight_until: int = -1,
    shards: int = 1,
    max_entries: int = MAX_ENTRIES,
) -> Stage1Plan:
    """Plan a batch of `(offset, value)` records of source `src` ("topic:partition").

    `load_states` reads the ids' stored states (once, for every id of the batch), `homes_of`
    gives the partitions of a list of ids (stream.aggregation.routing.id_partitions),
    `owner_of` a segment's stage-2 partition. A message whose id
    lives in another partition is re-published there: every message of an id then comes
    from one partition in one order, which a replay after a crash repeats. A batch starting
    at or before `inflight_until` (the in-flight mark) sends one entry per message.
    `shards`: the stage-2 partitions (agents' group records are one per partition);
    `max_entries`: entries per partial record (about).
    """
    plan = Stage1Plan()
    now = limits.now.timestamp()
    builder = PartialsBuilder(owner_of, src, now, shards, max_entries)
    # A batch that reaches back into the in-flight range sends nothing summed: its sums could
    # overlap what an earlier attempt sent summed under another cut. Replays (below) never
    # sum: their entries are no-ops, which a lost record of them must stay.
    summing = bool(records) and records[0][0] > inflight_until
    decoded: list[tuple[int, int, Parsed]] = []
    for index, (offset, value) in enumerate(records):
        outcome = guarded(parse, value, limits)
        if isinstance(outcome, Rejected):
            plan.rejected.append((index, outcome))
        else:
            decoded.append((index, offset, outcome))
    parsed: list[tuple[int, Parsed]] = []
    homes = homes_of([p.key for _, _, p in decoded])
    for (index, offset, outcome), home in zip(decoded, homes, strict=True):
        if home != partition:
            plan.misrouted.append((index, outcome.key, int(home)))
        else:
            parsed.append((offset, outcome))
    keys = list(dict.fromkeys(p.key for _, p in parsed))
    states: dict[bytes, IdState | None] = dict(zip(keys, load_states(keys), strict=True))
    for offset, p in parsed:
        decision = p.decide(states[p.key], src, offset)
        if decision.outcome != "replayed":
            plan.outcomes[decision.outcome] += 1
        if decision.state is not None:
            states[p.key] = plan.states[p.key] = decision.state
        if summing and decision.outcome in ("accepted", "revised"):
            assert decision.state is not None
            builder.add_summed(decision.state)
        else:
            builder.add(decision.entries)
        if decision.outcome in ("accepted", "revised") and p.response is not None:
            assert decision.state is not None
            previous = decision.state.previous if decision.outcome == "revised" else None
            followup = followup_of(p.response, previous, now, followup_max_age)
            if followup is not None:
                plan.followups.append(followup)
    if records:
        plan.last_offset = records[-1][0]
        plan.partials = builder.records(plan.last_offset)
        plan.summed = builder.summed
    return plan
