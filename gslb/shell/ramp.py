"""Slow start as time passes: which members are ramping, and how far they have come.

The core reads a member's ramp from the state (gslb.core.slowstart); this keeps the clock.
A member ramps when its health goes from `down` to `up`, or its admin state from drained or
disabled back to enabled, in a pool with `slow_start`. The ramp rises in 5 % steps from 5 %
to 100 % over the pool's `slow_start` seconds; each step is a new snapshot, so the answers
follow it within one step (the loop looks at least once a second). A member that starts up
for the first time (health unknown, then up) does not ramp: at a cold start every member is
in the same position, and holding them all back would only delay everyone.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping

import immutables

from gslb.core.pools import Pool
from gslb.core.state import ClusterState, MemberState
from gslb.core.zone import ZoneSet
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


def _slow_start_of(key: str, zones: ZoneSet) -> float:
    pool_id = key.rpartition("/")[0]
    zone_name, _, pool_name = pool_id.rpartition("/")
    for zone in zones.zones.values():
        if zone.name == zone_name:
            pool = zone.pools_by_name.get(pool_name)
            return pool.slow_start if pool is not None else 0.0
    return 0.0
