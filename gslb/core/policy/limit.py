"""limit: keep the first `max_answers` candidates.

Rule: truncation, nothing else; it belongs last. Fewer addresses keep replies small (no
truncation to TCP) while still giving clients that try several addresses somewhere to go.

Origin: RFC 1035 §4.2.1 (UDP messages are limited to 512 octets; longer ones are truncated
and retried over TCP); *To Be Multihomed*'s clients that try the addresses in order need
more than one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gslb.core.policy import BLIND, Candidates, Context, Input, Precision, still

if TYPE_CHECKING:
    from gslb.core.pools import Pool

FILTERS = False  # it drops candidates, but it comes last: no step after it rotates
period = still


def reads(pool: Pool) -> frozenset[Input]:
    return frozenset()


def precision(pool: Pool) -> Precision:
    return BLIND


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    kept = candidates[: ctx.pool.max_answers]
    if len(kept) < len(candidates):
        ctx.note(f"kept the first {len(kept)} of {len(candidates)} (max_answers)")
    return kept
