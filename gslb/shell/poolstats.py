"""What `/metrics` says about pools, kept up to date as changes arrive.

A scrape must not walk every pool: at a million pools that is seconds of the event loop (TCP
and the change logs wait meanwhile) and millions of series no Prometheus wants. So the node
keeps, per zone, its members by state and the pools that can answer none (on fallback), and
each change updates what it touches: a health change the pool of each member it names, a
configuration change the pools it wrote, a full read everything. A scrape reads the totals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gslb.core import names
from gslb.core.pools import Pool
from gslb.core.state import UNKNOWN, MemberState
from gslb.core.zone import Zone, ZoneSet

STATES = ("up", "down", "unknown", "drained", "disabled")
_INDEX = {name: i for i, name in enumerate(STATES)}

Counts = tuple[int, ...]  # members by state, in STATES order
_SHARED: dict[Counts, Counts] = {}


def tally(pool: Pool, health: Mapping[str, MemberState]) -> tuple[Counts, bool]:
    """The pool's members by state (an admin state first, else the health), and whether
    none of them can be answered (the pool answers from its fallback)."""
    counts = [0] * len(STATES)
    usable = False
    for member in pool.members:
        word = health.get(member.key, UNKNOWN).health
        counts[_INDEX[member.admin if member.admin != "enabled" else word]] += 1
        usable = usable or (member.admin == "enabled" and word != "down")
    key = tuple(counts)
    # Most pools have the same few counts (all four up, say): one tuple of each, shared,
    # instead of one per pool (about 80 octets each at a million pools).
    # Bounded, since a write token chooses the pools.
    shared = _SHARED.setdefault(key, key) if len(_SHARED) < 4096 else _SHARED.get(key, key)
    return shared, not usable


@dataclass
class ZoneStats:
    members: list[int] = field(default_factory=lambda: [0] * len(STATES))
    pools: dict[str, Counts] = field(default_factory=dict)
    on_fallback: set[str] = field(default_factory=set)


class PoolStats:
    """Per zone: each pool's counts, their sum, and the pools on fallback."""

    def __init__(self) -> None:
        self.zones: dict[str, ZoneStats] = {}

    @property
    def pool_count(self) -> int:
        return sum(len(z.pools) for z in self.zones.values())

    def put(self, pool: Pool, health: Mapping[str, MemberState]) -> None:
        """Count `pool` as it is now (replacing what was counted for it)."""
        zone = self.zones.setdefault(pool.zone, ZoneStats())
        self._drop(zone, pool.name)
        counts, fallback = tally(pool, health)
        zone.pools[pool.name] = counts
        for i, n in enumerate(counts):
            zone.members[i] += n
        if fallback:
            zone.on_fallback.add(pool.name)

    def remove(self, zone_name: str, pool_name: str) -> None:
        zone = self.zones.get(zone_name)
        if zone is not None:
            self._drop(zone, pool_name)

    def _drop(self, zone: ZoneStats, name: str) -> None:
        old = zone.pools.pop(name, None)
        if old is not None:
            for i, n in enumerate(old):
                zone.members[i] -= n
            zone.on_fallback.discard(name)

    def zone(self, name: str, new: Zone | None, health: Mapping[str, MemberState]) -> None:
        """Count a zone afresh (it was read whole, or is gone: `new` None)."""
        self.zones.pop(name, None)
        if new is not None:
            self.zones[name] = ZoneStats()
            for pool in new.pools_by_name.values():
                self.put(pool, health)

    def pools(self, zone: Zone, names: Iterable[str], health: Mapping[str, MemberState]) -> None:
        """Count again the pools `names` of `zone` (those a change wrote or removed)."""
        for name in names:
            pool = zone.pools_by_name.get(name)
            if pool is None:
                self.remove(zone.name, name)
            else:
                self.put(pool, health)

    def members(
        self, keys: Iterable[str], zones: ZoneSet, health: Mapping[str, MemberState]
    ) -> None:
        """Count again the pools of the members `keys` (`zone/pool/address`: their health
        changed)."""
        for pool_id in {key.rpartition("/")[0] for key in keys}:
            zone_name, _, pool_name = pool_id.partition("/")
            try:
                zone = zones.zones.get(names.from_text(zone_name + "."))
            except names.BadName:
                continue
            pool = zone.pools_by_name.get(pool_name) if zone is not None else None
            if pool is not None:
                self.put(pool, health)

    def rebuild(self, zones: Iterable[Zone], health: Mapping[str, MemberState]) -> None:
        self.zones = {}
        for zone in zones:
            self.zone(zone.name, zone, health)
