"""Steps together: what a pipeline promises beyond each step's own rule."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from gslb.core.decide import decide, period
from gslb.core.location import distance_km
from gslb.core.state import ClusterState
from tests.policy.strategies import SITES, client_at, member, pool

SHARING = ("round_robin", "weighted", "least_load", "least_traffic", "sticky", "fastest")


@st.composite
def sited_members(draw: st.DrawFn) -> list:
    n = draw(st.integers(2, 8))
    return [
        member(
            i + 1,
            draw(st.sampled_from(sorted(SITES))),
            draw(st.sampled_from(("isp-a", "isp-b"))),
            weight=draw(st.integers(1, 4)),
        )
        for i in range(n)
    ]


@given(
    sited_members(),
    st.lists(st.sampled_from(SHARING), max_size=2),
    st.booleans(),
    st.sampled_from(sorted(SITES)),
    st.integers(0, 10_000),
)
def test_after_proximity_every_sharing_step_keeps_the_nearest_site_first(
    ms: list, sharing: list, interleave: bool, where: str, slot: int
) -> None:
    steps = ["health", "proximity", *sharing, *(["isp_interleave"] if interleave else []), "limit"]
    p = pool(ms, steps)
    site = SITES[where]
    client = client_at(site.lat + 0.5, site.lon + 0.5)
    out = decide(p, ClusterState(), {}, client, slot, b"k").members
    nearest = min(
        distance_km(client.location.lat, client.location.lon, m.site.lat, m.site.lon) for m in ms
    )  # type: ignore[union-attr]
    first = out[0].site
    assert distance_km(client.location.lat, client.location.lon, first.lat, first.lon) == nearest  # type: ignore[union-attr]


@given(sited_members(), st.sampled_from(("round_robin", "weighted", "least_load")))
def test_inside_the_nearest_site_the_lead_is_shared_over_a_period(ms: list, step: str) -> None:
    p = pool(ms, ["health", "proximity", step, "isp_interleave", "limit"])
    client = client_at(51.6, -0.2)  # London
    n = period(p, ClusterState(), {})
    leads = Counter(decide(p, ClusterState(), {}, client, s, b"k").members[0] for s in range(n))
    lon = [m for m in ms if m.site.name == "lon"]
    if len(lon) >= 2:
        assert set(leads) == set(lon), "every London member leads, nobody else"
