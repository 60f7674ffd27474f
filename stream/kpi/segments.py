"""Segments a response counts in, as compact string keys.

A response with channel c and queue q counts in (c, q), (c, all), (all, q) and (all, all);
a response without a queue has queue "unassigned". With an agent_id it also counts in that
agent's segment (agent-level KPIs), and with a customer_id in that customer's segment (SCI).
Lifecycle events count in the single "churn" segment.

Label cardinality: queue-level segments of one channel, and agent segments, are kept as
*members* of a group ("q|<channel>|*", "a|<shard>|*"): stage 2 stores a group's members of one
time bucket in one record and caps how many it keeps (the rest add up as member "other"), so a
flood of distinct queue names or agent ids cannot grow state or series without bound. Agents
are spread over `shards` groups by their own id (one shard per stage-2 partition), so no
partition holds every agent.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

ALL = "all"
UNASSIGNED = "unassigned"
CHURN = "churn"
OTHER = "other"  # the member that holds everything beyond a group's cap
SEP = "|"
MEMBERS = "*"


@dataclass(frozen=True, slots=True)
class Segment:
    kind: str  # "q" (channel x queue), "a" (agent), "c" (customer) or "churn"
    channel: str = ALL
    queue: str = ALL
    agent_id: str = ""  # the agent's or, for kind "c", the customer's id

    def key(self) -> str:
        if self.kind == "q":
            return SEP.join(("q", self.channel, self.queue))
        if self.kind in ("a", "c"):
            return SEP.join((self.kind, self.agent_id))
        return CHURN

    @classmethod
    def parse(cls, key: str) -> Segment:
        parts = key.split(SEP, 2)
        if parts[0] == "q":
            return cls("q", parts[1], parts[2])
        if parts[0] in ("a", "c"):
            return cls(parts[0], agent_id=key[2:])
        return cls(CHURN)


CUSTOMER_PREFIX = "c" + SEP  # a customer's segment, and so its bucket keys, start with it


def is_customer(segment: str) -> bool:
    return segment.startswith(CUSTOMER_PREFIX)


def shard_of(member_id: str, shards: int) -> int:
    """The shard (stage-2 partition) of an agent or customer id: stable across processes."""
    return zlib.crc32(member_id.encode()) % shards


def agent_group(shard: int) -> str:
    return f"a{SEP}{shard}{SEP}{MEMBERS}"


def group_of(segment: str, shards: int = 1) -> tuple[str, str] | None:
    """(group, member) of a capped segment; None for the rollups, customers and churn."""
    if segment.startswith("a" + SEP):
        agent_id = segment[2:]
        return agent_group(shard_of(agent_id, shards)), agent_id
    if segment.startswith("q" + SEP):
        _, channel, queue = segment.split(SEP, 2)
        if queue != ALL:
            return SEP.join(("q", channel, MEMBERS)), queue
    return None


def is_group(segment: str) -> bool:
    return segment.endswith(SEP + MEMBERS)


def member_segment(group: str, member: str) -> str:
    """The segment key of one member of `group` (the inverse of `group_of`)."""
    if group.startswith("a" + SEP):
        return "a" + SEP + member
    return group[: -len(MEMBERS)] + member


def group_kind(group: str) -> str:
    """ "q" or "a": which cap applies to the group."""
    return group[0]


def response_segments(
    channel: str, queue: str | None, agent_id: str | None, customer_id: str | None = None
) -> list[str]:
    q = queue or UNASSIGNED
    keys = [
        SEP.join(("q", channel, q)),
        SEP.join(("q", channel, ALL)),
        SEP.join(("q", ALL, q)),
        SEP.join(("q", ALL, ALL)),
    ]
    if agent_id:
        keys.append(SEP.join(("a", agent_id)))
    if customer_id:
        keys.append(SEP.join(("c", customer_id)))
    return keys


def dispatch_segments(channel: str, queue: str | None) -> list[str]:
    return response_segments(channel, queue, None)
