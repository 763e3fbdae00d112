"""health: drop members that are down, drained or disabled.

Rule: a member is kept when its admin state is `enabled` (and a planned drain of it has not
come yet, and its agent has not said it is leaving) and its health is `up`. Members of
`unknown` health (no check has decided yet, e.g. at cold start) are kept only when no member
is known up, so a known-healthy member always wins over a guess; a member known `down` is
never kept. A pool without a monitor has nothing to say about health: its enabled members
count as up unless the state says otherwise, and so do members marked `monitored: false`
in any pool (never probed: an operator vouches for them). When nothing remains, the pool's
`fallback` decides (the caller applies it).

Origin: RFC 2391 §6 (dead host detection: a host that stops answering is taken out of the
rotation); "drained" is RFC 2391's static mapping of a member away during an upgrade, kept as an
admin state (gdnsd: an operator override is just another state).
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
    return frozenset({"health"})


def precision(pool: Pool) -> Precision:
    return BLIND


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    monitored = ctx.pool.monitor is not None
    up = []
    unknown = []
    drained, leaving = ctx.state.drained, ctx.state.leaving
    vouched = ctx.pool.unmonitored
    for member in candidates:
        if member.admin != "enabled" or (drained and member.key in drained):
            continue
        if leaving and member.address in leaving:
            continue
        if vouched and member.rdata in vouched:
            up.append(member)
            continue
        health = ctx.state.member(member.key).health
        if health == "unknown" and not monitored:
            health = "up"
        if health == "up":
            up.append(member)
        elif health == "unknown":
            unknown.append(member)
    if up:
        kept = tuple(up)
    else:
        kept = tuple(unknown)
        if kept:
            ctx.note("no member known up: keeping the members of unknown health (fail open)")
    ctx.note(lambda: _summary(candidates, kept, ctx))
    return kept


def _summary(before: Candidates, after: Candidates, ctx: Context) -> str:
    dropped = [m for m in before if m not in after]
    if not dropped:
        return f"kept all {len(after)}"
    reasons = []
    for m in dropped:
        why: str = m.admin if m.admin != "enabled" else ctx.state.member(m.key).health
        if m.admin == "enabled" and m.key in ctx.state.drained:
            why = "drained as planned"
        elif m.admin == "enabled" and m.address in ctx.state.leaving:
            why = "leaving, said its agent"
        reasons.append(f"{m.address} ({why})")
    return "dropped " + ", ".join(reasons)
