"""Recompiling a zone reuses the pools whose documents did not change, and the result is what
a compile from scratch gives (issue 7: a 10 000-pool snapshot rebuilt in well under a second)."""

from __future__ import annotations

import copy
from typing import Any

from gslb.core.state import EMPTY
from gslb.shell.sync import ZoneCompiler
from gslb.state.store import Stored, StoredZone


def document(pools: int = 40) -> dict[str, Any]:
    return {
        "zone": "big.example",
        "soa": {"mname": "ns1", "rname": "hostmaster.big.example."},
        "records": "@ NS ns1\nns1 A 192.0.2.53\n",
        "isps": {"isp-a": ["10.0.0.0/9"], "isp-b": ["10.128.0.0/9"]},
        "sites": {"lon": {"lat": 51.5, "lon": -0.1}, "nyc": {"lat": 40.7, "lon": -74.0}},
        "pools": {
            f"p{i}": {
                "members": [
                    {"address": f"10.0.{i}.1", "site": "lon"},
                    {"address": f"10.128.{i}.1", "site": "nyc"},
                ]
            }
            for i in range(pools)
        },
    }


def build(compiler: ZoneCompiler, doc: dict[str, Any], serial: int) -> Any:
    stored = StoredZone("big.example", doc, serial, "", "test")
    zones, problems = compiler.build(Stored(serial, {"big.example": stored}, EMPTY))
    assert not problems
    return next(iter(zones.zones.values()))


def test_an_unchanged_pool_is_reused_and_a_changed_one_recompiled() -> None:
    compiler = ZoneCompiler()
    first = build(compiler, document(), 1)
    changed = copy.deepcopy(document())
    changed["pools"]["p3"]["members"][0]["state"] = "drained"
    second = build(compiler, changed, 2)
    assert second.pools_by_name["p7"] is first.pools_by_name["p7"]  # reused as it was
    assert second.pools_by_name["p3"] is not first.pools_by_name["p3"]
    assert second.pools_by_name["p3"].members[0].admin == "drained"
    fresh = build(ZoneCompiler(), changed, 2)
    assert dict(second.pools_by_name) == dict(fresh.pools_by_name)  # as if from scratch


def test_a_change_pools_depend_on_recompiles_them_all() -> None:
    compiler = ZoneCompiler()
    first = build(compiler, document(), 1)
    changed = copy.deepcopy(document())
    changed["sites"]["lon"]["lat"] = 48.9  # every member at lon moves
    changed["isps"]["isp-a"] = ["10.0.0.0/8"]
    del changed["isps"]["isp-b"]
    second = build(compiler, changed, 2)
    pool = second.pools_by_name["p7"]
    assert pool is not first.pools_by_name["p7"]
    assert pool.members[0].site.lat == 48.9
    assert [m.isp for m in pool.members] == ["isp-a", "isp-a"]
    assert dict(second.pools_by_name) == dict(build(ZoneCompiler(), changed, 2).pools_by_name)


def test_a_removed_pool_is_gone_and_an_added_one_served() -> None:
    compiler = ZoneCompiler()
    build(compiler, document(), 1)
    changed = copy.deepcopy(document())
    del changed["pools"]["p1"]
    changed["pools"]["new"] = {"members": [{"address": "10.0.200.1"}]}
    zone = build(compiler, changed, 2)
    assert "p1" not in zone.pools_by_name
    assert zone.pools_by_name["new"].members[0].address == "10.0.200.1"
