from __future__ import annotations

import dataclasses
import math
from collections import Counter

from hypothesis import given

from gslb.core.location import distance_km
from gslb.core.policy import proximity
from gslb.core.pools import Site
from gslb.core.state import ClusterState, Load, anticipated
from tests.policy.strategies import client_at, clients, context, member, members, pool


@given(members(), clients())
def test_nearest_site_first(ms: list, client: object) -> None:
    p = pool(ms)  # no capacities reached: no spill-over without load reports
    out = proximity.apply(p.members, context(p, client=client))  # type: ignore[arg-type]
    loc = client.location  # type: ignore[attr-defined]
    d = [
        math.inf if m.site is None else distance_km(loc.lat, loc.lon, m.site.lat, m.site.lon)
        for m in out
    ]
    assert d == sorted(d)
    assert sorted(out, key=ms.index) == ms


def test_without_location_the_order_is_kept() -> None:
    ms = [member(1, site="nyc"), member(2, site="lon")]
    p = pool(ms)
    assert proximity.apply(p.members, context(p)) == tuple(ms)


def test_london_client_gets_london_first_and_new_york_client_new_york() -> None:
    ms = [member(1, site="nyc"), member(2, site="lon"), member(3, site="sgp")]
    p = pool(ms)
    assert (
        proximity.apply(p.members, context(p, client=client_at(51.5, -0.1)))[0].site.name == "lon"
    )  # type: ignore[union-attr]
    assert (
        proximity.apply(p.members, context(p, client=client_at(40.7, -74.0)))[0].site.name == "nyc"
    )  # type: ignore[union-attr]
    assert (
        proximity.apply(p.members, context(p, client=client_at(1.3, 103.8)))[0].site.name == "sgp"
    )  # type: ignore[union-attr]


def test_capacity_spills_the_excess_over_sites_with_headroom() -> None:
    # London is at 90 of 100, half way from where spilling starts (80 %) to full: half of
    # the answers lead elsewhere, shared by Frankfurt and New York by their headroom (3:1).
    lon = member(1, site="lon", capacity=100)
    fra = member(2, site="fra", capacity=100)
    nyc = member(3, site="nyc", capacity=100)
    state = ClusterState(
        load={
            lon.address: Load(sessions=90),
            fra.address: Load(sessions=25),
            nyc.address: Load(sessions=75),
        }
    )
    p = pool([lon, fra, nyc])
    client = client_at(51.5, -0.1)
    leaders: Counter[str] = Counter()
    draws = 20_000
    for i in range(draws):
        key = i.to_bytes(4, "big")  # many client networks
        out = proximity.apply(p.members, context(p, state, client, slot=i % 20, client_key=key))
        leaders[out[0].site.name] += 1  # type: ignore[union-attr]
    assert abs(leaders["lon"] / draws - 1 / 2) < 0.02
    spilled = leaders["fra"] + leaders["nyc"]
    assert abs(leaders["fra"] / spilled - 0.75) < 0.03, (
        "in proportion to headroom, not all to the next"
    )


def test_a_site_load_that_only_wanders_spills_as_if_it_stood_still() -> None:
    """Two London members at 4 500 sessions each of a 10 000 capacity (90 %: half spills).
    Their reports move by their noise (each about sqrt(4 500) = 67), projected 10 s ahead:
    the spill stays at half, instead of jumping with the projection. A real rise spills more."""
    lon1, lon2 = member(1, site="lon", capacity=5000), member(2, site="lon", capacity=5000)
    fra = member(3, site="fra", capacity=10_000)
    p = pool([lon1, lon2, fra])

    def spilled(*loads: Load) -> float:
        state = ClusterState(load={lon1.address: loads[0], lon2.address: loads[1]})
        draws = 4000
        led = sum(
            proximity.apply(
                p.members,
                context(
                    p, state, client_at(51.5, -0.1), slot=i % 20, client_key=i.to_bytes(4, "big")
                ),
            )[0]
            is fra
            for i in range(draws)
        )
        return led / draws

    def report(before: float, now: float) -> Load:
        return anticipated(Load(sessions=before, at=10.0), Load(sessions=now, at=15.0), 10.0)

    steady = spilled(Load(sessions=4500), Load(sessions=4500))
    assert abs(steady - 0.5) < 0.03
    # +80 each in 5 s, projected to +160 more each: 4 820 a member, 96 % of capacity.
    wander = spilled(report(4420, 4500), report(4420, 4500))
    assert abs(wander - steady) < 0.03, "the wander is noise, not a trend"
    rise = spilled(report(4000, 4500), report(4000, 4500))
    assert rise > steady + 0.3, "a rise of 500 each is a trend: it spills ahead of it"


def test_no_spill_below_the_spill_threshold_and_all_of_it_at_capacity() -> None:
    lon = member(1, site="lon", capacity=100)
    fra = member(2, site="fra", capacity=100)
    p = pool([lon, fra])
    full = ClusterState(load={lon.address: Load(sessions=100)})
    for i in range(200):
        out = proximity.apply(
            p.members, context(p, full, client_at(51.5, -0.1), slot=i, client_key=bytes([i]))
        )
        assert out[0] is fra
    state = ClusterState(load={lon.address: Load(sessions=79)})
    p = pool([lon, fra])
    for i in range(200):
        out = proximity.apply(
            p.members, context(p, state, client_at(51.5, -0.1), slot=i, client_key=bytes([i]))
        )
        assert out[0] is lon


def test_site_capacity_overrides_member_capacities() -> None:
    import dataclasses

    from tests.policy.strategies import SITES

    small_lon = dataclasses.replace(SITES["lon"], capacity=10)
    lon = dataclasses.replace(member(1, site="lon", capacity=1000), site=small_lon)
    fra = member(2, site="fra", capacity=100)
    state = ClusterState(load={lon.address: Load(sessions=20)})  # over the site's 10
    p = pool([lon, fra])
    leads = Counter(
        proximity.apply(
            p.members,
            context(p, state, client_at(51.5, -0.1), slot=i % 20, client_key=i.to_bytes(4, "big")),
        )[0].site.name  # type: ignore[union-attr]
        for i in range(4000)
    )
    assert leads["fra"] == 4000, "over the site's own capacity, all of it spills"


def test_a_site_without_coordinates_comes_after_the_placed_ones() -> None:
    nowhere = dataclasses.replace(member(1, site="lon"), site=Site("named-only", None, None))
    ms = [nowhere, member(2, site="nyc"), member(3, site="lon")]
    p = pool(ms)
    out = proximity.apply(p.members, context(p, client=client_at(51.5, -0.1)))
    assert [m.address for m in out] == ["10.0.0.3", "10.0.0.2", "10.0.0.1"]
