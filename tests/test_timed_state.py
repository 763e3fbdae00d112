"""What the DNS node moves on as time passes: load reports projected along their trend
(gslb.core.state.anticipated), slow starts and planned drains (gslb.shell.ramp)."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import pytest

from gslb.core.decide import decide
from gslb.core.state import ClusterState, Load, MemberState, anticipated, beyond_noise
from gslb.schema import Health
from gslb.shell.ramp import STEP_TTL, Drains, LoadTrend, SlowStart
from tests.helpers import snapshot_of, write_zones
from tests.policy.strategies import member, pool


def test_a_rising_load_is_read_as_it_will_be_and_a_steady_one_as_it_is() -> None:
    before, now = Load(sessions=100, at=10.0), Load(sessions=150, at=15.0)
    assert anticipated(before, now, 10.0).sessions == 250  # 10 a second, 10 s ahead
    assert anticipated(Load(sessions=150, at=10.0), now, 10.0).sessions == 150
    falling = anticipated(Load(sessions=500, at=10.0), Load(sessions=100, at=15.0), 10.0)
    assert falling.sessions == 0, "never below nothing"
    assert anticipated(None, now, 10.0) is now
    assert anticipated(now, now, 10.0) is now, "the same report twice has no trend"
    projected = anticipated(before, now, 10.0)
    assert (projected.reported, projected.change) == (150, 50), "the report kept beside it"


def test_a_summed_load_is_projected_only_beyond_its_noise() -> None:
    """A count of n sessions wanders by about sqrt(n) between reports with nothing changing:
    a site's summed load is projected only by the part of its change beyond twice that."""
    # 10 000 sessions that gained 150 (noise: 200): read as they are, not 300 higher.
    assert beyond_noise(10_000, 10_300, 150) == 10_000
    assert beyond_noise(10_000, 9_700, -150) == 10_000
    # A real rise of 1 000 keeps 800 of it (the rest is the noise), projected alike.
    assert beyond_noise(10_000, 12_000, 1_000) == pytest.approx(11_600)
    assert beyond_noise(10_000, 8_000, -1_000) == pytest.approx(8_400)
    assert beyond_noise(500, 500, 0) == 500, "nothing projected: nothing to take out"


def test_the_trend_is_kept_per_agent_between_distinct_reports() -> None:
    trend = LoadTrend(lead=10.0)
    first = trend.project({"192.0.2.1": Load(sessions=100, at=10.0)})
    assert first["192.0.2.1"].sessions == 100
    again = trend.project({"192.0.2.1": Load(sessions=100, at=10.0)})
    assert again["192.0.2.1"].sessions == 100, "no new report: no trend yet"
    rising = trend.project({"192.0.2.1": Load(sessions=150, at=15.0)})
    assert rising["192.0.2.1"].sessions == 250
    same = trend.project({"192.0.2.1": Load(sessions=150, at=15.0)})
    assert same["192.0.2.1"].sessions == 250, "read again before the next report: same trend"
    assert trend.project({}) == {} and trend.reports == {}, "silent agents are forgotten"


HEAD = """\
zone: z.example
soa: {mname: ns1, rname: h.z.example.}
records: |
  @ NS ns1
  ns1 A 192.0.2.53
pools:
  www:
"""
SLOW = (
    HEAD
    + """\
    slow_start: 20
    members:
      - {address: 192.0.2.1}
      - {address: 192.0.2.2}
"""
)
PLANNED = (
    HEAD
    + """\
    ttl: 300
    members:
      - {address: 192.0.2.1}
      - {address: 192.0.2.2, drain_at: "2026-12-02T15:00:00+01:00"}
"""
)
AT = datetime.datetime(2026, 12, 2, 14, 0, tzinfo=datetime.UTC).timestamp()


def test_slow_start_begins_on_recovery_or_re_enabling_and_ends_after_its_time(
    tmp_path: Path,
) -> None:
    zones = snapshot_of(write_zones(tmp_path / "z", {"z.yaml": SLOW})).zones
    p = next(iter(zones.zones.values())).pools_by_name["www"]
    a, b = p.members
    ramps = SlowStart()
    # A first start (unknown, then up) does not ramp; down, then up, does.
    ramps.heard({a.key: Health("up")}, {}, zones, now=0.0)
    assert not ramps.since
    ramps.heard({a.key: Health("up")}, {a.key: MemberState("down")}, zones, now=100.0)
    state = ramps.apply(ClusterState(), now=100.0)
    assert dict(state.ramp) == {a.key: 0.05}
    assert not ramps.due(now=100.5) and ramps.due(now=101.0), "the next 5 % step, a second on"
    assert dict(ramps.apply(state, now=110.0).ramp) == {a.key: 0.5}
    assert dict(ramps.apply(state, now=120.0).ramp) == {}, "full share after slow_start"
    # Enabled again after a drain: it ramps too.
    drained = dataclasses.replace(p, members=(a, dataclasses.replace(b, admin="drained")))
    ramps.pools({"www": drained}, {"www": p}, ["www"])
    assert set(ramps.apply(ClusterState()).ramp) == {b.key}


def test_a_planned_member_is_drained_from_its_time_and_the_ttl_drops_one_ttl_ahead(
    tmp_path: Path,
) -> None:
    snapshot = snapshot_of(write_zones(tmp_path / "z", {"z.yaml": PLANNED}))
    zone = next(iter(snapshot.zones.zones.values()))
    www = zone.pools_by_name["www"]
    assert www.members[1].drain_at == AT, "the zone's offset is kept: 15:00+01:00 is 14:00Z"
    drains = Drains()
    drains.zone(None, zone, None)
    state = ClusterState()
    early = drains.apply(state, now=AT - 301)
    assert early.drained == frozenset() and dict(early.ttl) == {}
    assert drains.due(now=AT - 300), "the next step is the start of the short TTL"
    ahead = drains.apply(state, now=AT - 299)
    assert dict(ahead.ttl) == {www.id: STEP_TTL} and not ahead.drained
    after = drains.apply(state, now=AT + 1)
    assert after.drained == {www.members[1].key} and dict(after.ttl) == {}, "TTL back"
    assert not drains.due(now=AT + 10**6), "nothing more planned"
    # Removing the plan (the member enabled again) forgets it.
    drains.zone(zone, None, None)
    assert drains.apply(after, now=AT + 1).drained == frozenset()


def test_health_leaves_out_a_member_whose_planned_drain_has_come() -> None:
    a, b = member(1), member(2)
    p = pool([a, b], ["health", "limit"])
    assert decide(p, ClusterState(drained=frozenset({b.key})), {}).members == (a,)
    everyone_gone = ClusterState(drained=frozenset({a.key, b.key}))
    assert decide(p, everyone_gone, {}).members == (), "fail open keeps drains too"
