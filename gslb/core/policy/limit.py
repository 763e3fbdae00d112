"""limit: keep the first `max_answers` candidates.

Rule: truncation; it belongs last. When the addresses kept (two or more) are all at one site
and a candidate left out is at another, the last one kept gives way to the first such
candidate: a client that tries the addresses in order still has somewhere to go when the
whole site is down, instead of failing until its resolver's cache expires. Fewer addresses
keep replies small (no truncation to TCP) while still giving clients that try several
addresses somewhere to go.

Origin: RFC 1035 §4.2.1 (UDP messages are limited to 512 octets; longer ones are truncated
and retried over TCP); *To Be Multihomed*'s clients that try the addresses in order need
more than one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gslb.core.policy import BLIND, Candidates, Context, Input, Order, Precision, still

if TYPE_CHECKING:
    from gslb.core.pools import Pool

FILTERS = False  # it drops candidates, but it comes last: no step after it rotates
ORDERS: Order = None
WEIGHS = False
period = still


def reads(pool: Pool) -> frozenset[Input]:
    return frozenset()


def precision(pool: Pool) -> Precision:
    return BLIND


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    kept = candidates[: ctx.pool.max_answers]
    if len(kept) < len(candidates):
        ctx.note(f"kept the first {len(kept)} of {len(candidates)} (max_answers)")
        site = kept[0].site
        if len(kept) >= 2 and site is not None and all(m.site is site for m in kept):
            other = next((m for m in candidates[len(kept) :] if m.site not in (None, site)), None)
            if other is not None:
                ctx.note(f"{other.address} of another site last, for when {site.name} is down")
                return (*kept[:-1], other)
    return kept
