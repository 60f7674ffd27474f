"""Stage 1 over a batch, pure: parse, route, decide each id once, sum the deltas.

One batch holds consecutive records of one source partition. The plan says what the agent
must send (partials per stage-2 partition, follow-ups, dead letters, re-published mis-keyed
messages) and which id states to write, one per id however often it occurs in the batch.

Pre-aggregation (before the keyed hop to stage 2): the entries of a batch's new decisions are
summed per (segment, 15 s bucket), which is one bucket of every window, and tagged with the
batch's last offset L. A queue or agent that gets half of all answers then costs stage 2 one
entry per batch, not one per answer. Stage 2 applies an entry once per key and source (its
offset above the key's mark), so summing is only safe for offsets no earlier attempt may
have sent, under another cut: before sending a batch's partials, the agent records "every
offset up to L may have been sent" (the in-flight mark, `inflight_until`), and a batch that
starts at or below the mark (a re-read after a crash) goes one entry per message, as
replays always do (stream/aggregation/dedupe.py).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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
from stream.models import SurveyResponse
from stream.models.followup import Followup


@dataclass(frozen=True, slots=True)
class Parsed:
    """A decoded stage-1 message: its id, and how to decide it against the id's state."""

    key: bytes
    decide: Callable[[IdState | None, str, int], Decision]
    response: SurveyResponse | None = None


Parser = Callable[[bytes, TimeLimits], Parsed | Rejected]


SUM_BUCKET = 15  # seconds: the finest window bucket, which every coarser one contains
Sum = tuple[float, list[float], dict[int, float] | None]


def _sparse(slots: dict[int, float]) -> list[float]:
    out: list[float] = []
    for slot in sorted(slots):
        out += (slot, slots[slot])
    return out


class PartialsBuilder:
    """The entries of one batch bound for each stage-2 partition: one per message (`add`),
    or summed per (segment, 15 s bucket) (`add_summed`).

    Sums of one *generation* travel in one record per partition, tagged with the offset of
    the generation's last message: a record holds every sum that reaches a state record (two
    15 s buckets of one 12 h bucket, the members of one group), which split apart would find
    the state marked by the first half. A generation ends when a partition's sums reach
    `max_entries` (after a whole message: its removal and addition stay together), so a record
    stays far below the broker's 1 MB limit; the next generation has a higher tag.
    """

    def __init__(
        self, owner_of: Callable[[str], int], src: str, max_entries: int = MAX_ENTRIES
    ) -> None:
        self.owner_of = owner_of
        self.src = src
        self.max_entries = max_entries
        self.single: dict[int, list[Entry]] = defaultdict(list)
        # dest -> (segment, 15 s bucket) -> (t, first delta, merged slots once a second came)
        self.sums: dict[int, dict[tuple[str, int], Sum]] = defaultdict(dict)
        self.sealed: dict[int, list[Partial]] = defaultdict(list)

    def add(self, entries: list[Entry]) -> None:
        for entry in entries:
            self.single[self.owner_of(entry.segment)].append(entry)

    def add_summed(self, entries: list[Entry], offset: int) -> None:
        """Add one message's entries (at `offset`) to the current generation's sums."""
        full = False
        for entry in entries:
            sums = self.sums[self.owner_of(entry.segment)]
            key = (entry.segment, math.floor(entry.t / SUM_BUCKET))
            found = sums.get(key)
            if found is None:
                # The first delta of a key is kept as it is: a backfill spread over days
                # rarely meets a key twice in one batch, and pays no merging then.
                sums[key] = (entry.t, entry.delta, None)
                full = full or len(sums) >= self.max_entries
                continue
            t, first, slots = found
            if slots is None:
                slots = {int(first[i]): first[i + 1] for i in range(0, len(first), 2)}
                sums[key] = (t, first, slots)
            delta = entry.delta
            for i in range(0, len(delta), 2):
                slot = int(delta[i])
                slots[slot] = slots.get(slot, 0.0) + delta[i + 1]
        if full:
            self.seal(offset)

    def seal(self, offset: int) -> None:
        """End the current generation: its sums become one record per partition at `offset`."""
        for dest, sums in self.sums.items():
            if sums:
                entries = [
                    Entry(offset, segment, t, first if slots is None else _sparse(slots))
                    for (segment, _), (t, first, slots) in sums.items()
                ]
                self.sealed[dest].append(Partial(self.src, entries))
        self.sums.clear()

    @property
    def summed(self) -> bool:
        return bool(self.sealed) or any(self.sums.values())

    def records(self, last_offset: int) -> dict[int, list[Partial]]:
        """Per stage-2 partition, its partials in sending order: the one-per-message entries
        first (their offsets are below every generation's tag), then the generations."""
        self.seal(last_offset)
        out: dict[int, list[Partial]] = {}
        for dest in self.single.keys() | self.sealed.keys():
            single = split_partial(Partial(self.src, self.single.get(dest, [])), self.max_entries)
            records = [r for r in single if r.entries] + self.sealed.get(dest, [])
            if records:
                out[dest] = records
        return out


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
    home_of: Callable[[bytes], int],
    owner_of: Callable[[str], int],
    followup_max_age: float = 48 * 3600.0,
    inflight_until: int = -1,
) -> Stage1Plan:
    """Plan a batch of `(offset, value)` records of source `src` ("topic:partition").

    `load_states` reads the ids' stored states (once, for every id of the batch), `home_of`
    gives an id's partition, `owner_of` a segment's stage-2 partition. A message whose id
    lives in another partition is re-published there: every message of an id then comes
    from one partition in one order, which a replay after a crash repeats. A batch starting
    at or before `inflight_until` (the in-flight mark) sends one entry per message.
    """
    plan = Stage1Plan()
    builder = PartialsBuilder(owner_of, src)
    # A batch that reaches back into the in-flight range sends nothing summed: its sums could
    # overlap what an earlier attempt sent summed under another cut. Replays (below) never
    # sum: their entries are no-ops, which a lost record of them must stay.
    summing = bool(records) and records[0][0] > inflight_until
    now = limits.now.timestamp()
    parsed: list[tuple[int, Parsed]] = []
    for index, (offset, value) in enumerate(records):
        outcome = guarded(parse, value, limits)
        if isinstance(outcome, Rejected):
            plan.rejected.append((index, outcome))
            continue
        home = home_of(outcome.key)
        if home != partition:
            plan.misrouted.append((index, outcome.key, home))
            continue
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
            builder.add_summed(decision.entries, offset)
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
