"""Held spill-over: what a site must spill after another lost capacity, kept with memory.

`proximity` reads a site's spill fraction off its load: nothing below 80 % of its capacity,
everything at 100 %. That is a proportional controller with a gain of five, behind a loop
that is slow: the load is read every 5 s, answers live a TTL in resolver caches, sessions
last tens of seconds. When a site fails, the next site's load jumps, the fraction jumps with
it, and the shares swing for minutes before they settle (make simulate: 83 s after a site
failure, for an aim of two TTLs).

When a site loses capacity, what it was carrying is known: its load at the last look. So
the fraction that keeps the sites taking that load at `TARGET` of their capacity can be set
at once (feed-forward), and then only trimmed, by `GAIN` x (load / capacity - TARGET) per
`TRIM_EVERY` seconds (an integral controller, slow on purpose: the loop's delay is about
four trims). make simulate chose the numbers: settling after a site failure went from 83 s
to 10 s for the answers, with no member over capacity. A gain of 0.1 did as well there but
took the load 64 s instead of 38 s to settle after a path failure; 0.2 swung (82 s); a 92 %
target let a member go over its capacity (docs/balancing.md).

- A site whose capacity falls but stays above zero (members down, an ISP path down) keeps
  its own clients: its fraction is set from its own demand (its load, with what it spilled
  added back) and its new capacity.
- A site with no capacity left (every member down) has its load taken by the other site
  nearest to it (by the sites' coordinates; a site's clients are nearest to it, so their
  next site is, roughly, the one nearest to it): that site's fraction is set from its own
  demand plus the load of the site lost.
- A hold ends when its trimming brings it to zero, when the site it is held for has no
  capacity left, and for every site of the pool when capacity comes back anywhere in it (a
  recovery: the shares are read off the load again, as before the failure).

Only pools whose proximity step can spill (a capacity declared) are looked at, kept as zones
change, so a million pools without capacities cost nothing here; of those, a health change
looks at the pools of the members that changed, and a trim at the pools with a hold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import immutables

from gslb.core.location import distance_km
from gslb.core.policy.proximity import spilled, usage
from gslb.core.pools import Pool
from gslb.core.state import ClusterState
from gslb.core.zone import Zone
from gslb.shell.ramp import written

TARGET = 0.88  # share of its capacity a site taking another's load is held at
GAIN = 0.05  # fraction added per unit of (load / capacity - TARGET) at each trim
TRIM_EVERY = 5.0  # seconds between trims (the DNS nodes read load every 5 s)
LOST = 0.99  # a site whose capacity falls below this share of what it was has lost capacity
GAINED = 1.01  # and one above this share has gained capacity
LEAST_KEPT = 0.05  # demand is estimated as load / (1 - spilled), with 1 - spilled at least this

Usage = dict[str, tuple[float, float]]  # site -> (capacity, load)


def spills(pool: Pool) -> bool:
    """Whether `pool` has a proximity step that can spill: some capacity is declared."""
    return "proximity" in pool.steps and any(
        m.capacity is not None or (m.site is not None and m.site.capacity is not None)
        for m in pool.members
    )


class SpillControl:
    def __init__(self) -> None:
        self.pools: dict[str, Pool] = {}  # pool id -> pool, for pools that can spill
        self.held: dict[tuple[str, str], float] = {}  # (pool id, site) -> fraction held
        self._touched: set[str] | None = set()  # pools whose health changed (None: all)
        self._trimmed: float | None = None

    def zone(self, old: Zone | None, new: Zone | None, touched: Iterable[str] | None) -> None:
        """A zone was replaced: look again at the pools written (all of them if unknown)."""
        for pool_id, pool in written(old, new, touched):
            if pool is not None and spills(pool):
                if self.pools.get(pool_id) != pool:  # rewritten: start again from its load
                    self._forget(pool_id)
                self.pools[pool_id] = pool
            else:
                self._forget(pool_id)
                self.pools.pop(pool_id, None)

    def _forget(self, pool_id: str) -> None:
        for key in [k for k in self.held if k[0] == pool_id]:
            del self.held[key]

    def heard(self, keys: Iterable[str] | None) -> None:
        """The health of these members (by key) changed; None: of any member (a full read)."""
        if keys is None or self._touched is None:
            self._touched = None
            return
        for key in keys:
            pool_id = key.rpartition("/")[0]
            if pool_id in self.pools:
                self._touched.add(pool_id)

    def apply(self, before: ClusterState, state: ClusterState, now: float) -> ClusterState:
        """`state` with the fractions held now: set where a site lost capacity since `before`
        (the state answered from until now), trimmed from the load when `TRIM_EVERY` seconds
        have passed. Only the pools whose health changed are compared, unless something
        every pool reads changed (paths down everywhere, drains, agents leaving); only pools
        with a hold are trimmed: a look costs what changed, not every pool."""
        everything = self._touched is None or (
            (before.isp_paths_down, before.drained, before.leaving)
            != (state.isp_paths_down, state.drained, state.leaving)
        )
        looked = self.pools.keys() if everything else (self._touched or set())
        for pool_id in list(looked):
            pool = self.pools.get(pool_id)
            if pool is not None:
                self._changed(pool, usage(pool, before), usage(pool, state))
        self._touched = set()
        if self._trimmed is None or now - self._trimmed >= TRIM_EVERY:
            self._trimmed = now
            for pool_id in {k[0] for k in self.held}:
                self._trim(pool_id, usage(self.pools[pool_id], state))
        if dict(state.spill) == self.held:
            return state
        return dataclasses.replace(state, spill=immutables.Map(self.held))

    def _fraction(self, pool_id: str, site: str, capacity: float, load: float) -> float:
        return spilled(capacity, load, self.held.get((pool_id, site)))

    def _demand(self, pool_id: str, site: str, used: tuple[float, float]) -> float:
        """What would come to `site` if it spilled nothing: its load with what it spilled."""
        capacity, load = used
        kept = max(LEAST_KEPT, 1.0 - self._fraction(pool_id, site, capacity, load))
        return load / kept

    def _changed(self, pool: Pool, before: Usage, now: Usage) -> None:
        pool_id = pool.id
        if any(cap > before.get(site, (0.0, 0.0))[0] * GAINED for site, (cap, _) in now.items()):
            for key in [k for k in self.held if k[0] == pool_id]:
                del self.held[key]
            return
        for site, (was, load) in before.items():
            capacity = now.get(site, (0.0, 0.0))[0]
            if capacity >= was * LOST:
                continue
            if capacity > 0:  # it keeps its clients, with less room for them
                taker, demand = site, self._demand(pool_id, site, before[site])
            else:  # its clients go to the site nearest to it
                self.held.pop((pool_id, site), None)
                nearest = _nearest_other(pool, site, now)
                if nearest is None:
                    continue
                taker, demand = nearest, self._demand(pool_id, nearest, now[nearest]) + load
            fraction = min(1.0, 1.0 - TARGET * now[taker][0] / demand) if demand > 0 else 0.0
            if fraction > 0:
                self.held[(pool_id, taker)] = fraction
            else:  # it fits under the target: read off the load, as before
                self.held.pop((pool_id, taker), None)

    def _trim(self, pool_id: str, sites: Usage) -> None:
        for key in [k for k in self.held if k[0] == pool_id]:
            capacity, load = sites.get(key[1], (0.0, 0.0))
            if capacity <= 0:
                del self.held[key]
                continue
            fraction = min(1.0, self.held[key] + GAIN * (load / capacity - TARGET))
            if fraction <= 0:
                del self.held[key]
            else:
                self.held[key] = fraction


def _nearest_other(pool: Pool, lost: str, now: Usage) -> str | None:
    """The site with capacity nearest to the site `lost` (None: no coordinates to tell)."""
    where = {m.site.name: m.site for m in pool.members if m.site is not None}
    origin = where.get(lost)
    if origin is None or origin.lat is None or origin.lon is None:
        return None
    best: tuple[float, str] | None = None
    for site, (capacity, _load) in now.items():
        place = where[site]
        if capacity <= 0 or place.lat is None or place.lon is None:
            continue
        far = distance_km(origin.lat, origin.lon, place.lat, place.lon)
        if best is None or far < best[0]:
            best = (far, site)
    return best[1] if best else None
