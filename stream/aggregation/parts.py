"""The final step: per-partition parts of the series that span partitions, and their merge.

Agents and customers are spread over the stage-2 partitions by their own ids, so two kinds
of series need every partition:
  - the agent gauges: the top K agents by responses in each window (ties broken by id),
    every other agent folded into "other";
  - the SCI: customers per band in each window, and the share of secure ones.
Each partition's owner sums its share up in a *part* (per window: its own top K agents with
their summary vectors, the merged vector of all its other agents as member "other", and its
customers per SCI band), and the owner of the final partition merges the latest part of
every partition:
  - agents: the union of the candidates, "other" = the sum of the parts' "other";
    exact, because an agent in the global top K is in its own partition's top K (every agent
    lives on one partition, and all rank by the same order), and the exporter's fold
    (stream.exporter.collector) then picks the global top K and adds the rest to "other";
  - SCI: band counts add up; secure ratio = secure / all customers of the window.
A part is a function of its partition's state at one time: re-sending, replaying or
reordering parts of one partition cannot double anything, the latest one wins.

Vectors travel sparse ([slot, value, ...]); the input of the final step is one part per
partition and per refresh, never per event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from stream.aggregation.group_sums import MemberBucket, ranked
from stream.kpi import sci, summary
from stream.kpi.segments import OTHER, Segment
from stream.kpi.windows import WINDOWS


class Part(msgspec.Struct, array_like=True):
    """One stage-2 partition's share of the spanning series, at time `at`."""

    partition: int
    at: float
    edges: list[int]  # each window's current bucket at `at`: the part holds for these
    agents: dict[str, list[tuple[str, list[float]]]]  # window -> [(agent id or OTHER, sparse)]
    sci: dict[str, list[int]]  # window -> customers per band, in sci.BANDS order
    layout: int = summary.LAYOUT  # of the agents' sparse slots (stream.kpi.summary)
    # The sender's consumer generation: a part from an older generation than the one kept is
    # a fenced worker's (it computed it from state it no longer owns) and is ignored.
    generation: int = 0

    def __post_init__(self) -> None:
        if self.layout > summary.LAYOUT:
            summary.upgrade([], self.layout)  # refuses a newer layout with its reason


def edges_at(now: float) -> list[int]:
    return [w.bucket(now) for w in WINDOWS]


def sparse(vector: list[float]) -> list[float]:
    out: list[float] = []
    for slot, value in enumerate(vector):
        if value:
            out += (slot, int(value) if value == int(value) else value)
    return out


def dense(values: list[float]) -> list[float]:
    vector = summary.initialize()
    summary.add(vector, values)
    return vector


def agent_candidates(
    agents: Mapping[str, MemberBucket], top_k: int
) -> dict[str, list[tuple[str, list[float]]]]:
    """Per window: the top `top_k` agents by responses (ties by id) and the rest as OTHER."""
    out = {}
    for window, members in agents.items():
        if members.names:
            out[window] = window_candidates(members, top_k)
    return out


def window_candidates(members: MemberBucket, top_k: int) -> list[tuple[str, list[float]]]:
    top, rest = ranked(members, top_k)
    chosen = [(members.names[i], sparse(members.matrix[i].tolist())) for i in top]
    if rest:
        chosen.append((OTHER, sparse(members.matrix[rest].sum(axis=0).tolist())))
    return chosen


def make_part(
    partition: int,
    now: float,
    agents: Mapping[str, MemberBucket],
    sci_counts: dict[str, list[int]],
    top_k: int,
) -> Part:
    """`agents`: per window, the partition's agents (stream.aggregation.group_sums);
    `sci_counts`: per window, its customers per band (sci.BANDS order)."""
    return Part(partition, now, edges_at(now), agent_candidates(agents, top_k), sci_counts)


def merge_agents(parts: Iterable[Part]) -> dict[tuple[str, str], list[float]]:
    """(agent segment, window) -> vector over every part; "a|other" sums the parts' rests."""
    merged: dict[tuple[str, str], list[float]] = {}
    for part in parts:
        for window, agents in part.agents.items():
            for agent_id, values in agents:
                key = (Segment("a", agent_id=agent_id).key(), window)
                if key in merged:
                    summary.add(merged[key], values)  # only OTHER: an agent has one partition
                else:
                    merged[key] = dense(values)
    return merged


def merge_sci(parts: Iterable[Part]) -> dict[str, sci.Sci]:
    """Window -> SCI over the customers of every part."""
    counts: dict[str, list[int]] = {}
    for part in parts:
        for window, bands in part.sci.items():
            total = counts.setdefault(window, [0] * len(sci.BANDS))
            for i, n in enumerate(bands):
                total[i] += n
    out = {}
    for window, bands in counts.items():
        customers = dict(zip(sci.BANDS, bands, strict=True))
        out[window] = sci.Sci(customers, customers["secure"] / sum(bands))
    return out


encode_part = msgspec.msgpack.Encoder().encode
decode_part = msgspec.msgpack.Decoder(Part).decode
