"""Stage 1 over a batch, pure: parse, route, decide each id once, group the deltas.

One batch holds consecutive records of one source partition. The plan says what the agent
must send (partials per stage-2 partition, follow-ups, dead letters, re-published mis-keyed
messages) and which id states to write, one per id however often it occurs in the batch.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from stream.aggregation.dedupe import Decision
from stream.aggregation.followups import followup_of
from stream.aggregation.messages import Entry, IdState
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


@dataclass
class Stage1Plan:
    rejected: list[tuple[int, Rejected]] = field(default_factory=list)  # (index, why)
    misrouted: list[tuple[int, bytes, int]] = field(default_factory=list)  # (index, id, home)
    partials: dict[int, list[Entry]] = field(default_factory=lambda: defaultdict(list))
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
) -> Stage1Plan:
    """Plan a batch of `(offset, value)` records of source `src` ("topic:partition").

    `load_states` reads the ids' stored states (once, for every id of the batch), `home_of`
    gives an id's partition, `owner_of` a segment's stage-2 partition. A message whose id
    lives in another partition is re-published there: every message of an id then comes
    from one partition in one order, which a replay after a crash repeats.
    """
    plan = Stage1Plan()
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
        for entry in decision.entries:
            plan.partials[owner_of(entry.segment)].append(entry)
        if decision.outcome in ("accepted", "revised") and p.response is not None:
            assert decision.state is not None
            previous = decision.state.previous if decision.outcome == "revised" else None
            followup = followup_of(p.response, previous, now, followup_max_age)
            if followup is not None:
                plan.followups.append(followup)
    return plan
