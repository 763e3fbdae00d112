"""cost: RFC 2391's distributed form, `cost(client, member) x load`, infinite when unreachable.

Rule: each candidate scores `(1 + distance_km / 1000) x (1 + sessions / weight)`, lowest
first: distance from the client to the member's site (1000 km count as one more unit of cost;
without a client location or a site the distance term is 1), times its weighted load (see
least_load). A member whose ISP path is reported down (for its site, globally, or on its own
probes) costs infinity: it goes last, behind every reachable member.

Origin: RFC 2391 §4 (load sharing for distributed servers: cost-weighted least load, cost
infinite for an unreachable host).
"""

from __future__ import annotations

import math

from gslb.core.location import distance_km
from gslb.core.policy import Candidates, Context
from gslb.core.pools import Member

CLIENT = "geo"


def path_down(m: Member, ctx: Context) -> bool:
    site = m.site.name if m.site else None
    return ctx.state.path_down(m.isp, site) or (
        m.isp is not None and m.isp in ctx.state.member(m.key).paths_down
    )


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    location = ctx.client.location if ctx.client else None

    def cost(m: Member) -> float:
        if path_down(m, ctx):
            return math.inf
        distance = 1.0
        if location and location.lat is not None and location.lon is not None and m.site:
            distance += distance_km(location.lat, location.lon, m.site.lat, m.site.lon) / 1000
        return distance * (1.0 + ctx.sessions(m) / m.weight)

    ordered = sorted(candidates, key=cost)
    ctx.note(lambda: "cost: " + ", ".join(f"{m.address}={cost(m):.2f}" for m in ordered))
    return tuple(ordered)
