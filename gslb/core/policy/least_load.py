"""least_load: the least weighted load leads most, in proportion to what it can still take.

Rule: each candidate's load is `sessions / weight`: the sessions its agent reports, else the
answers this cluster led with it in the recent window, which stand in for new sessions. The
lead is shared by rotation slot (20 slots, 5 % steps): a candidate at the candidates' mean
load leads its weight's share, one above the mean less (none at a third above it), one below
it more (`weight x (1 + 3 x (1 - load / mean))`, at least 0); a candidate whose ISP path is
down, or whose agent reports every CPU busy (load average per CPU of 1 or more), gets no share
(its low session count is no room). With `session_weights` (port -> weight) and agents that
count per port, sessions are weighed by type: `sum(sessions x weight)`. After the leader the others
follow by load, least first (ties keep their order). After a step that orders by place, each
site's run shares by itself and the runs keep their order.

Origin: RFC 2391 §5.1, algorithms 2 (least load first) and 4 (least weighted load first:
"The sum of all session loads by weight assigned to a server, divided by weight of server"),
with hosts reporting their own load and resource use (§5.1, the active category). Sharing
instead of always picking the least loaded one is what keeps seconds-old inputs from moving
the whole load at once.
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
    _share,
    by_tier,
    tier_period,
)
from gslb.core.policy.cost import path_down

if TYPE_CHECKING:
    from gslb.core.pools import Member, Pool

FILTERS = False
ORDERS: Order = "lead"
WEIGHS = True


CPU_FULL = 1.0  # an agent's load average per CPU at which a member takes no new lead


def saturated(m: Member, ctx: Context) -> bool:
    """Whether the member's agent says every CPU is busy: no room, whatever its sessions."""
    cpu = ctx.load(m).cpu
    return cpu is not None and cpu >= CPU_FULL


def reads(pool: Pool) -> frozenset[Input]:
    return frozenset({"load", "paths"})


def precision(pool: Pool) -> Precision:
    return BLIND


def period(candidates: Candidates, ctx: Context) -> int:
    return tier_period(candidates, ctx, lambda tier: _share.slots(len(tier)))


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    return by_tier(
        candidates,
        ctx,
        lambda tier: ordered(tier, [ctx.sessions(m) for m in tier], ctx, "sessions"),
    )


def ordered(candidates: Candidates, loads: list[float], ctx: Context, unit: str) -> Candidates:
    """The lead by share of these loads, then the others by load per weight."""
    if len(candidates) < 2:
        return candidates
    usable = [not path_down(m, ctx) and not saturated(m, ctx) for m in candidates]
    lead = _share.leader(candidates, loads, ctx.slot, usable)
    per_weight = {m: load / m.weight for m, load in zip(candidates, loads, strict=True)}
    rest = sorted((m for i, m in enumerate(candidates) if i != lead), key=per_weight.__getitem__)
    out = (candidates[lead], *rest)

    def note() -> str:
        parts = _share.shares(candidates, loads, usable)
        return (
            f"{unit} per weight (share of the lead): "
            + ", ".join(
                f"{m.address}={per_weight[m]:g} ({share:.0%})"
                for m, share in zip(candidates, parts, strict=True)
            )
            + f"; slot {ctx.slot % period(candidates, ctx)} leads with {out[0].address}"
        )

    ctx.note(note)
    return out
