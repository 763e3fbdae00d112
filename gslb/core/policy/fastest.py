"""fastest: lowest probe round-trip time first.

Rule: candidates are ordered by the median RTT of the checkers' latest probes, ascending;
members with no measured RTT follow, in their incoming order.

Origin: RFC 2391 §3.3.5 (most responsive host first, by probe response time).
"""

from __future__ import annotations

import math

from gslb.core.policy import Candidates, Context
from gslb.core.pools import Member


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    def rtt(m: Member) -> float:
        value = ctx.state.member(m.key).rtt
        return math.inf if value is None else value

    scored = sorted(candidates, key=rtt)
    ctx.note(lambda: "RTT: " + ", ".join(f"{m.address}={rtt(m) * 1000:.1f} ms" for m in scored))
    return tuple(scored)
