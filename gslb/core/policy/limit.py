"""limit: keep the first `max_answers` candidates.

Rule: truncation, nothing else; it belongs last. Fewer addresses keep replies small (no
truncation to TCP) while still giving clients that try several addresses somewhere to go.
"""

from __future__ import annotations

from gslb.core.policy import Candidates, Context


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    kept = candidates[: ctx.pool.max_answers]
    if len(kept) < len(candidates):
        ctx.note(f"kept the first {len(kept)} of {len(candidates)} (max_answers)")
    return kept
