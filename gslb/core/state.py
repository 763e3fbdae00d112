"""The live state policies read: health, load, answers handed out, paths down.

Built from Redis by the shell, frozen into the snapshot. Anything absent means "unknown" (for
health) or "no report" (for load), never "zero".
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import immutables

Health = Literal["up", "down", "unknown"]


@dataclass(frozen=True, slots=True)
class MemberState:
    health: Health = "unknown"
    rtt: float | None = None  # median probe round-trip time over checkers, seconds
    paths_down: frozenset[str] = frozenset()  # uplinks (named after ISPs) that cannot reach it


@dataclass(frozen=True, slots=True)
class Load:
    """An agent's fresh report for one member address (RFC 2391 §5.1, the active category:
    an agent on each host reports its load)."""

    sessions: float | None = None
    cpu: float | None = None  # one-minute load average per CPU (1.0: every CPU busy)
    traffic: float | None = None  # bytes or packets per second, as the agent counts them
    ports: tuple[tuple[int, float], ...] = ()  # sessions per local port, when reported
    at: float = 0.0  # when the agent measured it (Unix time)
    # Set by `anticipated` when `sessions` is projected: the count as reported, and what it
    # gained since the agent's previous report (what the projection extends).
    reported: float | None = None
    change: float = 0.0


TREND_NOISE = 2.0  # a change of n sessions counted is a trend only beyond this many sqrt(n)


def anticipated(previous: Load | None, current: Load, lead: float) -> Load:
    """`current` with its sessions projected `lead` seconds ahead along the trend since
    `previous` (an earlier report of the same agent), never below 0.

    What the answers read is late: a session opened now shows in the next report, which the
    DNS nodes read seconds later, and clients behind resolver caches keep coming for a TTL
    after the answers change. A load that is rising is acted on as if it had already risen,
    which keeps a site from overshooting its capacity in a flash crowd, and damps the swings
    of the shares (a proportional-derivative controller instead of a proportional one).
    The count as reported and its change are kept beside the projection, for whoever sums
    counts and has to tell a trend from noise (`beyond_noise`)."""
    if (
        previous is None
        or current.sessions is None
        or previous.sessions is None
        or current.at <= previous.at
    ):
        return current
    change = current.sessions - previous.sessions
    slope = change / (current.at - previous.at)
    return dataclasses.replace(
        current,
        sessions=max(0.0, current.sessions + lead * slope),
        reported=current.sessions,
        change=change,
    )


def beyond_noise(reported: float, projected: float, change: float) -> float:
    """A sum of projected counts (`projected`, from `reported` and its `change` since the
    previous reports) with the part of the change that is only noise left unprojected.

    A count of n sessions wanders by about sqrt(n) from one report to the next with nothing
    changing (arrivals are independent), and projecting that wander 10 s ahead tripled it.
    The spill-over fraction, a steep function of a site's load, then chased it: after a site
    failure the answers' site shares kept moving by 5-6 % long after the loads had settled
    (make simulate: 111 s to settle after a site failure, 161 s after a path failure; 83 s
    and 56 s without the wander). Per member it cost the balance inside a site its damping
    (more reversals), so it is applied where counts are summed: a site's load."""
    if change == 0.0 or projected == reported:
        return projected
    noise = TREND_NOISE * math.sqrt(max(reported, 1.0))
    kept = max(0.0, abs(change) - noise) / abs(change)
    return max(0.0, reported + (projected - reported) * kept)


@functools.lru_cache(maxsize=1 << 16)
def member_state(
    health: Health, rtt: float | None = None, paths_down: frozenset[str] = frozenset()
) -> MemberState:
    """A MemberState, one object per distinct value: four million members share a few
    thousand (with the round-trip time kept to 10 microseconds, finer than `fastest` and the
    operators read it)."""
    return MemberState(health, rtt, paths_down)


def rounded(rtt: float | None) -> float | None:
    # Not round(rtt, 5): that formats the number as decimal text, a microsecond each.
    return None if rtt is None else math.floor(rtt * 100_000 + 0.5) / 100_000


UNKNOWN = MemberState()
NO_LOAD = Load()


@dataclass(frozen=True, slots=True)
class ClusterState:
    # By Member.key; persistent, so that a change of a few members shares the rest.
    health: Mapping[str, MemberState] = field(default_factory=immutables.Map)
    load: Mapping[str, Load] = field(default_factory=dict)  # by member address, fresh only
    answers: Mapping[str, float] = field(default_factory=dict)  # by Member.key, recent window
    # (isp, site) pairs whose path is down; site None means everywhere.
    isp_paths_down: frozenset[tuple[str, str | None]] = frozenset()
    # Pools (by id) whose members' health nobody has decided yet, still within their
    # cold-start wait: their queries are held for the first results instead of guessed at.
    cold: frozenset[str] = frozenset()
    cold_deadline: float = 0.0  # unix time when the last of them stops waiting
    # Members (by key) in their pool's slow start, with the share of their full lead they
    # may take now, in 5 % steps (absent: full share). The shell moves it on as time passes.
    ramp: Mapping[str, float] = field(default_factory=dict)
    # Planned drains: members (by key) whose `drain_at` has come, and the TTL in force for
    # pools (by id) in the TTL ahead of one. The shell moves them on as time passes.
    drained: frozenset[str] = frozenset()
    ttl: Mapping[str, int] = field(default_factory=dict)
    # Member addresses whose agent said they are going away (gslb agent drain, its SIGTERM):
    # out of every pool's answers, as if drained, until the agent says they are back.
    leaving: frozenset[str] = frozenset()
    # Spill-over fractions held by the shell's controller (gslb.shell.spill) after a site lost
    # capacity, by (pool id, site name): proximity spills that share of the site's answers
    # instead of reading it off the site's load. Absent: read off the load.
    spill: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def member(self, key: str) -> MemberState:
        return self.health.get(key, UNKNOWN)

    def path_down(self, isp: str | None, site: str | None) -> bool:
        if isp is None:
            return False
        return (isp, None) in self.isp_paths_down or (isp, site) in self.isp_paths_down


EMPTY = ClusterState()
