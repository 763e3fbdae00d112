"""weighted: share the lead in proportion to `weight`.

Rule: a smooth weighted round-robin sequence (each member appears `weight` times per cycle,
spread out as evenly as possible) is read from position `slot mod cycle`; the order is the
members by first appearance from there. So over any whole cycle of queries each member leads
exactly `weight / sum(weights)` of the answers, and the members after the leader follow in a
weighted order too. After a step that orders by place, each site's run shares by itself.
Weights summing above 1000 are scaled down first, to bound the cycle.

Origin: RFC 2391 §5.1, algorithm 4 (weights to hosts by resource availability); the sequence
is the "smooth" weighted round robin, which avoids sending a burst of consecutive answers to
the heaviest member.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from gslb.core.policy import (
    BLIND,
    Candidates,
    Context,
    Input,
    Order,
    Precision,
    by_tier,
    tier_period,
)

if TYPE_CHECKING:
    from gslb.core.pools import Pool

FILTERS = False
ORDERS: Order = "lead"
WEIGHS = True
MAX_CYCLE = 1000


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    def share(tier: Candidates) -> Candidates:
        if len(tier) < 2:
            return tier
        cycle = sequence(tuple(m.weight for m in tier))
        start = ctx.slot % len(cycle)
        order: list[int] = []
        for i in range(len(cycle)):
            index = cycle[(start + i) % len(cycle)]
            if index not in order:
                order.append(index)
                if len(order) == len(tier):
                    break
        ctx.note(
            lambda: (
                f"cycle position {start} of {len(cycle)}; weights "
                + ", ".join(f"{m.address}={m.weight}" for m in tier)
            )
        )
        return tuple(tier[i] for i in order)

    return by_tier(candidates, ctx, share)


def reads(pool: Pool) -> frozenset[Input]:
    return frozenset()


def precision(pool: Pool) -> Precision:
    return BLIND


def period(candidates: Candidates, ctx: Context) -> int:
    return tier_period(
        candidates, ctx, lambda t: len(sequence(tuple(m.weight for m in t))) if len(t) > 1 else 1
    )


@lru_cache(maxsize=1024)
def sequence(weights: tuple[int, ...]) -> tuple[int, ...]:
    """The smooth weighted round-robin cycle of these weights: member indexes, each `weight`
    times (members of weight 0 never)."""
    total = sum(weights)
    if total > MAX_CYCLE:
        weights = tuple(max(1, round(w * MAX_CYCLE / total)) for w in weights)
        total = sum(weights)
    current = [0] * len(weights)
    out = []
    for _ in range(total):
        for i, w in enumerate(weights):
            current[i] += w
        best = max(range(len(weights)), key=lambda i: current[i])
        current[best] -= total
        out.append(best)
    return tuple(out)
