"""sticky: the same clients keep the same member while it is up.

Rule: weighted rendezvous hashing (highest random weight) on the client's subnet (/24 for
IPv4, /56 for IPv6): each candidate scores `-weight / ln(h)`, with `h` a stable hash of (subnet,
member address) in (0, 1), and the highest score leads. A member leaving moves only the
clients it held (1/n of them), spread over the others; one joining takes only its share.
After a step that orders by place, the hashing picks inside each site's run.

Origin: client affinity for stateful services; rendezvous hashing (Thaler & Ravishankar) for
minimal disruption.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from gslb.core.policy import Candidates, Context, Input, Order, Precision, by_tier, still
from gslb.core.policy._hash import unit

if TYPE_CHECKING:
    from gslb.core.pools import Member, Pool

IPV4_PREFIX = 24
IPV6_PREFIX = 56
FILTERS = False
ORDERS: Order = "lead"
WEIGHS = True
period = still


def reads(pool: Pool) -> frozenset[Input]:
    return frozenset({"client"})


def precision(pool: Pool) -> Precision:
    return Precision(ipv4=IPV4_PREFIX, ipv6=IPV6_PREFIX)


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    subnet = ctx.client_key

    def score(m: Member) -> float:
        return -m.weight / math.log(unit(subnet, m.address))

    ordered = by_tier(candidates, ctx, lambda t: tuple(sorted(t, key=score, reverse=True)))
    if ordered:
        ctx.note(f"client subnet hashes to {ordered[0].address} first")
    return tuple(ordered)
