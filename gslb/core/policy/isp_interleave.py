"""isp_interleave: one address per ISP in turn, the leading ISP rotating, nearest tier first.

Rule: the candidates are cut into tiers: when a step before this one ordered them by place
(proximity, topology, cost), each run of consecutive candidates at one site is a tier;
otherwise all of them are one tier. Tiers keep their order, so the nearest site still leads.
Inside a tier the candidates are grouped by ISP (the member's `isp`, or the zone's `isps` CIDR
table) and the tier takes one address from each ISP in turn until all are used, so inside a
tier the first j addresses span min(j, k) ISPs (k ISPs in the tier). When a step before this
one shares the lead (round_robin, weighted, sticky, fastest, least_load, least_traffic), its
leader stays first: the ISPs go in order of first appearance and each group keeps its order.
Otherwise this step shares the lead itself, by weight: over a cycle of slots (the tier's
summed weights) each ISP leads in proportion to its members' summed weights (a smooth
weighted round robin over the ISPs), and inside it each member in proportion to its own, so
every member leads `weight / sum(weights)` of the answers whatever the ISPs' sizes, and the
other ISPs follow the leading one in their order of first appearance. Members of no known ISP
form one more group. Addresses whose ISP path is reported down (globally, for the member's
site, or on the member's own probes) go after all the tiers, still interleaved, or are
dropped when the pool's `isp_down` is `drop`.

Origin: Kent England's cross-CIDR round robin (*To Be Multihomed*): a client that tries the
addresses in order tries another ISP at each attempt, so one ISP's failure costs it one retry;
path state per SCTP multihoming (paths fail independently, so each is watched).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gslb.core.policy import (
    BLIND,
    Candidates,
    Context,
    Input,
    Order,
    Precision,
    led,
    tier_period,
    tiers,
)
from gslb.core.policy.cost import path_down
from gslb.core.policy.weighted import sequence

if TYPE_CHECKING:
    from gslb.core.pools import Member, Pool

FILTERS = False  # with `isp_down: drop` it drops, but only what `cost` would call unreachable
ORDERS: Order = "lead"
WEIGHS = True


def reads(pool: Pool) -> frozenset[Input]:
    return frozenset({"paths"})


def precision(pool: Pool) -> Precision:
    return BLIND


def groups(candidates: list[Member], ctx: Context) -> tuple[list[list[Member]], list[Member]]:
    """(ISP groups whose path is up, in first-appearance order; members on a path down)."""
    cut = [path_down(m, ctx) for m in candidates]
    up = [m for m, c in zip(candidates, cut, strict=True) if not c]
    return groups_of(up), [m for m, c in zip(candidates, cut, strict=True) if c]


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    ordered: list[Member] = []
    broken: list[Member] = []
    orders: list[str] = []
    rotate = not led(ctx)
    for tier in tiers(candidates, ctx):
        up, down = groups(list(tier), ctx)
        broken += down
        if up:
            if rotate:
                up = _rotated(up, ctx.slot)
            ordered += _interleave(up)
            orders.append(", ".join(str(g[0].isp) for g in up))
    if broken:
        isps = ", ".join(sorted({str(m.isp) for m in broken}))
        if ctx.pool.isp_down == "drop":
            ctx.note(f"path down for {isps}: dropped")
        else:
            ctx.note(f"path down for {isps}: moved last")
            ordered += _interleave(groups_of(broken))
    if orders:
        ctx.note(f"ISP order {' | '.join(orders)} (slot {ctx.slot})")
    return tuple(ordered)


def groups_of(members: list[Member]) -> list[list[Member]]:
    by_isp: dict[str | None, list[Member]] = {}
    for m in members:
        by_isp.setdefault(m.isp, []).append(m)
    return list(by_isp.values())


def _rotated(up: list[list[Member]], slot: int) -> list[list[Member]]:
    """The ISP groups with this slot's leading ISP first and each group led by its member
    whose turn it is: a smooth weighted cycle over the groups' summed weights picks the ISP,
    and the group's own weighted cycle, read at how often the group has led, the member."""
    cycle = sequence(tuple(sum(m.weight for m in g) for g in up))
    position = slot % len(cycle)
    lead = cycle[position]
    out = []
    for i, group in enumerate(up):
        inner = sequence(tuple(m.weight for m in group))
        turn = inner[cycle[:position].count(i) % len(inner)]
        out.append(group[turn:] + group[:turn])
    return out[lead:] + out[:lead]


def period(candidates: Candidates, ctx: Context) -> int:
    """Slots after which every tier's weighted cycle comes round: its summed weights."""
    if led(ctx):
        return 1

    def cycle(tier: Candidates) -> int:
        up = [m for m in tier if not path_down(m, ctx)]
        return len(sequence(tuple(m.weight for m in up))) if up else 1

    return tier_period(candidates, ctx, cycle)


def _interleave(groups: list[list[Member]]) -> list[Member]:
    out: list[Member] = []
    depth = max((len(g) for g in groups), default=0)
    for i in range(depth):
        for group in groups:
            if i < len(group):
                out.append(group[i])
    return out
