"""Hypothesis strategies and builders for policy tests: pools, members, state, clients."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from hypothesis import strategies as st

from gslb.core.location import ClientInfo, Location
from gslb.core.policy import Candidates, Context
from gslb.core.pools import Member, Pool, Site, TopologyRule
from gslb.core.records import A
from gslb.core.state import ClusterState, Load, MemberState

SITES = {
    "lon": Site("lon", 51.51, -0.13, "GB", "EU"),
    "nyc": Site("nyc", 40.71, -74.01, "US", "NA"),
    "sgp": Site("sgp", 1.35, 103.82, "SG", "AS"),
    "fra": Site("fra", 50.11, 8.68, "DE", "EU"),
}
ISPS = ("isp-a", "isp-b", "isp-c")


def member(
    i: int,
    site: str | None = None,
    isp: str | None = None,
    weight: int = 1,
    priority: int = 1,
    capacity: float | None = None,
    admin: str = "enabled",
) -> Member:
    address = str(ipaddress.ip_address(0x0A000000 + i))  # 10.0.0.i
    return Member(
        pool="z/p",
        rdata=ipaddress.ip_address(address).packed,
        site=SITES[site] if site else None,
        isp=isp,
        weight=weight,
        priority=priority,
        capacity=capacity,
        admin=admin,  # type: ignore[arg-type]
    )


def pool(members: Sequence[Member], steps: Sequence[str] = (), **kw: object) -> Pool:
    return Pool(
        zone="z",
        name="p",
        owner=b"\x01p\x01z\x00",
        rtype=A,
        ttl=20,
        max_answers=kw.pop("max_answers", 4),  # type: ignore[arg-type]
        steps=tuple(steps),
        members=tuple(members),
        **kw,  # type: ignore[arg-type]
    )


def context(
    p: Pool,
    state: ClusterState | None = None,
    client: ClientInfo | None = None,
    slot: int = 0,
    client_key: bytes = b"",
) -> Context:
    return Context(p, state or ClusterState(), client, slot, client_key)


def client_at(lat: float, lon: float, address: str = "192.0.2.1", **kw: object) -> ClientInfo:
    ip = ipaddress.ip_address(address)
    network = ipaddress.ip_network(f"{address}/{24 if ip.version == 4 else 48}", strict=False)
    return ClientInfo(ip, None, Location(network, lat, lon, **kw))  # type: ignore[arg-type]


@st.composite
def members(draw: st.DrawFn, min_size: int = 1, max_size: int = 10) -> list[Member]:
    n = draw(st.integers(min_size, max_size))
    out = []
    for i in range(n):
        out.append(
            member(
                i + 1,
                site=draw(st.sampled_from([None, *SITES])),
                isp=draw(st.sampled_from([None, *ISPS])),
                weight=draw(st.integers(1, 10)),
                priority=draw(st.integers(1, 3)),
                capacity=draw(st.one_of(st.none(), st.floats(1, 1000))),
                admin=draw(
                    st.sampled_from(["enabled", "enabled", "enabled", "drained", "disabled"])
                ),
            )
        )
    return out


@st.composite
def states(draw: st.DrawFn, candidates: Sequence[Member]) -> ClusterState:
    health = {}
    load = {}
    for m in candidates:
        health[m.key] = MemberState(
            health=draw(st.sampled_from(["up", "down", "unknown"])),
            rtt=draw(st.one_of(st.none(), st.floats(0.0001, 1.0))),
            paths_down=frozenset(draw(st.lists(st.sampled_from(ISPS), max_size=2))),
        )
        if draw(st.booleans()):
            load[m.address] = Load(
                sessions=draw(st.one_of(st.none(), st.floats(0, 1000))),
                traffic=draw(st.one_of(st.none(), st.floats(0, 1e6))),
            )
    down = frozenset(
        draw(
            st.lists(st.tuples(st.sampled_from(ISPS), st.sampled_from([None, *SITES])), max_size=2)
        )
    )
    return ClusterState(health=health, load=load, isp_paths_down=down)


@st.composite
def clients(draw: st.DrawFn) -> ClientInfo:
    lat = draw(st.floats(-89, 89))
    lon = draw(st.floats(-179, 179))
    return client_at(lat, lon, country=draw(st.sampled_from(["GB", "US", "SG", None])))


def addresses(candidates: Candidates) -> list[str]:
    return [m.address for m in candidates]


def assert_reorders_or_filters(before: Candidates, after: Candidates) -> None:
    """Every step returns some of its input, each once."""
    assert len(set(after)) == len(after)
    assert set(after) <= set(before)


__all__ = ["Location", "TopologyRule"]
