"""Uplinks that are what they say (issue 18 §3): the rules over the kernel's answers, then the
kernel itself on loopback, where every source leaves by `lo` and no rule names any."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

from gslb.schema import Checker
from healthchecks.uplinks import REFERENCE, Lookup, Route, destinations, problems
from tests.helpers import write_zones
from tests.server import ServerProcess
from tests.test_checkers import stop_process
from tests.test_redis_state import until

A = Route("a", "10.11.1.1", "1")
B = Route("b", "10.12.1.1", "2")
PATHS = {"isp-a": "10.11.1.2", "isp-b": "10.12.1.2"}


def looked(routes: dict[str, Route | None], destination: str = "10.1.0.10") -> list[Lookup]:
    return [
        Lookup(name, PATHS[name], destination, route, None if route else "Network is unreachable")
        for name, route in routes.items()
    ]


def test_two_paths_by_their_own_routes_and_rules_have_no_problem() -> None:
    assert problems(PATHS, looked({"isp-a": A, "isp-b": B}), {"isp-a": True, "isp-b": True}) == []


def test_two_paths_by_one_route_are_one_uplink_whatever_the_tables() -> None:
    same = Route("a", "10.11.1.1", "2")  # another table, the same device and next hop
    found = problems(PATHS, looked({"isp-a": A, "isp-b": same}), {"isp-a": True, "isp-b": True})
    assert found == [
        "paths isp-a and isp-b leave by the same route to 10.1.0.10 (dev a via 10.11.1.1 "
        "table 1): probes over them test one uplink, not two"
    ]


def test_a_source_no_rule_names_is_reported_once_there_are_two_paths() -> None:
    found = problems(PATHS, looked({"isp-a": A, "isp-b": B}), {"isp-a": True, "isp-b": False})
    assert found == [
        "path isp-b: no `ip rule from 10.12.1.2`: the main routing table, not the source "
        "address, picks its uplink"
    ]
    one = {"isp-a": PATHS["isp-a"]}
    assert problems(one, looked({"isp-a": A}), {"isp-a": False}) == [], "nothing to differ from"


def test_no_route_to_a_member_is_a_problem_but_not_to_a_reference_address() -> None:
    ruled = {"isp-a": True, "isp-b": True}
    assert problems(PATHS, looked({"isp-a": A, "isp-b": None}), ruled) == [
        "path isp-b: no route to 10.1.0.10 from 10.12.1.2 (Network is unreachable)"
    ]
    assert problems(PATHS, looked({"isp-a": A, "isp-b": None}, REFERENCE[0]), ruled) == []


def test_destinations_sample_each_family_and_fall_back_to_references() -> None:
    v4 = [f"10.1.{i // 250}.{i % 250}" for i in range(1000)]
    sample = destinations([*v4, "2001:db8::10", "not an address"], per_family=8)
    assert len([d for d in sample if "." in d]) == 8
    assert "2001:db8::10" in sample
    assert sample == destinations(reversed([*v4, "2001:db8::10"]), per_family=8), "stable"
    assert destinations([]) == list(REFERENCE)


ZONE = """\
zone: gslb.example.com
soa: {mname: ns1, rname: hostmaster.example.com.}
records: "@ NS ns1"
monitors:
  tcp: {type: tcp, port: 18451, interval: 1, timeout: 0.5}
pools:
  www:
    monitor: tcp
    members: [{address: 127.10.12.1}]
"""


def checker(url: str, *extra: str) -> list[str]:
    paths = ("--path", "isp-a=127.0.0.1", "--path", "isp-b=127.0.0.2")
    return [sys.executable, "-m", "gslb", "checker", "--redis", url, "--id", "loop", *paths, *extra]


def test_loopback_paths_are_reported_and_refused_when_strict(tmp_path: Path) -> None:
    server = ServerProcess(
        write_zones(tmp_path / "zones", {"z.yaml": ZONE}), tmp_path / "data", "--no-checker"
    )
    try:
        url = f"unix://{(tmp_path / 'data' / 'redis.sock').resolve()}"
        refused = subprocess.run(checker(url, "--strict-paths"), capture_output=True, text=True)
        assert refused.returncode == 3, refused.stderr
        assert (
            "paths isp-a and isp-b leave by the same route to 127.10.12.1 (dev lo" in refused.stderr
        )
        assert "refusing to probe" in refused.stderr

        # Without --strict-paths it probes on, and says what is wrong where operators look.
        proc = subprocess.Popen(checker(url), stderr=subprocess.DEVNULL)
        try:
            client = redis.Redis.from_url(url)

            def problems_said() -> tuple[str, ...]:
                raw = client.hget("gslb:checkers", "loop")
                return Checker.from_json(raw).path_problems if raw else ()

            until(lambda: len(problems_said()) == 3)
            assert any("no `ip rule from 127.0.0.2`" in p for p in problems_said())
        finally:
            stop_process(proc)
    finally:
        server.stop()
