"""Reading the shared state back from Redis's raw values (gslb.state.store)."""

from __future__ import annotations

import json

from gslb.state.store import LOAD_FRESH, _state


def test_state_is_read_back_with_stale_and_broken_entries_left_out() -> None:
    now = 1_000_000.0
    health = {
        b"z/p/192.0.2.1": json.dumps(
            {"health": "down", "rtt": 0.01, "paths_down": ["isp-b"]}
        ).encode(),
        b"z/p/192.0.2.2": json.dumps({"health": "sideways"}).encode(),
        b"z/p/192.0.2.3": b"not json",
    }
    load = {
        b"192.0.2.1": json.dumps(
            {"sessions": 12, "cpu": 0.5, "traffic": 1e6, "at": now - 1}
        ).encode(),
        b"192.0.2.2": json.dumps({"sessions": 99, "at": now - LOAD_FRESH - 1}).encode(),
    }
    answers = [{b"z/p/192.0.2.1": b"3"}, {b"z/p/192.0.2.1": b"4", b"z/p/192.0.2.2": b"1"}]
    state = _state(health, load, {b"isp-a|lon", b"isp-c|*"}, answers, now)

    first = state.member("z/p/192.0.2.1")
    assert (first.health, first.rtt, first.paths_down) == ("down", 0.01, frozenset({"isp-b"}))
    assert state.member("z/p/192.0.2.2").health == "unknown", "an unknown word is no verdict"
    assert state.member("z/p/192.0.2.3").health == "unknown"
    assert state.load["192.0.2.1"].sessions == 12
    assert "192.0.2.2" not in state.load, "a stale agent report is no report"
    assert state.answers == {"z/p/192.0.2.1": 7.0, "z/p/192.0.2.2": 1.0}
    assert state.path_down("isp-a", "lon") and not state.path_down("isp-a", "nyc")
    assert state.path_down("isp-c", "anywhere")
