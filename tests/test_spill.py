"""Held spill-over (gslb.shell.spill): after a site loses capacity, the sites taking its load
spill at once what keeps them under 88 % of their capacity, and the fraction is then only
trimmed from their load. Read through the real answer path: who leads the answers."""

from __future__ import annotations

import ipaddress
from collections import Counter
from pathlib import Path

import immutables
import pytest

from gslb.core.decide import decide
from gslb.core.location import ClientInfo, Location
from gslb.core.pools import Pool
from gslb.core.state import ClusterState, Load, MemberState
from gslb.core.zone import Zone
from gslb.shell.spill import GAIN, TARGET, TRIM_EVERY, SpillControl
from tests.helpers import snapshot_of, write_zones

ZONE = """\
zone: z.example
soa: {mname: ns1, rname: h.z.example.}
records: |
  @ NS ns1
  ns1 A 192.0.2.53
sites:
  lon: {lat: 51.51, lon: -0.13}
  nyc: {lat: 40.71, lon: -74.01}
  sgp: {lat: 1.35, lon: 103.82}
isps:
  isp-a: [198.18.0.0/32]
  isp-b: [198.18.0.1/32]
pools:
  www:
    policy: [health, proximity]
    max_answers: 1
    members:
      - {address: 192.0.2.1, site: lon, capacity: 100}
      - {address: 192.0.2.2, site: lon, capacity: 100}
      - {address: 192.0.2.3, site: nyc, capacity: 100, isp: isp-a}
      - {address: 192.0.2.4, site: nyc, capacity: 100, isp: isp-b}
      - {address: 192.0.2.5, site: sgp, capacity: 100}
      - {address: 192.0.2.6, site: sgp, capacity: 100}
  plain:
    policy: [health, proximity]
    members:
      - {address: 192.0.2.7, site: lon}
      - {address: 192.0.2.8, site: nyc}
"""
SITE_OF = {f"192.0.2.{i}": s for i, s in enumerate(["lon"] * 2 + ["nyc"] * 2 + ["sgp"] * 2, 1)}


@pytest.fixture
def zone(tmp_path: Path) -> Zone:
    zones = snapshot_of(write_zones(tmp_path / "z", {"z.yaml": ZONE})).zones
    return next(iter(zones.zones.values()))


def state_of(pool: Pool, sessions: dict[str, float], down: set[str] = frozenset()) -> ClusterState:  # type: ignore[assignment]
    """Every member up but the sites in `down`; each site's sessions shared by its members."""
    health = {}
    load = {}
    for m in pool.members:
        site = SITE_OF[m.address]
        health[m.key] = MemberState("down" if site in down else "up")
        load[m.address] = Load(sessions=sessions[site] / 2)
    return ClusterState(health=immutables.Map(health), load=load)


NEW_YORKER = ClientInfo(
    ipaddress.ip_address("198.51.100.1"),
    None,
    Location(ipaddress.ip_network("198.51.100.0/24"), 40.7, -74.0),
)


class Node:
    """A DNS node's use of the control: it is told whose health changed, then asked for the
    state to install, from the state it answered from until then."""

    def __init__(self, zone: Zone) -> None:
        self.control = SpillControl()
        self.control.zone(None, zone, None)
        self.state = ClusterState()

    def install(self, state: ClusterState, now: float) -> ClusterState:
        self.control.heard(k for k, v in state.health.items() if self.state.health.get(k) != v)
        self.state = self.control.apply(self.state, state, now)
        return self.state


def new_york_kept(pool: Pool, state: ClusterState) -> float:
    """The share of a New York client's answers led by New York, over many client networks."""
    led: Counter[str] = Counter()
    for i in range(4000):
        key = i.to_bytes(4, "big")
        decision = decide(pool, state, {}, NEW_YORKER, slot=i % 20, client_key=key)
        led[SITE_OF[decision.members[0].address]] += 1
    return led["nyc"] / 4000


def test_a_site_taking_a_failed_sites_load_spills_at_once_what_keeps_it_under_target(
    zone: Zone,
) -> None:
    www = zone.pools_by_name["www"]
    node = Node(zone)
    assert set(node.control.pools) == {www.id}, "a pool without capacities is not looked at"
    steady = {"lon": 120.0, "nyc": 120.0, "sgp": 60.0}
    before = node.install(state_of(www, steady), now=0.0)
    assert dict(before.spill) == {}
    assert new_york_kept(www, before) == 1.0, "New York at 60 %: nothing spills"
    # London fails. New York still reports 120 (60 %, nothing to spill if read off its
    # load), but London's 120 are on their way: 240 for 200 of capacity.
    failed = node.install(state_of(www, steady, down={"lon"}), now=2.0)
    expected = 1 - TARGET * 200 / 240
    assert dict(failed.spill) == {(www.id, "nyc"): pytest.approx(expected)}
    assert new_york_kept(www, failed) == pytest.approx(1 - expected, abs=0.03)
    explained = decide(www, failed, {}, NEW_YORKER, explain=True)
    notes = [n for t in explained.trace if t.step == "proximity" for n in t.notes]
    assert any("27% spill held since a site lost capacity" in n for n in notes), notes
    # The load arrives (New York at 110 %): read off the load, everything would spill;
    # held, the fraction only moves by the trim, once per TRIM_EVERY seconds.
    arrived = {"lon": 0.0, "nyc": 220.0, "sgp": 80.0}
    soon = node.install(state_of(www, arrived, down={"lon"}), now=3.0)
    assert soon.spill[(www.id, "nyc")] == pytest.approx(expected), "no trim within 5 s"
    trimmed = node.install(state_of(www, arrived, down={"lon"}), now=2.0 + TRIM_EVERY)
    assert trimmed.spill[(www.id, "nyc")] == pytest.approx(expected + GAIN * (1.1 - TARGET))
    assert new_york_kept(www, trimmed) > 0.6


def test_a_hold_ends_when_its_trim_reaches_zero_or_the_lost_site_comes_back(
    zone: Zone,
) -> None:
    www = zone.pools_by_name["www"]
    node = Node(zone)
    steady = {"lon": 120.0, "nyc": 120.0, "sgp": 60.0}
    node.install(state_of(www, steady), now=0.0)
    assert node.install(state_of(www, steady, down={"lon"}), now=1.0).spill
    # London is back: shares are read off the load again, at once.
    back = node.install(state_of(www, steady), now=2.0)
    assert dict(back.spill) == {}
    # Held again, then New York's load falls far under the target: trimmed away.
    node.install(state_of(www, steady, down={"lon"}), now=3.0)
    light = {"lon": 0.0, "nyc": 40.0, "sgp": 60.0}
    now = 3.0
    while node.control.held and now < 600:
        now += TRIM_EVERY
        state = node.install(state_of(www, light, down={"lon"}), now=now)
    assert dict(state.spill) == {} and now < 60, "gone within a few trims"
    assert new_york_kept(www, state) == 1.0


def test_a_site_losing_a_path_keeps_its_clients_and_spills_only_its_excess(
    zone: Zone,
) -> None:
    """New York's isp-a path goes down: half its capacity, the same clients. Read off its
    load (120 of 100) it would spill everything; held, it spills what leaves it at 88 %."""
    www = zone.pools_by_name["www"]
    node = Node(zone)
    steady = {"lon": 120.0, "nyc": 120.0, "sgp": 60.0}
    node.install(state_of(www, steady), now=0.0)
    cut = state_of(www, steady)
    cut = ClusterState(
        health=cut.health, load=cut.load, isp_paths_down=frozenset({("isp-a", "nyc")})
    )
    held = node.install(cut, now=1.0)
    expected = 1 - TARGET * 100 / 120
    assert dict(held.spill) == {(www.id, "nyc"): pytest.approx(expected)}
    assert new_york_kept(www, held) == pytest.approx(1 - expected, abs=0.03)


def test_a_rewritten_or_removed_pool_starts_again_from_its_load(zone: Zone) -> None:
    www = zone.pools_by_name["www"]
    node = Node(zone)
    steady = {"lon": 120.0, "nyc": 120.0, "sgp": 60.0}
    node.install(state_of(www, steady), now=0.0)
    node.install(state_of(www, steady, down={"lon"}), now=1.0)
    assert node.control.held
    node.control.zone(zone, None, None)
    assert not node.control.pools and not node.control.held
