"""What changes in the answers as time passes, not as Redis says: slow starts and planned
drains.

Slow start: which members are ramping, and how far they have come.

The core reads a member's ramp from the state (gslb.core.slowstart); this keeps the clock.
A member ramps when its health goes from `down` to `up`, or its admin state from drained or
disabled back to enabled, in a pool with `slow_start`. The ramp rises in 5 % steps from 5 %
to 100 % over the pool's `slow_start` seconds; each step is a new snapshot, so the answers
follow it within one step (the loop looks at least once a second). A member that starts up
for the first time (health unknown, then up) does not ramp: at a cold start every member is
in the same position, and holding them all back would only delay everyone.

Planned drains: a member with a `drain_at` is drained from that time on (the state's
`drained`), and during the TTL before it the pool's answers carry a short TTL (the state's
`ttl`), so that resolvers holding the old answer ask again by the time the member goes: a
drain planned with a 300 s TTL takes effect in seconds, not minutes. After it the TTL comes
back. Every DNS node keeps the same clock, so they all drain at the same moment.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping

import immutables

from gslb.core.pools import Pool
from gslb.core.state import ClusterState, Load, MemberState, anticipated
from gslb.core.zone import Zone, ZoneSet
from gslb.schema import Health

STEPS = 20  # 5 % steps


class SlowStart:
    def __init__(self) -> None:
        self.since: dict[str, tuple[float, float]] = {}  # member key -> (start, seconds)
        self._next = 0.0  # when the next step is due (0: none)

    def heard(
        self,
        changes: Mapping[str, Health],
        before: Mapping[str, MemberState],
        zones: ZoneSet,
        now: float | None = None,
    ) -> None:
        """Decided states arrived: members back up start ramping, members down stop."""
        now = time.time() if now is None else now
        for key, decided in changes.items():
            if decided.health != "up":
                self.since.pop(key, None)
                continue
            was = before.get(key)
            if was is None or was.health != "down":
                continue
            seconds = _slow_start_of(key, zones)
            if seconds > 0:
                self.since[key] = (now, seconds)

    def enabled(self, old: Pool | None, new: Pool, now: float | None = None) -> None:
        """A pool was rewritten: its members enabled again start ramping."""
        if old is None or new.slow_start <= 0:
            return
        now = time.time() if now is None else now
        was = {m.rdata: m.admin for m in old.members}
        for m in new.members:
            if m.admin == "enabled" and was.get(m.rdata, "enabled") != "enabled":
                self.since[m.key] = (now, new.slow_start)

    def pools(self, old: Mapping[str, Pool], new: Mapping[str, Pool], names: Iterable[str]) -> None:
        for name in names:
            pool = new.get(name)
            if pool is not None:
                self.enabled(old.get(name), pool)

    def apply(self, state: ClusterState, now: float | None = None) -> ClusterState:
        now = time.time() if now is None else now
        ramp: dict[str, float] = {}
        upcoming = math.inf
        for key, (start, seconds) in list(self.since.items()):
            done = (now - start) / seconds
            if done >= 1:
                del self.since[key]
                continue
            step = math.floor(done * STEPS)
            ramp[key] = max(1, step) / STEPS
            upcoming = min(upcoming, start + (step + 1) * seconds / STEPS)
        self._next = 0.0 if upcoming == math.inf else upcoming
        if dict(state.ramp) == ramp:
            return state
        return dataclasses.replace(state, ramp=immutables.Map(ramp))

    def due(self, now: float | None = None) -> bool:
        """Whether a ramp has moved on since the last snapshot."""
        now = time.time() if now is None else now
        return bool(self._next) and now >= self._next


ANTICIPATE = 10.0  # seconds ahead load reports are projected along their trend


class LoadTrend:
    """The last two distinct reports of each agent, and the load projected from them
    (gslb.core.state.anticipated). make simulate chose the lead: 10 s took the flash crowd's
    overload from 12 s to none and the imbalance inside a site from 1.07 to 1.04; 20 s swung
    more (docs/balancing.md)."""

    def __init__(self, lead: float = ANTICIPATE) -> None:
        self.lead = lead
        self.reports: dict[str, tuple[Load | None, Load]] = {}

    def project(self, fresh: Mapping[str, Load]) -> dict[str, Load]:
        out: dict[str, Load] = {}
        reports: dict[str, tuple[Load | None, Load]] = {}
        for address, load in fresh.items():
            before = self.reports.get(address)
            if before is None:
                pair: tuple[Load | None, Load] = (None, load)
            elif load.at != before[1].at:
                pair = (before[1], load)
            else:
                pair = before
            reports[address] = pair
            out[address] = anticipated(pair[0], pair[1], self.lead)
        self.reports = reports  # agents gone stale are forgotten with their reports
        return out


STEP_TTL = 5  # seconds: the TTL of a pool's answers in the TTL before a planned drain


class Drains:
    def __init__(self) -> None:
        # pool id -> (its TTL, {member key: when it drains})
        self.planned: dict[str, tuple[int, dict[str, float]]] = {}
        self._next = 0.0

    def zone(self, old: Zone | None, new: Zone | None, touched: Iterable[str] | None) -> None:
        """A zone was replaced: look again at the pools written (all of them if unknown)."""
        for pool_id, pool in written(old, new, touched):
            self.planned.pop(pool_id, None)
            if pool is not None:
                self._pool(pool)

    def _pool(self, pool: Pool) -> None:
        at = {m.key: m.drain_at for m in pool.members if m.drain_at is not None}
        if at:
            self.planned[pool.id] = (pool.ttl, at)

    def apply(self, state: ClusterState, now: float | None = None) -> ClusterState:
        now = time.time() if now is None else now
        drained: set[str] = set()
        ttl: dict[str, int] = {}
        upcoming = math.inf
        for pool_id, (pool_ttl, at) in self.planned.items():
            for key, when in at.items():
                if when <= now:
                    drained.add(key)
                    continue
                if when - pool_ttl <= now:
                    ttl[pool_id] = min(pool_ttl, STEP_TTL)
                    upcoming = min(upcoming, when)
                else:
                    upcoming = min(upcoming, when - pool_ttl)
        self._next = 0.0 if upcoming == math.inf else upcoming
        if state.drained == frozenset(drained) and dict(state.ttl) == ttl:
            return state
        return dataclasses.replace(state, drained=frozenset(drained), ttl=immutables.Map(ttl))

    def due(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return bool(self._next) and now >= self._next


def written(
    old: Zone | None, new: Zone | None, touched: Iterable[str] | None
) -> list[tuple[str, Pool | None]]:
    """(pool id, the pool now or None if gone) for the pools of a replaced zone that were
    written: `touched` when the caller knows, else every pool of either version."""
    either = new if new is not None else old
    if either is None:
        return []
    names = (
        set(touched)
        if touched is not None
        else {*(old.pools_by_name if old else ()), *(new.pools_by_name if new else ())}
    )
    return [
        (f"{either.name}/{name}", new.pools_by_name.get(name) if new is not None else None)
        for name in names
    ]


def _slow_start_of(key: str, zones: ZoneSet) -> float:
    pool_id = key.rpartition("/")[0]
    zone_name, _, pool_name = pool_id.rpartition("/")
    for zone in zones.zones.values():
        if zone.name == zone_name:
            pool = zone.pools_by_name.get(pool_name)
            return pool.slow_start if pool is not None else 0.0
    return 0.0
