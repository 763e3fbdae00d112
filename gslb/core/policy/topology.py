"""topology: order by a rule table of client country / continent / ASN / CIDR -> sites.

Rule: the pool's `topology` rules (else the zone's) are tried in order; the first whose
`match` fits the client (any listed country, subdivision, continent, AS number or network
containing the client address; a match that lists nothing fits every client) decides:
candidates at its `prefer` sites come first, in the order the sites are listed, and the others
follow in their incoming order, or are dropped when the rule says `others: drop`. No rule
matching (or no client location) keeps the order.

Origin: gdnsd's and the commercial GSLBs' static topology maps, for when an operator knows
better than geometry (peering, regulation, data residency).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from gslb.core.policy import Candidates, Context, Input, Order, Precision, still

if TYPE_CHECKING:
    from gslb.core.location import ClientInfo
    from gslb.core.pools import Member, Pool, TopologyRule

R = TypeVar("R")

FILTERS = False
ORDERS: Order = "place"
WEIGHS = False
period = still


def reads(pool: Pool) -> frozenset[Input]:
    return frozenset({"client"})


def precision(pool: Pool) -> Precision:
    """The GeoIP network, and as many bits as the longest CIDR rule needs."""
    return Precision(True, *cidr_bits(pool.topology))


def apply(candidates: Candidates, ctx: Context) -> Candidates:
    rule = matching_rule(ctx)
    if rule is None:
        ctx.note("no topology rule matches the client: order kept")
        return candidates
    rank = {site: i for i, site in enumerate(rule.prefer)}
    others = len(rank)

    def key(m: Member) -> int:
        return rank.get(m.site.name, others) if m.site is not None else others

    ordered = sorted(candidates, key=key)
    if rule.drop_others:
        ordered = [m for m in ordered if key(m) < others]
        ctx.note(f"rule keeps only {', '.join(rule.prefer)}, in that order")
    else:
        ctx.note(f"rule prefers {', '.join(rule.prefer)}")
    return tuple(ordered)


def matching_rule(ctx: Context) -> TopologyRule | None:
    return first_match(ctx.pool.topology, ctx.client, lambda rule: rule)


def first_match(
    rules: Iterable[R], client: ClientInfo | None, match: Callable[[R], TopologyRule]
) -> R | None:
    """The first of `rules` whose match part fits the client (country, subdivision,
    continent, AS number, or a network holding its address), or names no client at all."""
    location = client.location if client is not None else None
    for rule in rules:
        m = match(rule)
        if m.everyone:
            return rule
        if client is None:
            continue
        if location is not None:
            if location.country and location.country.upper() in m.countries:
                return rule
            if location.subdivision and location.subdivision.upper() in m.subdivisions:
                return rule
            if location.continent and location.continent.upper() in m.continents:
                return rule
            if location.asn is not None and location.asn in m.asns:
                return rule
        if any(
            client.address.version == net.version and client.address in net for net in m.networks
        ):
            return rule
    return None


def cidr_bits(rules: Iterable[TopologyRule]) -> tuple[int, int]:
    """Prefix bits of the client address that CIDR rules need: (IPv4, IPv6)."""
    nets = [n for rule in rules for n in rule.networks]
    return (
        max((n.prefixlen for n in nets if n.version == 4), default=0),
        max((n.prefixlen for n in nets if n.version == 6), default=0),
    )
