"""round_robin: rotate the order from one answer to the next.

Rule: the candidates are rotated left by `slot mod n`, where the slot is drawn per query. Over
consecutive queries each candidate leads equally often, and the relative order is kept.

Origin: DNS round robin, the load *sharing* of *To Be Multihomed* §5 (static: it ignores
load), and RFC 2391 §5.1, algorithm 1 (round robin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gslb.core.policy import BLIND, Candidates, Context, Input, Precision

if TYPE_CHECKING:
    from gslb.core.pools import Pool

FILTERS = False


def reads(pool: Pool) -> frozenset[Input]:
    return frozenset()


def precision(pool: Pool) -> Precision:
    return BLIND


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    if len(candidates) < 2:
        return candidates
    k = ctx.slot % len(candidates)
    ctx.note(f"rotated by {k} (slot {ctx.slot})")
    return candidates[k:] + candidates[:k]


def period(candidates: Candidates, ctx: Context) -> int:
    return max(1, len(candidates))
