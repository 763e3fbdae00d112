"""fastest: lowest probe round-trip time first.

Rule: candidates are ordered by the median RTT of the checkers' latest probes, ascending;
members with no measured RTT follow, in their incoming order. After a step that orders by
place, inside each site's run.

Origin: RFC 2391 §5.1, algorithm 5 (ping to find the most responsive host).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from gslb.core.policy import BLIND, Candidates, Context, Input, Order, Precision, by_tier, still

if TYPE_CHECKING:
    from gslb.core.pools import Member, Pool

FILTERS = False
ORDERS: Order = "lead"
WEIGHS = False
period = still


def reads(pool: Pool) -> frozenset[Input]:
    return frozenset({"rtt"})


def precision(pool: Pool) -> Precision:
    return BLIND


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    def rtt(m: Member) -> float:
        value = ctx.state.member(m.key).rtt
        return math.inf if value is None else value

    scored = by_tier(candidates, ctx, lambda t: tuple(sorted(t, key=rtt)))
    ctx.note(lambda: "RTT: " + ", ".join(f"{m.address}={rtt(m) * 1000:.1f} ms" for m in scored))
    return tuple(scored)
