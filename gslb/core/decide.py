"""Running a pool's policy: steps in order, the fallback, and an account of each step.

`decide` is the one place that knows how steps chain: it applies them in the pool's order and,
when `health` leaves nothing, applies the pool's `fallback` (all members, none, another pool,
or fixed addresses) before going on. With `explain=True` it records, per step, what came in,
what went out and the step's own notes; that record is what `gslb explain` and the API show.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from gslb.core import slowstart
from gslb.core.location import ClientInfo
from gslb.core.policy import STEPS, Candidates, Context
from gslb.core.pools import Pool
from gslb.core.state import ClusterState

MAX_PERIOD = 2520  # lcm(1..10): rotations of up to 10 candidates stay exact


@dataclass(frozen=True, slots=True)
class StepTrace:
    step: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    pool: Pool  # the pool whose members answer (another one after a pool fallback)
    members: Candidates
    fallback: str | None = None  # which fallback was used, if any
    trace: tuple[StepTrace, ...] = ()


def decide(
    pool: Pool,
    state: ClusterState,
    pools: Mapping[str, Pool],
    client: ClientInfo | None = None,
    slot: int = 0,
    client_key: bytes = b"",
    explain: bool = False,
) -> Decision:
    """The ordered answer of `pool` for this client and slot."""
    trace: list[StepTrace] = []
    candidates = pool.members
    fallback = None
    memo: dict[int, bool] = {}

    def slow_start(candidates: Candidates) -> Candidates:
        ctx = Context(pool, state, client, slot, client_key, [] if explain else None)
        return _slow_start(candidates, ctx, trace)

    for i, name in enumerate(pool.steps):
        notes: list[str] | None = [] if explain else None
        ctx = Context(pool, state, client, slot, client_key, notes, pool.steps[:i], memo)
        if name == "limit":
            candidates = slow_start(candidates)
        before = candidates
        candidates = STEPS[name].apply(candidates, ctx)
        if name == "health" and not candidates:
            fallback = pool.fallback.kind
            other_pool = pools.get(pool.fallback.pool or "")
            if pool.fallback.kind == "pool" and other_pool is not None:
                if notes is not None:
                    notes.append(f"nothing healthy: answering from pool {other_pool.name}")
                    trace.append(_trace(name, before, candidates, notes))
                other = decide(other_pool, state, pools, client, slot, client_key, explain)
                return Decision(other.pool, other.members, "pool", (*trace, *other.trace))
            candidates = _fallback_members(pool, state)
            if notes is not None:
                notes.append(f"nothing healthy: fallback {pool.fallback.kind}")
        if notes is not None:
            trace.append(_trace(name, before, candidates, notes))
    if "limit" not in pool.steps:
        candidates = slow_start(candidates)
    return Decision(pool, candidates, fallback, tuple(trace))


def _slow_start(candidates: Candidates, ctx: Context, trace: list[StepTrace]) -> Candidates:
    """Slow start of recovered members, between the ordering steps and `limit`."""
    if not state_ramps(ctx):
        return candidates
    out = slowstart.apply(candidates, ctx)
    if ctx.notes is not None and ctx.notes:
        trace.append(_trace("slow_start", candidates, out, ctx.notes))
    return out


def state_ramps(ctx: Context) -> bool:
    return bool(ctx.state.ramp) and ctx.pool.slow_start > 0


def _fallback_members(pool: Pool, state: ClusterState) -> Candidates:
    if pool.fallback.kind == "all":
        # Fail open: every enabled member, whatever the checks say. Drained members stay out:
        # an operator took them away on purpose, often because they are being worked on.
        return tuple(
            m
            for m in pool.members
            if m.admin == "enabled"
            and m.key not in state.drained
            and m.address not in state.leaving
        )
    if pool.fallback.kind == "addresses":
        return pool.fallback.members
    return ()


def _trace(name: str, before: Candidates, after: Candidates, notes: list[str]) -> StepTrace:
    return StepTrace(
        name, tuple(m.address for m in before), tuple(m.address for m in after), tuple(notes)
    )


def period(pool: Pool, state: ClusterState, pools: Mapping[str, Pool]) -> int:
    """How many rotation slots make every rotating step of `pool` come round evenly.

    Only the filtering steps change which candidates there are, and they drop for reasons
    that are not the client's, so the candidates each rotating step will see are known from
    the state.
    """
    candidates = pool.members
    periods = [1]
    memo: dict[int, bool] = {}
    for i, name in enumerate(pool.steps):
        step = STEPS[name]
        ctx = Context(pool, state, before=pool.steps[:i], memo=memo)
        periods.append(step.period(candidates, ctx))
        if step.FILTERS:
            candidates = step.apply(candidates, ctx)
            if name == "health" and not candidates:
                other_pool = pools.get(pool.fallback.pool or "")
                if pool.fallback.kind == "pool" and other_pool is not None:
                    return period(other_pool, state, pools)
                candidates = _fallback_members(pool, state)
    last = Context(pool, state)
    if state_ramps(last) and slowstart.ramping(candidates, last):
        periods.append(slowstart.SLOTS)
    return combine(periods)


def combine(periods: list[int]) -> int:
    """Slots that bring every period round evenly: their least common multiple, or (when
    that is too many reply variants to cache) the longest of them."""
    total = math.lcm(*periods) if periods else 1
    return total if total <= MAX_PERIOD else max(periods)
