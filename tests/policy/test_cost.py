from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.policy import cost
from gslb.core.state import ClusterState, Load
from tests.policy.strategies import client_at, clients, context, member, members, pool, states


@given(st.data())
def test_unreachable_members_are_left_out_unless_none_is_reachable(data: st.DataObject) -> None:
    ms = data.draw(members())
    state = data.draw(states(ms))
    p = pool(ms)
    ctx = context(p, state, data.draw(clients()))
    out = cost.apply(p.members, ctx)
    reachable = [m for m in ms if not cost.path_down(m, ctx)]
    assert sorted(out, key=ms.index) == (reachable or ms)


def test_distance_times_load() -> None:
    near_busy = member(1, site="lon")
    far_idle = member(2, site="nyc")
    p = pool([near_busy, far_idle])
    client = client_at(51.5, -0.1)
    quiet = ClusterState()
    assert cost.apply(p.members, context(p, quiet, client))[0] is near_busy
    busy = ClusterState(load={near_busy.address: Load(sessions=20)})
    # London: (1 + 0) x 21 = 21; New York: (1 + 5.57) x 1 = 6.6
    assert cost.apply(p.members, context(p, busy, client))[0] is far_idle
    cut = ClusterState(isp_paths_down=frozenset({("isp-a", "nyc")}))
    a_nyc = member(3, site="nyc", isp="isp-a")
    p2 = pool([a_nyc, near_busy])
    assert cost.apply(p2.members, context(p2, cut, client_at(40.7, -74.0))) == (near_busy,)


COSTED = {
    "zone": "z",
    "soa": {"mname": "ns1", "rname": "h.z."},
    "sites": {"lon": {"lat": 51.51, "lon": -0.13}, "nyc": {"lat": 40.71, "lon": -74.01}},
    # A transit contract: from Great Britain, New York is cheap and London dear.
    "costs": [
        {"match": {"country": ["GB"]}, "sites": {"lon": 3, "nyc": 1}},
        {"match": {"cidr": ["198.51.100.0/25"]}, "sites": {"lon": 10}},
    ],
    "pools": {
        "p": {
            "policy": ["health", "cost", "limit"],
            "members": [
                {"address": "192.0.2.1", "site": "lon"},
                {"address": "192.0.2.2", "site": "nyc"},
            ],
        }
    },
}


def test_a_routing_cost_table_overrides_distance_for_the_clients_it_matches() -> None:
    from gslb.core.policy import precision
    from gslb.core.pooldoc import GslbDoc
    from gslb.core.pools import compile_pools
    from gslb.core.stored import join, split
    from gslb.core.zonedoc import ZoneDoc

    doc = ZoneDoc.model_validate(COSTED)
    gslb = GslbDoc.model_validate({k: COSTED[k] for k in ("sites", "costs", "pools")})
    p = compile_pools(b"\x01z\x00", gslb)["p"]
    london = client_at(51.5, -0.1, country="GB")
    out = cost.apply(p.members, context(p, ClusterState(), london))
    assert [m.address for m in out] == ["192.0.2.2", "192.0.2.1"], "the table, not the map"
    paris = client_at(48.9, 2.3, country="FR")
    assert cost.apply(p.members, context(p, ClusterState(), paris))[0].address == "192.0.2.1"
    cidr = client_at(51.5, -0.1, "198.51.100.7")  # no country: the CIDR rule matches
    assert cost.apply(p.members, context(p, ClusterState(), cidr))[0].address == "192.0.2.2"
    assert precision(p).ipv4 == 25, "the decision depends on /25 of the client address"
    head, records, pools = split(doc.model_dump(exclude_none=True))
    assert join(head, records, pools)["costs"] == doc.model_dump(exclude_none=True)["costs"]
