"""isp_interleave: one address per ISP in turn, the leading ISP rotating between answers.

Rule: the candidates are grouped by ISP (the member's `isp`, or the zone's `isps` CIDR table),
keeping their order inside each group; the ISPs are taken in order of first appearance,
rotated left by `slot mod k` (k ISPs), and the answer takes one address from each ISP in turn
until all are used. So the first j addresses of any answer span min(j, k) ISPs, and over k
consecutive answers each ISP leads once. Members of no known ISP form one more group.
An ISP whose path is reported down (globally, for the member's site, or on the member's own
probes) goes after all the others, still interleaved, or is dropped when the pool's
`isp_down` is `drop`.

Origin: Kent England's cross-CIDR round robin (*To Be Multihomed*): a client that tries the
addresses in order tries another ISP at each attempt, so one ISP's failure costs it one retry;
path state per SCTP multihoming (paths fail independently, so each is watched).
"""

from __future__ import annotations

from gslb.core.policy import Candidates, Context
from gslb.core.policy.cost import path_down
from gslb.core.pools import Member

ROTATES = True


def groups(candidates: Candidates, ctx: Context) -> tuple[list[list[Member]], list[list[Member]]]:
    """(ISP groups that are up, ISP groups with a path down), each in first-appearance order."""
    by_isp: dict[str | None, list[Member]] = {}
    for m in candidates:
        by_isp.setdefault(m.isp, []).append(m)
    up: list[list[Member]] = []
    down: list[list[Member]] = []
    for group in by_isp.values():
        healthy = [m for m in group if not path_down(m, ctx)]
        broken = [m for m in group if path_down(m, ctx)]
        if healthy:
            up.append(healthy)
        if broken:
            down.append(broken)
    return up, down


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    up, down = groups(candidates, ctx)
    if up:
        k = ctx.slot % len(up)
        up = up[k:] + up[:k]
    ordered = _interleave(up)
    if down:
        isps = ", ".join(str(g[0].isp) for g in down)
        if ctx.pool.isp_down == "drop":
            ctx.note(f"path down for {isps}: dropped")
        else:
            ctx.note(f"path down for {isps}: moved last")
            ordered += _interleave(down)
    if up:
        ctx.note(f"ISP order {', '.join(str(g[0].isp) for g in up)} (slot {ctx.slot})")
    return tuple(ordered)


def period(candidates: Candidates, ctx: Context) -> int:
    return max(1, len(groups(candidates, ctx)[0]))


def _interleave(groups: list[list[Member]]) -> list[Member]:
    out: list[Member] = []
    depth = max((len(g) for g in groups), default=0)
    for i in range(depth):
        for group in groups:
            if i < len(group):
                out.append(group[i])
    return out
