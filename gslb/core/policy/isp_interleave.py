"""isp_interleave: one address per ISP in turn, the leading ISP rotating, nearest tier first.

Rule: the candidates are cut into tiers: when a step before this one ordered them by place
(proximity, topology, cost), each run of consecutive candidates at one site is a tier;
otherwise all of them are one tier. Tiers keep their order, so the nearest site still leads.
Inside a tier the candidates are grouped by ISP (the member's `isp`, or the zone's `isps` CIDR
table), keeping their order inside each group; the ISPs are taken in order of first
appearance, rotated left by `slot mod k` (k ISPs in the tier), and the tier takes one address
from each ISP in turn until all are used. So inside a tier the first j addresses span
min(j, k) ISPs, and over k consecutive answers each ISP leads once. Members of no known ISP
form one more group. Addresses whose ISP path is reported down (globally, for the member's
site, or on the member's own probes) go after all the tiers, still interleaved, or are
dropped when the pool's `isp_down` is `drop`.

Origin: Kent England's cross-CIDR round robin (*To Be Multihomed*): a client that tries the
addresses in order tries another ISP at each attempt, so one ISP's failure costs it one retry;
path state per SCTP multihoming (paths fail independently, so each is watched).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from gslb.core.policy import BLIND, Candidates, Context, Input, Precision
from gslb.core.policy.cost import path_down

if TYPE_CHECKING:
    from gslb.core.pools import Member, Pool

FILTERS = False  # with `isp_down: drop` it drops, but only what `cost` would call unreachable
PLACE_STEPS = frozenset({"proximity", "topology", "cost"})  # steps that order by where


def reads(pool: Pool) -> frozenset[Input]:
    return frozenset({"paths"})


def precision(pool: Pool) -> Precision:
    return BLIND


def tiers(candidates: Candidates, ctx: Context) -> list[list[Member]]:
    """The candidates cut where the site changes, if an earlier step ordered them by place."""
    if not PLACE_STEPS.intersection(ctx.before):
        return [list(candidates)] if candidates else []
    out: list[list[Member]] = []
    for m in candidates:
        site = m.site.name if m.site else None
        if out and (out[-1][0].site.name if out[-1][0].site else None) == site:
            out[-1].append(m)
        else:
            out.append([m])
    return out


def groups(candidates: list[Member], ctx: Context) -> tuple[list[list[Member]], list[Member]]:
    """(ISP groups whose path is up, in first-appearance order; members on a path down)."""
    by_isp: dict[str | None, list[Member]] = {}
    down: list[Member] = []
    for m in candidates:
        if path_down(m, ctx):
            down.append(m)
        else:
            by_isp.setdefault(m.isp, []).append(m)
    return list(by_isp.values()), down


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    ordered: list[Member] = []
    broken: list[Member] = []
    orders: list[str] = []
    for tier in tiers(candidates, ctx):
        up, down = groups(tier, ctx)
        broken += down
        if up:
            k = ctx.slot % len(up)
            up = up[k:] + up[:k]
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


def period(candidates: Candidates, ctx: Context) -> int:
    """The ISP count; in tiers, a multiple of every tier's (a tier has at most as many)."""
    k = len({m.isp for m in candidates if not path_down(m, ctx)})
    if not PLACE_STEPS.intersection(ctx.before):
        return max(1, k)
    return math.lcm(*range(1, k + 1)) if k else 1


def _interleave(groups: list[list[Member]]) -> list[Member]:
    out: list[Member] = []
    depth = max((len(g) for g in groups), default=0)
    for i in range(depth):
        for group in groups:
            if i < len(group):
                out.append(group[i])
    return out
