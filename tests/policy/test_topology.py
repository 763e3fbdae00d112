from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.location import ClientInfo
from gslb.core.policy import topology
from gslb.core.pools import TopologyRule
from tests.policy.strategies import client_at, context, member, members, pool

RULES = (
    TopologyRule(countries=frozenset({"GB"}), prefer=("lon", "fra")),
    TopologyRule(continents=frozenset({"AS"}), prefer=("sgp",)),
    TopologyRule(networks=(ipaddress.ip_network("203.0.113.0/24"),), prefer=("nyc",)),
)


@given(members(), st.sampled_from(["GB", "US", "SG", None]))
def test_preferred_sites_first_others_in_order(ms: list, country: str | None) -> None:
    p = pool(ms, topology=RULES)
    client = client_at(0, 0, country=country, continent="AS" if country == "SG" else None)
    out = topology.apply(p.members, context(p, client=client))
    assert sorted(out, key=ms.index) == ms
    prefer = {"GB": ["lon", "fra"], "SG": ["sgp"]}.get(country or "", [])
    ranks = [
        prefer.index(m.site.name) if m.site and m.site.name in prefer else len(prefer) for m in out
    ]
    assert ranks == sorted(ranks)


def test_cidr_rule_matches_the_client_address() -> None:
    ms = [member(1, site="lon"), member(2, site="nyc")]
    p = pool(ms, topology=RULES)
    inside = ClientInfo(ipaddress.ip_address("203.0.113.7"), None, None)
    outside = ClientInfo(ipaddress.ip_address("198.51.100.7"), None, None)
    assert topology.apply(p.members, context(p, client=inside))[0].site.name == "nyc"  # type: ignore[union-attr]
    assert topology.apply(p.members, context(p, client=outside)) == tuple(ms)
