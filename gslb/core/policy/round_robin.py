"""round_robin: rotate the order from one answer to the next.

Rule: the candidates are rotated left by `slot mod n`, where the slot is drawn per query. Over
consecutive queries each candidate leads equally often, and the relative order is kept. After
a step that orders by place (proximity, topology, cost) each site's run rotates by itself and
the runs keep their order.

Origin: DNS round robin, the load *sharing* of *To Be Multihomed* §5 (static: it ignores
load), and RFC 2391 §5.1, algorithm 1 (round robin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gslb.core.policy import (
    BLIND,
    Candidates,
    Context,
    Input,
    Order,
    Precision,
    by_tier,
    placed,
    tier_period,
)

if TYPE_CHECKING:
    from gslb.core.pools import Pool

FILTERS = False
ORDERS: Order = "lead"
WEIGHS = False


def reads(pool: Pool) -> frozenset[Input]:
    return frozenset()


def precision(pool: Pool) -> Precision:
    return BLIND


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    def rotate(tier: Candidates) -> Candidates:
        k = ctx.slot % len(tier)
        return tier[k:] + tier[:k]

    ctx.note(f"rotated (slot {ctx.slot}){' inside each site' if placed(ctx) else ''}")
    return by_tier(candidates, ctx, rotate) if candidates else candidates


def period(candidates: Candidates, ctx: Context) -> int:
    return tier_period(candidates, ctx, lambda tier: max(1, len(tier)))
