"""What the DNS node moves on as time passes: load reports projected along their trend
(gslb.core.state.anticipated), and slow starts (gslb.shell.ramp)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gslb.core.state import ClusterState, Load, MemberState, anticipated
from gslb.schema import Health
from gslb.shell.ramp import LoadTrend, SlowStart
from tests.helpers import snapshot_of, write_zones


def test_a_rising_load_is_read_as_it_will_be_and_a_steady_one_as_it_is() -> None:
    before, now = Load(sessions=100, at=10.0), Load(sessions=150, at=15.0)
    assert anticipated(before, now, 10.0).sessions == 250  # 10 a second, 10 s ahead
    assert anticipated(Load(sessions=150, at=10.0), now, 10.0).sessions == 150
    falling = anticipated(Load(sessions=500, at=10.0), Load(sessions=100, at=15.0), 10.0)
    assert falling.sessions == 0, "never below nothing"
    assert anticipated(None, now, 10.0) is now
    assert anticipated(now, now, 10.0) is now, "the same report twice has no trend"


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


SLOW = """\
zone: z.example
soa: {mname: ns1, rname: h.z.example.}
records: |
  @ NS ns1
  ns1 A 192.0.2.53
pools:
  www:
    slow_start: 20
    members:
      - {address: 192.0.2.1}
      - {address: 192.0.2.2}
"""


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
