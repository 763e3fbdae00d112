"""Planned drains in the core and the DNS node's clock (gslb.shell.ramp.Drains)."""

from __future__ import annotations

import datetime
from pathlib import Path

from gslb.core.decide import decide
from gslb.core.state import ClusterState
from gslb.shell.ramp import STEP_TTL, Drains
from tests.helpers import snapshot_of, write_zones
from tests.policy.strategies import member, pool

ZONE = """\
zone: z.example
soa: {mname: ns1, rname: h.z.example.}
records: |
  @ NS ns1
  ns1 A 192.0.2.53
pools:
  www:
    ttl: 300
    members:
      - {address: 192.0.2.1}
      - {address: 192.0.2.2, drain_at: "2026-12-02T15:00:00+01:00"}
"""
AT = datetime.datetime(2026, 12, 2, 14, 0, tzinfo=datetime.UTC).timestamp()


def test_a_planned_member_is_drained_from_its_time_and_the_ttl_drops_one_ttl_ahead(
    tmp_path: Path,
) -> None:
    snapshot = snapshot_of(write_zones(tmp_path / "z", {"z.yaml": ZONE}))
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
