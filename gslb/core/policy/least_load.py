"""least_load: least weighted load first.

Rule: candidates are ordered by `sessions / weight`, ascending (stable for ties). Sessions
are the member agent's fresh report; without one, the answers this cluster handed out for the
member in the recent window stand in for new sessions, so load spreads even with no agents.

Origin: RFC 2391 §3.3.2-3.3.4: least load first, and least weighted load first
(`sum(session weights) / host weight`), with hosts reporting their own load (§3.2).
"""

from __future__ import annotations

from gslb.core.policy import Candidates, Context


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    scored = sorted(candidates, key=lambda m: ctx.sessions(m) / m.weight)
    ctx.note(
        lambda: (
            "load per weight: "
            + ", ".join(f"{m.address}={ctx.sessions(m) / m.weight:g}" for m in scored)
        )
    )
    return tuple(scored)
