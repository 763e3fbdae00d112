"""weighted: share the lead in proportion to `weight`.

Rule: a smooth weighted round-robin sequence (each member appears `weight` times per cycle,
spread out as evenly as possible) is read from position `slot mod cycle`; the order is the
members by first appearance from there. So over any whole cycle of queries each member leads
exactly `weight / sum(weights)` of the answers, and the members after the leader follow in a
weighted order too. Weights summing above 1000 are scaled down first, to bound the cycle.

Origin: RFC 2391 §3.3.4 (weighted load sharing); the sequence is the "smooth" weighted round
robin, which avoids sending a burst of consecutive answers to the heaviest member.
"""

from __future__ import annotations

from functools import lru_cache

from gslb.core.policy import Candidates, Context

ROTATES = True
MAX_CYCLE = 1000


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    if len(candidates) < 2:
        return candidates
    sequence = _sequence(tuple(m.weight for m in candidates))
    start = ctx.slot % len(sequence)
    order: list[int] = []
    for i in range(len(sequence)):
        index = sequence[(start + i) % len(sequence)]
        if index not in order:
            order.append(index)
            if len(order) == len(candidates):
                break
    ctx.note(
        lambda: (
            f"cycle position {start} of {len(sequence)}; weights "
            + ", ".join(f"{m.address}={m.weight}" for m in candidates)
        )
    )
    return tuple(candidates[i] for i in order)


def period(candidates: Candidates) -> int:
    return len(_sequence(tuple(m.weight for m in candidates))) if len(candidates) > 1 else 1


@lru_cache(maxsize=1024)
def _sequence(weights: tuple[int, ...]) -> tuple[int, ...]:
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
