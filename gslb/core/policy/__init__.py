"""Policy steps (DESIGN.md §6): ordered candidates in, ordered candidates out.

Every step is a module of its own that satisfies `Step`: a pure, stable `apply(candidates,
ctx)` whose docstring states its rule, and declarations of what else the answer path must
know about it (how many rotation slots it cycles through, what of the world it reads, how much
of the client address its decision depends on). `STEPS` maps the names used in zone files to
them, and the zone schema takes its step names from it: adding a policy is one new module and
one line here.

Step modules import the pool types only for annotations: the schema (gslb.core.pooldoc)
imports this registry, and the pools import the schema.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from gslb.core.location import ClientInfo
from gslb.core.state import NO_LOAD, ClusterState, Load

if TYPE_CHECKING:
    from gslb.core.pools import Member, Pool

Candidates = tuple["Member", ...]
Input = Literal["client", "health", "load", "paths", "rtt"]
# How a step orders: by where the members are ("place"), by choosing which one leads
# ("lead"), or not at all (None: it filters or truncates).
Order = Literal["place", "lead"] | None


@dataclass(frozen=True, slots=True)
class Precision:
    """How much of the client a decision depends on, which is the EDNS Client Subnet scope
    and the reply-cache key: its GeoIP record's network (`geo`), and at least this many
    leading bits of its address."""

    geo: bool = False
    ipv4: int = 0
    ipv6: int = 0

    def __or__(self, other: Precision) -> Precision:
        return Precision(
            self.geo or other.geo, max(self.ipv4, other.ipv4), max(self.ipv6, other.ipv6)
        )

    @property
    def blind(self) -> bool:
        return not (self.geo or self.ipv4 or self.ipv6)


BLIND = Precision()
GEO = Precision(geo=True)


class Step(Protocol):
    """What a step module declares besides its rule."""

    # Whether `apply` may drop candidates for reasons that are not the client's (health,
    # priority groups, unreachable paths): the rotation periods of the steps after it are
    # counted on what it keeps.
    FILTERS: bool
    # See `Order`: after a "place" step the "lead" steps share inside each site, and a "lead"
    # step's leader is kept by isp_interleave.
    ORDERS: Order
    # Whether it reads the members' `weight` (a pool with weights and no such step is
    # probably not what was meant: gslb.core.advice says so).
    WEIGHS: bool

    def apply(self, candidates: Candidates, ctx: Context) -> Candidates: ...

    def period(self, candidates: Candidates, ctx: Context) -> int:
        """Rotation slots after which its answers repeat (1: it does not rotate)."""
        ...

    def reads(self, pool: Pool) -> frozenset[Input]:
        """What of the client and the cluster state its answers for `pool` depend on."""
        ...

    def precision(self, pool: Pool) -> Precision: ...


@dataclass(frozen=True, slots=True)
class Context:
    pool: Pool
    state: ClusterState
    client: ClientInfo | None = None
    slot: int = 0  # the rotation slot this query drew (DESIGN.md §9)
    client_key: bytes = b""  # the decision key, for steps that hash the client
    notes: list[str] | None = None  # filled only when explaining
    before: tuple[str, ...] = ()  # the steps of the pool applied before this one
    # What the steps of one decision found out about its members (whether a path is down),
    # shared by them: several steps ask the same of the same members.
    memo: dict[int, bool] = field(default_factory=dict, compare=False)  # by id(member)

    def note(self, text: str | Callable[[], str]) -> None:
        if self.notes is not None:
            self.notes.append(text if isinstance(text, str) else text())

    def load(self, member: Member) -> Load:
        return self.state.load.get(member.address, NO_LOAD)

    def sessions(self, member: Member) -> float:
        """RFC 2391 load: the agent's session count when fresh (weighted by session type
        when the pool gives `session_weights` and the agent counts per port), else the
        answers this cluster led with the member in the recent window, which stand in for
        new sessions."""
        load = self.load(member)
        if load.sessions is None:
            return self.state.answers.get(member.key, 0.0)
        weights = self.pool.session_weights
        if weights and load.ports:
            by_port = dict(weights)
            return sum(n * by_port.get(port, 1.0) for port, n in load.ports)
        return load.sessions


def still(candidates: Candidates, ctx: Context) -> int:
    """The period of a step that does not rotate."""
    return 1


def placed(ctx: Context) -> bool:
    """Whether a step before this one ordered by place (proximity, topology, cost). After
    one, the steps that share the lead work inside each site's run of candidates and keep
    the runs in order: sharing must not undo "nearest first" (a London client led by New
    York because the rotation came round)."""
    return _ordered_by(ctx, "place")


def led(ctx: Context) -> bool:
    """Whether a step before this one chose the leader (round_robin, weighted, sticky,
    fastest, least_load, least_traffic, isp_interleave)."""
    return _ordered_by(ctx, "lead")


def _ordered_by(ctx: Context, order: Order) -> bool:
    return any(order == STEPS[name].ORDERS for name in ctx.before)


def tiers(candidates: Candidates, ctx: Context) -> list[Candidates]:
    """The candidates cut where the site changes, after a place step; else one tier."""
    if not placed(ctx):
        return [candidates] if candidates else []
    out: list[list[Member]] = []
    for m in candidates:
        # Sites are shared objects (one per site of a zone): identity is the quick test.
        if out and (out[-1][0].site is m.site or out[-1][0].site == m.site):
            out[-1].append(m)
        else:
            out.append([m])
    return [tuple(t) for t in out]


def by_tier(
    candidates: Candidates, ctx: Context, order: Callable[[Candidates], Candidates]
) -> Candidates:
    """`order` applied inside each tier, the tiers kept in order."""
    parts = tiers(candidates, ctx)
    if len(parts) <= 1:
        return order(candidates)
    return tuple(m for part in parts for m in order(part))


def tier_period(candidates: Candidates, ctx: Context, period: Callable[[Candidates], int]) -> int:
    """A period that brings `period` round in every tier: tiers are the sites' groups."""
    if not placed(ctx):
        return period(candidates)
    sites: dict[object, list[Member]] = {}
    for m in candidates:
        sites.setdefault(m.site, []).append(m)
    return math.lcm(*(period(tuple(g)) for g in sites.values())) if sites else 1


def _steps() -> dict[str, Step]:
    from gslb.core.policy import (
        cost,
        failover,
        fastest,
        health,
        isp_interleave,
        least_load,
        least_traffic,
        limit,
        proximity,
        round_robin,
        sticky,
        topology,
        weighted,
    )

    return {
        "health": health,
        "failover": failover,
        "proximity": proximity,
        "topology": topology,
        "round_robin": round_robin,
        "weighted": weighted,
        "least_load": least_load,
        "least_traffic": least_traffic,
        "fastest": fastest,
        "cost": cost,
        "sticky": sticky,
        "isp_interleave": isp_interleave,
        "limit": limit,
    }


STEPS: dict[str, Step] = _steps()


def precision(pool: Pool) -> Precision:
    """What of the client a pool's answers depend on."""
    out = BLIND
    for name in pool.steps:
        out = out | STEPS[name].precision(pool)
    return out


def reads(pool: Pool) -> frozenset[Input]:
    out: frozenset[Input] = frozenset()
    for name in pool.steps:
        out = out | STEPS[name].reads(pool)
    return out
