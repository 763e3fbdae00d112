"""cost: RFC 2391's distributed form, `cost(client, member) x load`; unreachable is infinite.

Rule: a candidate whose ISP path is reported down (for its site, globally, or on its own
probes) has infinite cost and is left out; if that leaves none, all are kept (some answer
beats none). Each other candidate scores `access x (1 + sessions / weight)`, lowest first: its
weighted load (see least_load) times the cost of access from the client to its site, which
is the routing cost of the zone's first `costs` rule matching the client (by country,
continent, AS number or network) when it lists the site, else `1 + distance_km / 1000` (1000 km
count as one more unit; without a client location or a site, 1).

Origin: RFC 2391 §5.2, algorithm 1 (the product of cost and session load; the selector "would
need to consult the routing tables ... to find the cost of accessing a server", which the
`costs` table stands for; "When a server is not accessible due to network failure, the cost
of access is set to infinity and hence no further load can be assigned to that server").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gslb.core.location import distance_km
from gslb.core.policy import Candidates, Context, Input, Order, Precision, still
from gslb.core.policy.topology import cidr_bits, first_match

if TYPE_CHECKING:
    from gslb.core.pools import Member, Pool

FILTERS = True  # unreachable members are dropped whoever the client is
ORDERS: Order = "place"
WEIGHS = True
period = still


def reads(pool: Pool) -> frozenset[Input]:
    return frozenset({"client", "load", "paths"})


def precision(pool: Pool) -> Precision:
    """The GeoIP network, and the bits of the client address its cost rules' CIDRs need."""
    return Precision(True, *cidr_bits(c.match for c in pool.costs))


def path_down(m: Member, ctx: Context) -> bool:
    if m.isp is None:
        return False
    found = ctx.memo.get(id(m))
    if found is None:
        site = m.site.name if m.site else None
        found = ctx.memo[id(m)] = ctx.state.path_down(m.isp, site) or (
            m.isp in ctx.state.member(m.key).paths_down
        )
    return found


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    location = ctx.client.location if ctx.client else None
    table = first_match(ctx.pool.costs, ctx.client, lambda rule: rule.match)
    routing = dict(table.costs) if table is not None else {}
    reachable = tuple(m for m in candidates if not path_down(m, ctx))
    if len(reachable) < len(candidates):
        if reachable:
            ctx.note(
                lambda: (
                    "unreachable (infinite cost), left out: "
                    + ", ".join(m.address for m in candidates if m not in reachable)
                )
            )
        else:
            ctx.note("every member is unreachable: keeping them all")
            reachable = candidates

    def cost(m: Member) -> float:
        distance = 1.0
        if m.site is not None and m.site.name in routing:
            distance = routing[m.site.name]
        elif (
            location
            and location.lat is not None
            and location.lon is not None
            and m.site
            and m.site.lat is not None
            and m.site.lon is not None
        ):
            distance += distance_km(location.lat, location.lon, m.site.lat, m.site.lon) / 1000
        return distance * (1.0 + ctx.sessions(m) / m.weight)

    ordered = sorted(reachable, key=cost)
    ctx.note(lambda: "cost: " + ", ".join(f"{m.address}={cost(m):.2f}" for m in ordered))
    return tuple(ordered)
