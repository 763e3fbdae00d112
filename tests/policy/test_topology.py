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


OCTODNS_LIKE = (
    TopologyRule(subdivisions=frozenset({"US-CA"}), prefer=("sgp",), drop_others=True),
    TopologyRule(countries=frozenset({"GB"}), prefer=("lon", "fra"), drop_others=True),
    TopologyRule(prefer=("nyc", "fra"), drop_others=True),  # names no client: everyone else
)


def test_a_rule_with_others_drop_keeps_only_its_sites_in_order() -> None:
    ms = [member(1, site="nyc"), member(2, site="fra"), member(3, site="lon"), member(4)]
    p = pool(ms, topology=OCTODNS_LIKE)
    out = topology.apply(p.members, context(p, client=client_at(51.5, 0, country="GB")))
    assert [m.site.name for m in out] == ["lon", "fra"]  # type: ignore[union-attr]


def test_a_rule_naming_no_clients_catches_everyone_even_without_a_location() -> None:
    ms = [member(1, site="lon"), member(2, site="nyc"), member(3, site="fra")]
    p = pool(ms, topology=OCTODNS_LIKE)
    nowhere = ClientInfo(ipaddress.ip_address("198.51.100.7"), None, None)
    for client in (nowhere, client_at(1.3, 103.8, country="SG"), None):
        out = topology.apply(p.members, context(p, client=client))
        assert [m.site.name for m in out] == ["nyc", "fra"]  # type: ignore[union-attr]


def test_a_subdivision_rule_matches_before_its_country_would() -> None:
    ms = [member(1, site="nyc"), member(2, site="sgp")]
    p = pool(ms, topology=OCTODNS_LIKE)
    california = client_at(37.8, -122.4, country="US", subdivision="US-CA")
    new_york = client_at(40.7, -74.0, country="US", subdivision="US-NY")
    assert [m.address for m in topology.apply(p.members, context(p, client=california))] == [
        "10.0.0.2"
    ]
    assert [m.address for m in topology.apply(p.members, context(p, client=new_york))] == [
        "10.0.0.1"
    ]
