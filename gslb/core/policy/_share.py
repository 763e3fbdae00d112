"""Sharing the lead in proportion to what each member can still take.

The load steps do not send every answer to the least loaded member: their inputs (agents'
reports, answers counted by the cluster) are seconds old and change only between snapshots,
so "least loaded first" would hand one member every answer of a window and then swing the
whole load to another, the batch reassignment RFC 2391 §5.1 warns against. Instead each
member leads a share of the answers, drawn by rotation slot, that a proportional controller
sets from its load: a member at the pool's mean load per weight leads its weight's share, one
above the mean less (none at a third above it), one below it more. Answer counts feed back
slowly and smoothly, so the shares settle instead of oscillating.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gslb.core.policy.weighted import sequence

if TYPE_CHECKING:
    from gslb.core.pools import Member

GRANULARITY = 20  # rotation slots a sharing step cycles through: 5 % steps of the lead
# How strongly a share answers a load's distance from the mean. Chosen with make simulate
# (docs/balancing.md): at 1 a big resolver's batch of clients stays uncorrected (imbalance
# 1.10 inside a site), at 5 and more the shares start to swing (reversals up by half); 3 is
# the least imbalance without more oscillation.
GAIN = 3.0


def slots(n: int) -> int:
    """Rotation slots for `n` candidates: fine enough that each can have a share."""
    return 1 if n < 2 else max(GRANULARITY, n)


def shares(
    members: Sequence[Member], loads: Sequence[float], usable: Sequence[bool] | None = None
) -> list[float]:
    """Each member's share of the lead, summing to 1, from its load (in the step's unit,
    not yet divided by weight): `weight x (1 + GAIN x (1 - load per weight / mean))`, at
    least 0, so it falls to 0 at (1 + 1 / GAIN) times the mean. Members not `usable` (on a
    path that is down) get none, and their load does not count in the mean: clients cannot
    reach them, so their low load is no room."""
    if usable is not None and any(usable) and not all(usable):
        kept = [i for i, ok in enumerate(usable) if ok]
        inner = shares([members[i] for i in kept], [loads[i] for i in kept])
        out = [0.0] * len(members)
        for i, share in zip(kept, inner, strict=True):
            out[i] = share
        return out
    weights = [m.weight for m in members]
    total_weight = sum(weights)
    mean = sum(loads) / total_weight
    if mean <= 0:
        raw = [float(w) for w in weights]
    else:
        raw = [
            w * max(0.0, 1.0 + GAIN * (1.0 - (load / w) / mean))
            for w, load in zip(weights, loads, strict=True)
        ]
    total = sum(raw)
    if total <= 0:  # cannot happen (someone is at or below the mean), but never divide by 0
        raw, total = [float(w) for w in weights], float(total_weight)
    return [r / total for r in raw]


def quantized(fractions: Sequence[float], units: int) -> tuple[int, ...]:
    """Whole slots out of `units` per member, by largest remainder (summing to `units`)."""
    exact = [f * units for f in fractions]
    whole = [int(x) for x in exact]
    left = units - sum(whole)
    by_remainder = sorted(range(len(exact)), key=lambda i: (whole[i] - exact[i], i))
    for i in by_remainder[:left]:
        whole[i] += 1
    return tuple(whole)


def leader(
    members: Sequence[Member], loads: Sequence[float], slot: int, usable: Sequence[bool]
) -> int:
    """The index of the member that leads in this slot."""
    units = quantized(shares(members, loads, usable), slots(len(members)))
    cycle = sequence(units)
    return cycle[slot % len(cycle)]
