"""Slow start: a member that comes back takes its share of the lead gradually.

Rule: a member in its pool's slow start has a ramp `r` (the share of its full lead it may
take now, from 5 % up to 100 % over the pool's `slow_start` seconds, kept by the shell in the
state). Whatever ordering the pool's steps chose, an answer that would lead with it keeps it
first in only `r` of the rotation slots (20 slots, 5 % steps); in the others it moves behind
the first member not in slow start. It stays in the answer, so clients that try the addresses
in order still reach it. Applied after the ordering steps and before `limit`.

Origin: RFC 2391 §6: a host found dead "can be monitored later again after a long pause ...
by periodically reassigning new sessions and monitoring response times": re-admission by
trial sessions, not its whole share at once.
"""

from __future__ import annotations

from gslb.core.policy import Candidates, Context
from gslb.core.policy._hash import unit

SLOTS = 20  # rotation slots over which a ramp is applied: 5 % steps


def ramping(candidates: Candidates, ctx: Context) -> bool:
    return bool(ctx.state.ramp) and any(m.key in ctx.state.ramp for m in candidates)


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    if not candidates or not ctx.state.ramp:
        return candidates
    leader = candidates[0]
    share = ctx.state.ramp.get(leader.key)
    if share is None:
        return candidates
    # Each member's turns start at its own offset, so two ramping members do not share them.
    offset = int(unit(leader.key) * SLOTS)
    if (ctx.slot + offset) % SLOTS < round(share * SLOTS):
        ctx.note(f"slow start: {leader.address} at {share:.0%} of its share, leads this slot")
        return candidates
    after = next((i for i, m in enumerate(candidates) if m.key not in ctx.state.ramp), None)
    if after is None:
        return candidates  # everyone is ramping: nobody better to lead
    ctx.note(
        f"slow start: {leader.address} at {share:.0%} of its share, "
        f"behind {candidates[after].address} this slot"
    )
    return (*candidates[1 : after + 1], leader, *candidates[after + 1 :])
