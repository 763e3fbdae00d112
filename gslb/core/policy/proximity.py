"""proximity: nearest site first, spilling over when the nearest site is full.

Rule: candidates are ordered by great-circle distance from the client's location (GeoIP of the
EDNS Client Subnet, else of the resolver) to their site's coordinates, nearest first; members
without a site follow, and without a client location the order is kept.

Capacity spill-over: when the nearest site has a `capacity` (its own, or its members' summed)
and its reported load (sessions, else answers led) passes `SPILL_FROM` (80 %) of it, a
fraction of the answers that grows linearly from 0 there to all of them at capacity (chosen per
client network and rotation slot, so the same clients stay put) leads instead with another
site that has headroom, picked in proportion to `capacity - load`, so the excess spreads over
the next sites instead of cascading onto the single next-nearest one. Without a site with
headroom, the next-nearest site takes it. Starting before the site is full is what keeps it
from going over: the load reported is seconds old, and clients behind resolver caches keep
arriving for a TTL after the answers change.

Held spill-over: after a site loses capacity (it fails, or members or an ISP path of it do),
the shell's controller (gslb.shell.spill) sets the spill fraction of the sites that take the
load at once, to what keeps them at 88 % of their capacity, and trims it slowly from their
load: the state's `spill`. While one is held for the nearest site, it is the fraction spilled.

Origin: "intelligent DNS responses" by proximity to the client's DNS server (*To Be
Multihomed*); RFC 2391 §5.2's cost-weighted distribution for distributed servers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from gslb.core.location import distance_km
from gslb.core.policy import GEO, Candidates, Context, Input, Order, Precision, health
from gslb.core.policy._hash import unit
from gslb.core.policy.cost import path_down
from gslb.core.state import beyond_noise

if TYPE_CHECKING:
    from gslb.core.pools import Member, Pool
    from gslb.core.state import ClusterState

SPILL_GRANULARITY = 20  # rotation slots a spilling pool cycles through: 5 % steps
SPILL_FROM = 0.8  # share of a site's capacity at which its answers start spilling over
SPILL_ALL = 1.0  # share of its capacity at which all of a site's answers spill over
FILTERS = False
ORDERS: Order = "place"
WEIGHS = False


def reads(pool: Pool) -> frozenset[Input]:
    """The client; and load where a capacity is declared (spill-over)."""
    if any(
        m.capacity is not None or (m.site is not None and m.site.capacity is not None)
        for m in pool.members
    ):
        return frozenset({"client", "load", "paths"})
    return frozenset({"client"})


def precision(pool: Pool) -> Precision:
    return GEO


def period(candidates: Candidates, ctx: Context) -> int:
    spilling = overloaded(candidates, ctx) or held_for(ctx.pool.id, ctx)
    return SPILL_GRANULARITY if spilling else 1


def held_for(pool_id: str, ctx: Context) -> bool:
    return bool(ctx.state.spill) and any(key[0] == pool_id for key in ctx.state.spill)


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    location = ctx.client.location if ctx.client else None
    if location is None or location.lat is None or location.lon is None:
        ctx.note("client location unknown: order kept")
        return candidates
    lat, lon = location.lat, location.lon

    known: dict[int, float] = {}  # per site object: members share their site's distance

    def distance(m: Member) -> float:
        site = m.site
        if site is None or site.lat is None or site.lon is None:
            return math.inf
        found = known.get(id(site))
        if found is None:
            found = known[id(site)] = distance_km(lat, lon, site.lat, site.lon)
        return found

    ordered = sorted(candidates, key=distance)
    ctx.note(
        lambda: (
            f"client at ({lat:.2f}, {lon:.2f}): "
            + ", ".join(
                f"{m.address}@{m.site.name if m.site else '-'} {distance(m):.0f} km"
                for m in ordered
            )
        )
    )
    return tuple(_spill(ordered, ctx))


def _sites_in_order(ordered: list[Member]) -> list[str]:
    seen: list[str] = []
    for m in ordered:
        if m.site is not None and m.site.name not in seen:
            seen.append(m.site.name)
    return seen


def site_usage(members: list[Member] | Candidates, site: str, ctx: Context) -> tuple[float, float]:
    """(capacity, load) of a site's candidates: the site's declared capacity, else the sum of
    its members'; 0 when none is declared. Members whose ISP path is down bring no capacity:
    clients cannot reach them (the declared capacity shrinks by their share of the site).
    The load is the members' projected sessions, projected only as far as the site's summed
    change exceeds a count's noise (gslb.core.state.beyond_noise)."""
    at_site = [m for m in members if m.site is not None and m.site.name == site]
    reachable = [m for m in at_site if not path_down(m, ctx)]
    declared = at_site[0].site.capacity if at_site and at_site[0].site else None
    if declared is not None:
        capacity = declared * len(reachable) / len(at_site)
    else:
        capacity = sum(m.capacity or 0.0 for m in reachable)
    projected = reported = change = 0.0
    for m in at_site:
        sessions = ctx.sessions(m)
        projected += sessions
        mine = ctx.load(m)
        if mine.reported is not None and sessions == mine.sessions:  # projected as reported
            reported += mine.reported
            change += mine.change
        else:
            reported += sessions
    return capacity, beyond_noise(reported, projected, change)


def usage(pool: Pool, state: ClusterState) -> dict[str, tuple[float, float]]:
    """(capacity, load) of each site of `pool` as spill-over sees it now (`site_usage`
    over the members the health step keeps), in the pool's order of members; a site with no
    member up is absent."""
    ctx = Context(pool, state)
    candidates = health.apply(pool.members, ctx)
    return {site: site_usage(candidates, site, ctx) for site in _sites_in_order(list(candidates))}


def spilled(capacity: float, load: float, held: float | None = None) -> float:
    """The share of a site's answers spilled over: the one held, else read off its load."""
    if held is not None:
        return held
    if capacity <= 0 or load < capacity * SPILL_FROM:
        return 0.0
    return min(1.0, (load - capacity * SPILL_FROM) / (capacity * (SPILL_ALL - SPILL_FROM)))


def overloaded(members: Candidates, ctx: Context) -> bool:
    """Whether any site of these candidates is past SPILL_FROM (spill-over may happen)."""
    sites = _sites_in_order(list(members))
    return any(
        0 < cap * SPILL_FROM <= load for cap, load in (site_usage(members, s, ctx) for s in sites)
    )


def _spill(ordered: list[Member], ctx: Context) -> list[Member]:
    sites = _sites_in_order(ordered)
    if len(sites) < 2:
        return ordered
    nearest = sites[0]
    capacity, load = site_usage(ordered, nearest, ctx)
    held = ctx.state.spill.get((ctx.pool.id, nearest)) if ctx.state.spill else None
    excess = spilled(capacity, load, held)
    if excess <= 0:
        return ordered
    why = f"{excess:.0%} spill" + (" held since a site lost capacity" if held is not None else "")
    draw = unit(ctx.client_key, ctx.slot, ctx.pool.id)
    if draw >= excess:
        ctx.note(
            f"site {nearest} is near capacity ({load:g}/{capacity:g}, {why}); this answer stays"
        )
        return ordered
    headroom = {}
    for site in sites[1:]:
        cap, used = site_usage(ordered, site, ctx)
        if cap > used:
            headroom[site] = cap - used
    if headroom:
        pick = unit(ctx.client_key, ctx.slot, ctx.pool.id, "spill") * sum(headroom.values())
        target = next(iter(headroom))
        for site, room in headroom.items():
            target = site
            pick -= room
            if pick <= 0:
                break
    else:
        target = sites[1]
    ctx.note(f"site {nearest} is near capacity ({load:g}/{capacity:g}, {why}): spilled to {target}")
    front = [m for m in ordered if m.site is not None and m.site.name == target]
    return front + [m for m in ordered if m not in front]
