"""failover: keep the first priority group that has at least `min_up` healthy members.

Rule: candidates are grouped by `priority` (1 first); the first group holding at least the
pool's `min_up` candidates is kept whole and the others dropped. If no group reaches `min_up`,
the first non-empty group is kept: some service beats none. Put it after `health`, so that the
candidates are the healthy ones.

Origin: active/backup server groups; RFC 2391's static mapping to a backup (§5.2), made
automatic by health.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gslb.core.policy import BLIND, Candidates, Context, Input, Order, Precision, still

if TYPE_CHECKING:
    from gslb.core.pools import Pool

FILTERS = True
ORDERS: Order = None
WEIGHS = False
period = still


def reads(pool: Pool) -> frozenset[Input]:
    return frozenset()


def precision(pool: Pool) -> Precision:
    return BLIND


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    if not candidates:
        return candidates
    priorities = sorted({m.priority for m in candidates})
    for priority in priorities:
        group = tuple(m for m in candidates if m.priority == priority)
        if len(group) >= ctx.pool.min_up:
            ctx.note(f"priority {priority} has {len(group)} healthy (min_up {ctx.pool.min_up})")
            return group
    first = priorities[0]
    ctx.note(f"no group reaches min_up {ctx.pool.min_up}: keeping priority {first}")
    return tuple(m for m in candidates if m.priority == first)
