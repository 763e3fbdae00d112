"""Distributed health checking for real: member servers on loopback addresses, checker
processes, Debian's redis-server, and a DNS node (issue 4, "Done when")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.query
import pytest
import redis

from tests.helpers import query, write_zones
from tests.server import ServerProcess
from tests.test_redis_connections import REDIS
from tests.test_redis_state import answers, free_port, redis_ready, until

INTERVAL, FALL, RISE = 1.0, 2, 2
# Most of an interval: a loopback backend answers in a millisecond, but on a busy 2-core
# machine a Python one can take longer than half a second, and two slow answers in a row
# are a false "down".
TIMEOUT = 0.9
DEAD_AFTER = 2.5  # heartbeats (1 s) before a checker's share moves
MEMBERS = ["127.10.1.10", "127.10.2.10", "127.10.1.20", "127.10.2.20"]
BROKEN_SOURCE = "192.0.2.1"  # not on any interface: binding to it fails, nothing is sent
PORT = 18080

ZONE = f"""\
zone: gslb.example.com
soa: {{mname: ns1, rname: hostmaster.example.com.}}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
isps:
  isp-a: [127.10.1.0/24]
  isp-b: [127.10.2.0/24]
monitors:
  web: {{type: http, port: {PORT}, path: /healthz, interval: {INTERVAL}, timeout: {TIMEOUT}, rise: {RISE}, fall: {FALL}}}
pools:
  www:
    policy: [health, isp_interleave, limit]
    monitor: web
    fallback: none
    members:
""" + "".join(f"      - {{address: {a}}}\n" for a in MEMBERS)


def stop_process(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after a grace period: a test never leaves a process behind."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise AssertionError(f"{proc.args} ignored SIGTERM") from None


class Backend:
    def __init__(self, address: str) -> None:
        self.address = address
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.backend", self.address, str(PORT)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


class Checker:
    def __init__(self, url: str, name: str, region: str, *paths: str, replicas: int = 3) -> None:
        args = [
            sys.executable,
            "-m",
            "gslb",
            "checker",
            "--redis",
            url,
            "--id",
            name,
            "--region",
            region,
            "--replicas",
            str(replicas),
            "--log-format",
            "json",
        ]
        for path in paths:
            args += ["--path", path]
        self.log = Path(f"/tmp/gslb-test-checker-{name}-{os.getpid()}.log")
        self.proc = subprocess.Popen(args, stderr=self.log.open("w"))

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[dict[str, object]]:
    port = free_port()
    redis_proc = subprocess.Popen(
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    backends = {a: Backend(a) for a in MEMBERS}
    checkers: list[Checker] = []
    dns_node = None
    try:
        until(lambda: redis_ready(port))
        for backend in backends.values():
            backend.start()
        dns_node = ServerProcess(
            write_zones(tmp_path / "zones", {"z.yaml": ZONE}),
            tmp_path / "data",
            "--redis",
            url,
            "--no-checker",
            "--api-read-open",
        )
        yield {
            "url": url,
            "port": port,
            "backends": backends,
            "dns": dns_node,
            "checkers": checkers,
        }
    finally:
        problems = []
        for stop in [*(c.stop for c in checkers), *(b.stop for b in backends.values())]:
            try:
                stop()
            except AssertionError as e:
                problems.append(str(e))
        if dns_node is not None:
            dns_node.stop()
        redis_proc.kill()
        redis_proc.wait(10)
        assert not problems, problems


def all_up(port: int, voters: int) -> bool:
    decided = health(port)
    return len(decided) == len(MEMBERS) and all(
        h["health"] == "up" and len(h["votes"]) == voters  # type: ignore[arg-type]
        for h in decided.values()
    )


def health(port: int) -> dict[str, dict[str, object]]:
    raw = redis.Redis(port=port).hgetall("gslb:health")
    return {k.decode().rsplit("/", 1)[1]: json.loads(v) for k, v in raw.items()}


def test_member_stops_and_returns(bed: dict[str, object]) -> None:
    dns_node: ServerProcess = bed["dns"]  # type: ignore[assignment]
    checkers: list[Checker] = bed["checkers"]  # type: ignore[assignment]
    backends: dict[str, Backend] = bed["backends"]  # type: ignore[assignment]
    checkers += [Checker(str(bed["url"]), f"c{i}", f"r{i}") for i in range(3)]
    until(lambda: all_up(int(bed["port"]), voters=3))  # the checkers have spoken
    until(lambda: answers(dns_node) == set(MEMBERS))

    backends["127.10.1.10"].stop()
    stopped = time.monotonic()
    until(lambda: "127.10.1.10" not in answers(dns_node), INTERVAL * FALL + 1)
    gone_after = time.monotonic() - stopped
    for _ in range(20):
        assert "127.10.1.10" not in answers(dns_node), "no answer contains it any more"

    backends["127.10.1.10"].start()
    started = time.monotonic()
    until(lambda: "127.10.1.10" in answers(dns_node), INTERVAL * RISE + 1)
    back_after = time.monotonic() - started
    assert gone_after <= INTERVAL * FALL + 1
    assert back_after >= (RISE - 1) * INTERVAL * 0.8, "slow re-admission: rise successes first"


def test_quorum_outvotes_a_checker_that_cannot_reach_anything(bed: dict[str, object]) -> None:
    dns_node: ServerProcess = bed["dns"]  # type: ignore[assignment]
    checkers: list[Checker] = bed["checkers"]  # type: ignore[assignment]
    url = str(bed["url"])
    checkers += [
        Checker(url, "good1", "r1"),
        Checker(url, "good2", "r2"),
        Checker(url, "cut-off", "r3", f"default={BROKEN_SOURCE}"),
    ]
    until(lambda: answers(dns_node) == set(MEMBERS))

    def votes() -> dict[str, str]:
        return health(int(bed["port"])).get("127.10.1.10", {}).get("votes", {})  # type: ignore[return-value]

    until(lambda: votes().get("cut-off|default") == "down")
    for _ in range(3 * int(INTERVAL * 10)):
        assert answers(dns_node) == set(MEMBERS), "no false down: the quorum says up"
        time.sleep(0.1)
    assert all(h["health"] == "up" for h in health(int(bed["port"])).values())


def test_killed_checker_share_moves_and_its_votes_expire(bed: dict[str, object]) -> None:
    dns_node: ServerProcess = bed["dns"]  # type: ignore[assignment]
    checkers: list[Checker] = bed["checkers"]  # type: ignore[assignment]
    url = str(bed["url"])
    port = int(bed["port"])
    # Two checkers per member out of three: each checker has a share of its own.
    checkers += [Checker(url, f"k{i}", f"r{i}", replicas=2) for i in range(3)]

    def voters() -> dict[str, set[str]]:
        client = redis.Redis(port=port)
        now = time.time()
        out = {}
        for member in MEMBERS:
            raw = client.hgetall(f"gslb:results:gslb.example.com/www/{member}")
            out[member] = {
                k.decode().split("|")[0] for k, v in raw.items() if json.loads(v)["expires"] >= now
            }
        return out

    def settled() -> bool:
        current = voters()
        return all(len(v) == 2 for v in current.values()) and any(
            "k2" in v for v in current.values()
        )

    until(settled)  # all three alive, and the votes of shares handed over have expired
    assert any("k2" in v for v in voters().values()), "k2 has a share"
    checkers[2].kill()
    killed = time.monotonic()
    # Its share moves within two heartbeats (plus a probe), and its votes expire: with two
    # checkers left and two copies wanted, both now probe every member, and nothing of k2's
    # still counts.
    until(
        lambda: all(v == {"k0", "k1"} for v in voters().values()),
        DEAD_AFTER + 3 * INTERVAL + 1.5,
    )
    assert time.monotonic() - killed < DEAD_AFTER + 3 * INTERVAL + 1.5
    assert answers(dns_node) == set(MEMBERS)


def test_one_path_down_moves_that_isps_addresses_last(bed: dict[str, object]) -> None:
    dns_node: ServerProcess = bed["dns"]  # type: ignore[assignment]
    checkers: list[Checker] = bed["checkers"]  # type: ignore[assignment]
    url = str(bed["url"])
    checkers += [
        Checker(url, f"p{i}", f"r{i}", "isp-a=127.0.0.1", f"isp-b={BROKEN_SOURCE}")
        for i in range(3)
    ]
    until(
        lambda: (
            len(health(int(bed["port"]))) == 4
            and all(h["paths_down"] == ["isp-b"] for h in health(int(bed["port"])).values())
        ),
        10,
    )
    decided = health(int(bed["port"]))
    assert all(h["health"] == "up" for h in decided.values()), "down on that path only"
    until(lambda: answers(dns_node) == set(MEMBERS))  # the DNS node has caught up

    def visible() -> dict[str, Any]:
        url = f"http://127.0.0.1:{dns_node.http[0][1]}/api/v1/health"
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def seen() -> dict[str, Any]:
        return visible()["members"]["gslb.example.com/www/127.10.2.10"]  # type: ignore[no-any-return]

    until(lambda: len(seen()["checkers"]) == 6)  # three checkers, two paths each
    member = seen()
    assert member["health"] == "up" and member["paths_down"] == ["isp-b"]
    for name in ("p0", "p1", "p2"):
        broken, working = member["checkers"][f"{name}|isp-b"], member["checkers"][f"{name}|isp-a"]
        assert broken["vote"] == "down" and broken["fresh"]
        assert "Cannot assign requested address" in broken["error"]
        assert working["vote"] == "up" and working["rtt"] > 0
    assert {c for c, v in visible()["checkers"].items() if v["alive"]} == {"p0", "p1", "p2"}
    for _ in range(8):  # every rotation slot
        reply = dns.query.udp(
            query("www.gslb.example.com"), dns_node.host, port=dns_node.port, timeout=2
        )
        order = [rr.to_text() for rrset in reply.answer for rr in rrset]
        # isp-a's addresses first (they take turns leading), isp-b's, on the dead path, last.
        assert sorted(order[:2]) == ["127.10.1.10", "127.10.1.20"], order
        assert sorted(order[2:]) == ["127.10.2.10", "127.10.2.20"], order


def test_cold_start_waits_for_the_first_results(tmp_path: Path) -> None:
    """A query that arrives the moment a node starts is answered from the first results,
    not from a guess: the member without a server never appears."""
    zone = ZONE.replace("    fallback: none\n", "    fallback: none\n    cold_start_wait: 4\n")
    zone = zone.replace("".join(f"      - {{address: {a}}}\n" for a in MEMBERS[2:]), "")
    up = Backend("127.10.1.10")
    up.start()
    server = ServerProcess(write_zones(tmp_path / "zones", {"z.yaml": zone}), tmp_path / "data")
    try:
        sent = time.monotonic()
        first = answers(server)
        waited = time.monotonic() - sent
        assert first == {"127.10.1.10"}, "127.10.2.10 has no server: never handed out"
        assert waited < 4, "answered once the first results came, before the wait ran out"
    finally:
        server.stop()
        up.stop()
