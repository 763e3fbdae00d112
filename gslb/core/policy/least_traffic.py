"""least_traffic: the least reported traffic per weight leads most, in proportion.

Rule: each candidate's load is `traffic / weight`, the bytes or packets per second its agent
reports. The lead is shared by rotation slot as in least_load: a candidate at the mean leads
its weight's share, one above it less (none at a third above it), one below it more; the others
follow by traffic, least first. A candidate without a fresh report counts as the mean of those
with one (no report is no evidence of being idle, nor of being busy); with no reports at all
the lead is shared by weight. After a step that orders by place, each site's run shares by
itself.

Origin: RFC 2391 §5.1, algorithm 3 (least traffic first: packet or byte counts over a period
of time, "a reasonable approximation" of system load).
"""

from __future__ import annotations

from gslb.core.policy import Candidates, Context, by_tier

# Reads load, does not look at the client, and rotates through the same share slots.
from gslb.core.policy.least_load import (
    FILTERS,
    ORDERS,
    WEIGHS,
    ordered,
    period,
    precision,
    reads,
)

__all__ = ["FILTERS", "ORDERS", "WEIGHS", "apply", "period", "precision", "reads"]


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    return by_tier(candidates, ctx, lambda tier: _by_traffic(tier, ctx))


def _by_traffic(candidates: Candidates, ctx: Context) -> Candidates:
    reported = [ctx.load(m).traffic for m in candidates]
    known = [(t, m.weight) for t, m in zip(reported, candidates, strict=True) if t is not None]
    mean = sum(t for t, _ in known) / sum(w for _, w in known) if known else 0.0
    loads = [
        t if t is not None else mean * m.weight for t, m in zip(reported, candidates, strict=True)
    ]
    return ordered(candidates, loads, ctx, "traffic")
