"""Pools answered through the whole core: client location, ECS scope, rotation, fallback."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import dns.edns
import dns.message
import dns.rcode
import pytest

from gslb import zonefiles
from gslb.core.answer import DEFER, Client, handle
from gslb.core.replycache import ReplyCache
from gslb.core.snapshot import Settings, Snapshot
from gslb.core.state import ClusterState, MemberState
from gslb.shell.geoip import GeoIpLocator
from tests.geoip_fixtures import LONDON, NEW_YORK, NEW_YORK_V6, NOWHERE, write_asn, write_city
from tests.helpers import write_zones

ZONE = """\
zone: gslb.example.com
soa: {mname: ns1, rname: hostmaster.example.com.}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
  api   CNAME www
  info  TXT   "static"
isps:
  isp-a: [192.0.2.0/24, 2001:db8:a::/48]
  isp-b: [198.51.100.0/24, 2001:db8:b::/48]
monitors:
  web: {type: http, port: 8080}
sites:
  lon: {lat: 51.51, lon: -0.13}
  nyc: {lat: 40.71, lon: -74.01}
pools:
  www:
    ttl: 20
    policy: [health, proximity, isp_interleave, limit]
    members:
      - {address: 192.0.2.10,    site: lon}
      - {address: 198.51.100.10, site: lon}
      - {address: 192.0.2.20,    site: nyc}
      - {address: 198.51.100.20, site: nyc}
  www6:
    name: www
    type: AAAA
    policy: [health, proximity, limit]
    members:
      - {address: "2001:db8:a::10", site: lon}
      - {address: "2001:db8:a::20", site: nyc}
  rr:
    policy: [health, round_robin, limit]
    members:
      - {address: 192.0.2.1}
      - {address: 192.0.2.2}
      - {address: 192.0.2.3}
  backup:
    policy: [health, limit]
    members: [{address: 192.0.2.99}]
  primary:
    policy: [health, limit]
    fallback: pool:backup
    members: [{address: 192.0.2.98, state: drained}]
  fixed:
    policy: [health, limit]
    fallback: [203.0.113.1, 203.0.113.2]
    members: [{address: 192.0.2.97, state: disabled}]
  nothing:
    policy: [health, limit]
    fallback: none
    members: [{address: 192.0.2.96, state: disabled}]
  open:
    policy: [health, limit]
    members: [{address: 192.0.2.95, state: drained}, {address: 192.0.2.94, state: disabled}]
  failopen:
    policy: [health, limit]
    monitor: web
    members: [{address: 192.0.2.93}, {address: 192.0.2.92, state: drained}, {address: 192.0.2.91}]
  sticky:
    policy: [health, sticky, limit]
    max_answers: 1
    members: [{address: 192.0.2.51}, {address: 192.0.2.52}, {address: 192.0.2.53}]
"""


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    base = tmp_path_factory.mktemp("pools")
    zones = write_zones(base / "zones", {"z.yaml": ZONE})
    locator = GeoIpLocator(write_city(base / "city.mmdb"), write_asn(base / "asn.mmdb"))
    loaded = zonefiles.load_directory(zones)
    return Snapshot(1, zonefiles.zone_set(loaded), Settings(), locator=locator)


def ask(
    snapshot: Snapshot,
    name: str,
    rdtype: str = "A",
    resolver: str = "127.0.0.1",
    subnet: tuple[str, int] | None = None,
    cache: ReplyCache | None = None,
) -> dns.message.Message:
    options = [dns.edns.ECSOption(*subnet)] if subnet else []
    q = dns.message.make_query(name, rdtype, use_edns=0, options=options)
    reply = handle(q.to_wire(), Client(resolver, 5353), snapshot, cache)
    assert reply is not None
    return dns.message.from_wire(reply)


def addresses(reply: dns.message.Message) -> list[str]:
    return [rr.to_text() for rrset in reply.answer for rr in rrset if rrset.rdtype in (1, 28)]


def scope(reply: dns.message.Message) -> int | None:
    found = [o for o in reply.options if isinstance(o, dns.edns.ECSOption)]
    return found[0].scopelen if found else None


def test_resolver_address_decides_without_ecs(snapshot: Snapshot) -> None:
    assert addresses(ask(snapshot, "www.gslb.example.com", resolver=LONDON))[0].startswith(
        ("192.0.2.10", "198.51.100.10")
    )
    assert addresses(ask(snapshot, "www.gslb.example.com", resolver=NEW_YORK))[0] in (
        "192.0.2.20",
        "198.51.100.20",
    )


def test_client_subnet_decides_and_scope_is_the_geoip_network(snapshot: Snapshot) -> None:
    london = ask(snapshot, "www.gslb.example.com", resolver=NEW_YORK, subnet=("81.2.69.0", 24))
    assert addresses(london)[0] in ("192.0.2.10", "198.51.100.10")
    assert scope(london) == 24
    # A longer source prefix still gets the GeoIP block's prefix, so resolvers share the answer.
    precise = ask(snapshot, "www.gslb.example.com", subnet=("81.2.69.142", 32))
    assert scope(precise) == 24
    v6 = ask(snapshot, "www.gslb.example.com", "AAAA", subnet=(NEW_YORK_V6, 56))
    assert addresses(v6)[0] == "2001:db8:a::20"
    assert scope(v6) == 32


def test_unknown_client_keeps_configured_order_with_the_unknown_block_as_scope(
    snapshot: Snapshot,
) -> None:
    reply = ask(snapshot, "www.gslb.example.com", subnet=(NOWHERE, 24))
    assert scope(reply) == 2  # GeoIP says: nothing known in 0.0.0.0/2
    assert addresses(reply)[0] in ("192.0.2.10", "198.51.100.10")


def test_static_data_and_client_blind_pools_have_scope_zero(snapshot: Snapshot) -> None:
    assert scope(ask(snapshot, "info.gslb.example.com", "TXT", subnet=("81.2.69.0", 24))) == 0
    assert scope(ask(snapshot, "rr.gslb.example.com", subnet=("81.2.69.0", 24))) == 0


def test_ecs_source_zero_uses_the_resolver_and_scope_zero(snapshot: Snapshot) -> None:
    reply = ask(snapshot, "www.gslb.example.com", resolver=NEW_YORK, subnet=("0.0.0.0", 0))
    assert addresses(reply)[0] in ("192.0.2.20", "198.51.100.20")
    assert scope(reply) == 0


def test_isp_leader_rotates_between_answers(snapshot: Snapshot) -> None:
    cache = ReplyCache()
    leaders = Counter()
    for _ in range(10):
        first = addresses(ask(snapshot, "www.gslb.example.com", resolver=LONDON, cache=cache))[0]
        leaders[first] += 1
    assert leaders == {"192.0.2.10": 5, "198.51.100.10": 5}


def test_round_robin_rotates_through_the_cache(snapshot: Snapshot) -> None:
    cache = ReplyCache()
    firsts = [addresses(ask(snapshot, "rr.gslb.example.com", cache=cache))[0] for _ in range(6)]
    assert Counter(firsts) == {"192.0.2.1": 2, "192.0.2.2": 2, "192.0.2.3": 2}


def test_cname_into_a_pool(snapshot: Snapshot) -> None:
    reply = ask(snapshot, "api.gslb.example.com", resolver=NEW_YORK)
    assert reply.answer[0].rdtype == 5
    assert addresses(reply)[0] in ("192.0.2.20", "198.51.100.20")
    assert reply.answer[1].ttl == 20


def test_pool_name_without_that_type_is_nodata(snapshot: Snapshot) -> None:
    reply = ask(snapshot, "rr.gslb.example.com", "AAAA")
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer == [] and reply.authority


def test_fallbacks(snapshot: Snapshot) -> None:
    assert addresses(ask(snapshot, "primary.gslb.example.com")) == ["192.0.2.99"]
    assert addresses(ask(snapshot, "fixed.gslb.example.com")) == ["203.0.113.1", "203.0.113.2"]
    nothing = ask(snapshot, "nothing.gslb.example.com")
    assert nothing.rcode() == dns.rcode.NOERROR and nothing.answer == []
    assert addresses(ask(snapshot, "open.gslb.example.com")) == [], "never to drained or disabled"


def test_fail_open_answers_enabled_members_only(snapshot: Snapshot) -> None:
    down = ClusterState(
        health={
            "gslb.example.com/failopen/192.0.2.93": MemberState("down"),
            "gslb.example.com/failopen/192.0.2.92": MemberState("down"),
            "gslb.example.com/failopen/192.0.2.91": MemberState("down"),
        }
    )
    reply = ask(dataclasses.replace(snapshot, version=7, state=down), "failopen.gslb.example.com")
    assert sorted(addresses(reply)) == ["192.0.2.91", "192.0.2.93"]


def test_down_member_leaves_and_next_answer_follows_a_new_snapshot(snapshot: Snapshot) -> None:
    cache = ReplyCache()
    assert "192.0.2.10" in addresses(ask(snapshot, "www.gslb.example.com", cache=cache))
    down = ClusterState(health={"gslb.example.com/www/192.0.2.10": MemberState("down")})
    after = dataclasses.replace(snapshot, version=2, state=down)
    for _ in range(4):
        assert "192.0.2.10" not in addresses(ask(after, "www.gslb.example.com", cache=cache))


def test_sticky_keeps_a_subnet_on_one_member_with_scope_24(snapshot: Snapshot) -> None:
    cache = ReplyCache()
    firsts = {
        addresses(
            ask(snapshot, "sticky.gslb.example.com", subnet=(f"10.1.{i}.0", 24), cache=cache)
        )[0]
        for i in range(40)
    }
    assert len(firsts) == 3, "subnets spread over the members"
    same = {
        addresses(ask(snapshot, "sticky.gslb.example.com", subnet=("10.1.7.0", 24), cache=cache))[0]
        for _ in range(5)
    }
    assert len(same) == 1
    assert scope(ask(snapshot, "sticky.gslb.example.com", subnet=("10.1.7.0", 24))) == 24


def test_answers_are_tallied_for_the_member_they_lead_with(snapshot: Snapshot) -> None:
    cache = ReplyCache()
    firsts = [addresses(ask(snapshot, "rr.gslb.example.com", cache=cache))[0] for _ in range(3)]
    tally = cache.take_tally()
    assert tally == {f"gslb.example.com/rr/{a}": 1 for a in firsts}
    assert len(tally) == 3, "round robin: each led once"
    assert cache.take_tally() == {}


def test_zone_refuses_bad_pools(tmp_path: Path) -> None:
    bad = ZONE.replace("site: nyc}", "site: par}", 1)
    with pytest.raises(zonefiles.ZoneLoadError) as info:
        zonefiles.load_directory(write_zones(tmp_path / "z", {"z.yaml": bad}))
    assert str(info.value).endswith("z.yaml:23: pools.www.members[2].site: unknown site 'par'")
    bad_ip = ZONE.replace("192.0.2.20,    site: nyc", "192.0.2.300, site: nyc")
    with pytest.raises(zonefiles.ZoneLoadError) as info:
        zonefiles.load_directory(write_zones(tmp_path / "y", {"z.yaml": bad_ip}))
    assert str(info.value).endswith("z.yaml:23: pools.www.members[2].address: not an IP address")


def test_cold_pool_defers_until_results_or_fail_open(snapshot: Snapshot) -> None:
    cold = dataclasses.replace(
        snapshot, version=9, state=ClusterState(cold=frozenset({"gslb.example.com/failopen"}))
    )
    wire = dns.message.make_query("failopen.gslb.example.com", "A").to_wire()
    assert handle(wire, Client("127.0.0.1", 1), cold, ReplyCache()) == DEFER
    opened = handle(wire, Client("127.0.0.1", 1), cold, ReplyCache(), fail_open=True)
    assert opened and sorted(addresses(dns.message.from_wire(opened))) == [
        "192.0.2.91",
        "192.0.2.93",
    ]
    static = dns.message.make_query("info.gslb.example.com", "TXT").to_wire()
    assert handle(static, Client("127.0.0.1", 1), cold, ReplyCache()), "only that pool waits"
