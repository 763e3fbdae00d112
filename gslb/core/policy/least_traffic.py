"""least_traffic: least reported traffic per unit of weight first.

Rule: candidates are ordered by `traffic / weight` ascending, traffic being the bytes or
packets per second the member's agent reports. Members without a fresh report follow those
with one, in their incoming order: no report is no evidence of being idle.

Origin: RFC 2391 §3.3.3 (least traffic first).
"""

from __future__ import annotations

import math

from gslb.core.policy import Candidates, Context
from gslb.core.pools import Member


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    def key(m: Member) -> float:
        traffic = ctx.load(m).traffic
        return math.inf if traffic is None else traffic / m.weight

    scored = sorted(candidates, key=key)
    ctx.note(lambda: "traffic per weight: " + ", ".join(f"{m.address}={key(m):g}" for m in scored))
    return tuple(scored)
