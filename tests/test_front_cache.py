"""The UDP front cache (`answer_udp`): the same replies as the whole way, rotation intact, and
nothing stale after a snapshot swap (issue 7, "Done when")."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dns.edns
import dns.message
import pytest

from gslb.core.answer import Client, handle
from gslb.core.front import Front, answer_udp
from gslb.core.replycache import ReplyCache
from gslb.core.snapshot import Snapshot
from gslb.core.state import ClusterState, MemberState
from gslb.shell.geoip import GeoIpLocator
from tests.geoip_fixtures import LONDON, NEW_YORK, write_city
from tests.helpers import snapshot_of, write_zones

ZONE = """\
zone: gslb.example.com
soa: {mname: ns1, rname: hostmaster.example.com.}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
isps:
  isp-a: [192.0.2.0/24]
  isp-b: [198.51.100.0/24]
sites:
  lon: {lat: 51.5, lon: -0.13}
  nyc: {lat: 40.7, lon: -74.0}
pools:
  www:
    policy: [health, isp_interleave, limit]
    max_answers: 2
    members:
      - {address: 192.0.2.10}
      - {address: 198.51.100.10}
      - {address: 192.0.2.20}
      - {address: 198.51.100.20}
  near:
    policy: [health, proximity, limit]
    max_answers: 1
    members:
      - {address: 192.0.2.30, site: lon}
      - {address: 198.51.100.30, site: nyc}
"""


@pytest.fixture
def snapshot(tmp_path: Path) -> Snapshot:
    return snapshot_of(write_zones(tmp_path / "zones", {"z.yaml": ZONE}))


def wire(name: str, ecs: str | None = None, qid: int = 1) -> bytes:
    message = dns.message.make_query(name, "A", use_edns=0, payload=1232)
    if ecs is not None:
        message.use_edns(0, payload=1232, options=[dns.edns.ECSOption(ecs, 24)])
    message.id = qid
    return message.to_wire()


def addresses(reply: bytes | None) -> list[str]:
    assert reply
    return [rr.to_text() for rrset in dns.message.from_wire(reply).answer for rr in rrset]


def test_the_front_gives_the_replies_of_the_whole_way_in_the_same_rotation(
    snapshot: Snapshot,
) -> None:
    front, fast_cache, slow_cache = Front(), ReplyCache(), ReplyCache()
    for qid in range(40):
        for name in ("www.gslb.example.com", "WwW.GsLb.ExAmPlE.CoM", "ns1.gslb.example.com"):
            query = wire(name, qid=qid)
            fast = answer_udp(query, "203.0.113.5", snapshot, fast_cache, front)
            slow = handle(query, Client("203.0.113.5", 5353), snapshot, slow_cache)
            assert fast == slow  # byte for byte, letter case and ID included
    assert len(front.entries) == 3
    # The answers handed out are counted the same either way.
    assert fast_cache.take_tally() == slow_cache.take_tally()


def test_the_leading_isp_still_rotates_through_the_front(snapshot: Snapshot) -> None:
    front, cache = Front(), ReplyCache()
    firsts = [
        addresses(answer_udp(wire("www.gslb.example.com"), "203.0.113.5", snapshot, cache, front))[
            0
        ]
        for _ in range(8)
    ]
    assert {f.split(".")[0] for f in firsts} == {"192", "198"}


def test_a_health_change_shows_in_the_very_next_answer(snapshot: Snapshot) -> None:
    front, cache = Front(), ReplyCache()
    query = wire("www.gslb.example.com")
    seen = set()
    for _ in range(4):
        seen |= set(addresses(answer_udp(query, "203.0.113.5", snapshot, cache, front)))
    assert "192.0.2.10" in seen
    down = ClusterState({"gslb.example.com/www/192.0.2.10": MemberState("down")})
    swapped = dataclasses.replace(snapshot, version=snapshot.version + 1, state=down)
    for _ in range(8):  # every slot, each the first answer after the swap for its slot
        assert "192.0.2.10" not in addresses(
            answer_udp(query, "203.0.113.5", swapped, cache, front)
        )


def test_location_answers_are_kept_per_resolver_or_per_client_subnet(tmp_path: Path) -> None:
    city = write_city(tmp_path / "city.mmdb")
    snapshot = dataclasses.replace(
        snapshot_of(write_zones(tmp_path / "zones", {"z.yaml": ZONE})),
        locator=GeoIpLocator(city, None),
    )
    front, cache = Front(), ReplyCache()
    near = "near.gslb.example.com"
    # No Client Subnet: the resolver's own address decides, and is part of the key.
    assert addresses(answer_udp(wire(near), LONDON, snapshot, cache, front)) == ["192.0.2.30"]
    assert addresses(answer_udp(wire(near), NEW_YORK, snapshot, cache, front)) == ["198.51.100.30"]
    assert addresses(answer_udp(wire(near), LONDON, snapshot, cache, front)) == ["192.0.2.30"]
    # With a Client Subnet the subnet decides, whoever the resolver is.
    for resolver in (LONDON, NEW_YORK):
        reply = answer_udp(wire(near, "216.160.83.0"), resolver, snapshot, cache, front)
        assert addresses(reply) == ["198.51.100.30"]


def test_the_caches_are_bounded_in_octets_not_only_entries(snapshot: Snapshot) -> None:
    """Queries padded with large unknown EDNS options each make an entry keyed by their
    octets: the front holds no more octets than its bound, whatever their number."""
    front, cache = Front(max_bytes=1 << 20), ReplyCache(max_bytes=1 << 20)
    for i in range(400):
        message = dns.message.make_query("www.gslb.example.com", "A", use_edns=0, payload=4096)
        message.use_edns(0, payload=4096, options=[dns.edns.GenericOption(65001, b"x" * 8000)])
        message.id = i
        padded = message.to_wire(max_size=65535)
        padded = padded[:-1] + bytes([i % 256])  # every query different in its octets
        answer_udp(padded, "192.0.2.1", snapshot, cache, front)
        assert front.size <= front.max_bytes and cache.size <= cache.max_bytes
    assert len(front.entries) < 400, "older entries went when the octets ran out"
    assert addresses(answer_udp(wire("www.gslb.example.com"), "192.0.2.1", snapshot, cache, front))
