"""The multi-host test bed (issue 8): network namespaces and veth pairs, as root.

    gsite (the members)          gnet (two ISPs' routers, and Redis)        gcI (checker I)
    a 10.1.0.10, 10.1.0.20 ───── sa 10.1.0.1    (ISP A)                    a 10.11.I.2 ──┐
    b 10.2.0.10, 10.2.0.20 ───── sb 10.2.0.1    (ISP B)   cIa 10.11.I.1 ───────────────┘
                                                           cIb 10.12.I.1 ─── b 10.12.I.2
                                 r  10.99.0.1 ──────────── root namespace: two DNS nodes, the API

Members: 10.1.0.10 / 10.2.0.10 at site lon, 10.1.0.20 / 10.2.0.20 at site nyc, one address
per ISP, HTTP health checks on port 80. Each checker has two uplinks, one per ISP, and its
probes leave by the one its source address names (policy routing), so the paths fail
independently. Faults are made for real: processes killed, links set down, routes
blackholed, Redis stopped; each scenario asserts the bound it promises.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest

from tests import helpers
from tests.api_client import Http
from tests.server import ServerProcess
from tests.test_checkers import stop_process
from tests.test_redis_state import until

ROOT = Path(__file__).resolve().parent.parent
TAG = f"g{os.getpid() % 100000}"
NET, SITE = f"{TAG}net", f"{TAG}site"
CHECKERS = 3
INTERVAL, FALL, RISE = 1, 2, 2
TOKEN = "netns-bed-token-0123456789abcdef"
MEMBERS = {"10.1.0.10": "lon", "10.2.0.10": "lon", "10.1.0.20": "nyc", "10.2.0.20": "nyc"}
ZONE = {
    "zone": "gslb.example.com",
    "soa": {"mname": "ns1", "rname": "hostmaster.example.com."},
    "records": "@ NS ns1\nns1 A 192.0.2.53\n",
    "isps": {"isp-a": ["10.1.0.0/24"], "isp-b": ["10.2.0.0/24"]},
    "sites": {"lon": {"lat": 51.5, "lon": -0.1}, "nyc": {"lat": 40.7, "lon": -74.0}},
    "monitors": {
        "web": {
            "type": "http",
            "port": 80,
            "path": "/healthz",
            "interval": INTERVAL,
            "timeout": 0.5,
            "rise": RISE,
            "fall": FALL,
        }
    },
    "pools": {
        "www": {
            "policy": ["health", "isp_interleave", "limit"],
            "monitor": "web",
            "fallback": "none",
            "members": [{"address": a, "site": s} for a, s in MEMBERS.items()],
        }
    },
}


def sh(*args: str, ns: str | None = None) -> None:
    command = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    subprocess.run(command, check=True, capture_output=True, timeout=10)


def spawn(ns: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, *args],
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


class Bed:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.namespaces = [NET, SITE, *(f"{TAG}c{i}" for i in range(1, CHECKERS + 1))]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.nodes: list[ServerProcess] = []
        self.api: ServerProcess | None = None
        try:
            self._build()
        except BaseException:
            self.stop()
            raise

    def _build(self) -> None:
        base = self.base
        for ns in self.namespaces:
            sh("ip", "netns", "add", ns)
            sh(
                "sysctl",
                "-qw",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
                ns=ns,
            )
            sh("ip", "link", "set", "dev", "lo", "up", ns=ns)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=NET)
        self.link(NET, "sa", "10.1.0.1/24", SITE, "a", "10.1.0.10/24")
        self.link(NET, "sb", "10.2.0.1/24", SITE, "b", "10.2.0.10/24")
        sh("ip", "addr", "add", "10.1.0.20/24", "dev", "a", ns=SITE)
        sh("ip", "addr", "add", "10.2.0.20/24", "dev", "b", ns=SITE)
        sh("ip", "route", "add", "10.11.0.0/16", "via", "10.1.0.1", ns=SITE)
        sh("ip", "route", "add", "10.12.0.0/16", "via", "10.2.0.1", ns=SITE)
        for i in range(1, CHECKERS + 1):
            ns = f"{TAG}c{i}"
            self.link(NET, f"c{i}a", f"10.11.{i}.1/24", ns, "a", f"10.11.{i}.2/24")
            self.link(NET, f"c{i}b", f"10.12.{i}.1/24", ns, "b", f"10.12.{i}.2/24")
            for table, (isp, octet) in enumerate((("a", 11), ("b", 12)), start=1):
                sh(
                    "ip",
                    "route",
                    "add",
                    "10.0.0.0/8",
                    "via",
                    f"10.{octet}.{i}.1",
                    "dev",
                    isp,
                    "table",
                    str(table),
                    ns=ns,
                )
                sh("ip", "rule", "add", "from", f"10.{octet}.{i}.2", "table", str(table), ns=ns)
        # The root namespace reaches Redis (and only Redis) over its own link.
        subprocess.run(["ip", "link", "del", f"{TAG}r"], capture_output=True)
        sh("ip", "link", "add", f"{TAG}r", "type", "veth", "peer", "name", "r", "netns", NET)
        sh("ip", "addr", "add", "10.99.0.2/24", "dev", f"{TAG}r")
        sh("ip", "link", "set", "dev", f"{TAG}r", "up")
        sh("ip", "addr", "add", "10.99.0.1/24", "dev", "r", ns=NET)
        sh("ip", "link", "set", "dev", "r", "up", ns=NET)
        self.start_redis()
        self.redis_url = "redis://10.99.0.1:6379/0"
        for address in MEMBERS:
            self.start_backend(address)
        for i in range(1, CHECKERS + 1):
            self.start_checker(i)
        tokens = base / "tokens.json"
        tokens.write_text(json.dumps([{"name": "bed", "role": "write", "token": TOKEN}]))
        self.api = ServerProcess(
            None,
            base / "api",
            "--redis",
            self.redis_url,
            "--api-tokens",
            str(tokens),
            dns=(),
            role="api",
        )
        self.http = Http(*self.api.http[0], TOKEN)
        assert self.http("PUT", "/api/v1/zones/gslb.example.com", ZONE).status == 201
        self.nodes = [self.start_node(n) for n in (1, 2)]

    @staticmethod
    def link(ns1: str, name1: str, addr1: str, ns2: str, name2: str, addr2: str) -> None:
        sh(
            "ip",
            "link",
            "add",
            name1,
            "netns",
            ns1,
            "type",
            "veth",
            "peer",
            "name",
            name2,
            "netns",
            ns2,
        )
        sh("ip", "addr", "add", addr1, "dev", name1, ns=ns1)
        sh("ip", "addr", "add", addr2, "dev", name2, ns=ns2)
        sh("ip", "link", "set", "dev", name1, "up", ns=ns1)
        sh("ip", "link", "set", "dev", name2, "up", ns=ns2)

    def start_redis(self) -> None:
        self.procs["redis"] = spawn(
            NET,
            "redis-server",
            "--bind",
            "0.0.0.0",
            "--port",
            "6379",
            "--protected-mode",
            "no",
            "--appendonly",
            "yes",
            "--save",
            "",
            "--dir",
            str(self.base),
            log=self.base / "redis.log",
        )
        import redis as redis_client

        until(lambda: _ping(redis_client, "10.99.0.1"))

    def start_backend(self, address: str, idle: float = 5.0) -> None:
        """A member; `idle`: seconds it keeps an idle connection open (a web server's header
        timeout, 5 s; a service that holds its clients' connections, an hour)."""
        backend = [sys.executable, "-m", "tests.backend", address, "80", "200", str(idle)]
        proc = subprocess.Popen(
            ["ip", "netns", "exec", SITE, *backend],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        self.procs[address] = proc

    def start_checker(self, i: int) -> None:
        self.procs[f"c{i}"] = spawn(
            f"{TAG}c{i}",
            sys.executable,
            "-m",
            "gslb",
            "checker",
            "--redis",
            f"redis://10.11.{i}.1:6379/0",
            "--id",
            f"c{i}",
            "--region",
            f"r{i}",
            "--path",
            f"isp-a=10.11.{i}.2",
            "--path",
            f"isp-b=10.12.{i}.2",
            "--log-format",
            "json",
            log=self.base / f"c{i}.log",
        )

    def start_node(self, n: int) -> ServerProcess:
        return ServerProcess(
            None,
            None,
            "--redis",
            self.redis_url,
            "--data-dir",
            str(self.base / f"dns{n}"),
            "--node-id",
            f"dns{n}",
            role="dns",
        )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self.api is not None:
            self.api.stop()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{TAG}r"], capture_output=True)


def _ping(client: object, host: str) -> bool:
    try:
        return bool(client.Redis(host=host, port=6379, socket_timeout=0.5).ping())  # type: ignore[attr-defined]
    except Exception:
        return False


def answers(node: ServerProcess) -> list[str]:
    reply = dns.query.udp(
        dns.message.make_query("www.gslb.example.com", "A"), node.host, port=node.port, timeout=2
    )
    return [rr.to_text() for rrset in reply.answer for rr in rrset]


def everywhere(bed: Bed, check: object) -> bool:
    return all(check(answers(node)) for node in bed.nodes)  # type: ignore[operator]


ALL = set(MEMBERS)


def record(name: str, seconds: float) -> None:
    helpers.record("netns", name, seconds)


BOUND = INTERVAL * FALL + 1  # the promise for a member that dies


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    if os.geteuid() != 0:
        pytest.fail("the namespace test bed needs root (CI runs as root)")
    b = Bed(tmp_path_factory.mktemp("netns"))
    try:
        until(lambda: everywhere(b, lambda a: set(a) == ALL))
        yield b
    finally:
        b.stop()


def test_a_dead_backend_leaves_every_nodes_answers_within_interval_times_fall(bed: Bed) -> None:
    stopped = time.monotonic()
    stop_process(bed.procs.pop("10.1.0.20"))
    until(lambda: everywhere(bed, lambda a: "10.1.0.20" not in a), BOUND + 2)
    took = time.monotonic() - stopped
    record("backend dies: gone from both nodes", took)
    assert took <= BOUND, took
    bed.start_backend("10.1.0.20")
    until(lambda: everywhere(bed, lambda a: set(a) == ALL), INTERVAL * RISE + 5)


def watched(address: str) -> int:
    """The checkers' watched connections to a member: those with a keep-alive timer (the
    watch sets one; probes' connections have none)."""
    count = 0
    for i in range(1, CHECKERS + 1):
        out = subprocess.run(
            ["ip", "netns", "exec", f"{TAG}c{i}", "ss", "-Htno", "state", "established"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        count += sum(
            1 for line in out.splitlines() if f"{address}:80" in line and "keepalive" in line
        )
    return count


def test_a_killed_process_is_heard_through_the_watched_connections(bed: Bed) -> None:
    """SIGKILL: the member's kernel resets every connection at once, and each checker hears
    it on the idle connection it keeps per path, before any probe is due."""
    member = "10.1.0.20"
    stop_process(bed.procs.pop(member))
    bed.start_backend(member, idle=3600)
    until(lambda: everywhere(bed, lambda a: set(a) == ALL), INTERVAL * RISE + 5)
    key = f"gslb.example.com/www/{member}"

    def steady() -> bool:
        """Every checker votes up over both its uplinks, and watches both."""
        votes = bed.http("GET", "/api/v1/health").json["members"][key]["checkers"]
        ups = [v for v in votes.values() if v["vote"] == "up" and v["fresh"]]
        return len(ups) == CHECKERS * 2 and watched(member) == CHECKERS * 2

    until(steady)
    proc = bed.procs.pop(member)
    killed = time.monotonic()
    proc.kill()
    try:
        until(lambda: everywhere(bed, lambda a: member not in a), BOUND + 2)
    except AssertionError:  # say what the checkers and the nodes saw
        seen = bed.http("GET", "/api/v1/health").json["members"][key]
        nodes = [answers(node) for node in bed.nodes]
        raise AssertionError(json.dumps({"health": seen, "answers": nodes}, indent=1)) from None
    took = time.monotonic() - killed
    proc.wait(10)
    record("process killed: gone from both nodes", took)
    # The probe timer alone needs two failed probes an interval apart: at least 1 s.
    assert took < INTERVAL, took
    bed.start_backend(member)
    until(lambda: everywhere(bed, lambda a: set(a) == ALL), INTERVAL * RISE + 5)


def test_a_silent_death_leaves_within_the_probe_timers_bound(bed: Bed) -> None:
    """The member's packets vanish (a machine or link gone, no reset): only the probe timer
    can tell, within interval x fall plus a probe's timeout."""
    member = "10.2.0.20"
    rule = ("from", member, "blackhole")
    sh("ip", "rule", "add", *rule, ns=SITE)
    dropped = time.monotonic()
    try:
        until(lambda: everywhere(bed, lambda a: member not in a), BOUND + 2)
        took = time.monotonic() - dropped
        record("silent death: gone from both nodes", took)
        assert took <= INTERVAL * FALL + 0.5 + 0.3 + 0.2, took  # + the nodes' follow
    finally:
        sh("ip", "rule", "del", *rule, ns=SITE)
    until(lambda: everywhere(bed, lambda a: set(a) == ALL), INTERVAL * RISE + 5)


def checker_problems(name: str) -> tuple[str, ...]:
    import redis as redis_client

    from gslb.schema import Checker

    raw = redis_client.Redis(host="10.99.0.1", port=6379, socket_timeout=2).hget(
        "gslb:checkers", name
    )
    return Checker.from_json(raw).path_problems if raw else ()


def test_a_misrouted_uplink_is_detected_and_reported(bed: Bed) -> None:
    """Two --paths whose sources the policy rules send into one table are one uplink: a
    checker refuses them with --strict-paths, and one already running says so when a rule
    change makes it so."""
    ns = f"{TAG}c1"
    sh("ip", "addr", "add", "10.11.1.3/24", "dev", "a", ns=ns)
    sh("ip", "rule", "add", "from", "10.11.1.3", "table", "1", ns=ns)
    try:
        refused = subprocess.run(
            [
                *("ip", "netns", "exec", ns, sys.executable, "-m", "gslb", "checker"),
                *("--redis", "redis://10.11.1.1:6379/0", "--id", "c1-strict", "--strict-paths"),
                *("--path", "isp-a=10.11.1.2", "--path", "isp-b=10.11.1.3"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        sh("ip", "rule", "del", "from", "10.11.1.3", "table", "1", ns=ns)
        sh("ip", "addr", "del", "10.11.1.3/24", "dev", "a", ns=ns)
    assert refused.returncode == 3, refused.stderr
    assert "paths isp-a and isp-b leave by the same route to 10." in refused.stderr
    assert "(dev a via 10.11.1.1 table 1)" in refused.stderr

    assert checker_problems("c1") == ()
    moved = time.monotonic()
    sh("ip", "rule", "del", "from", "10.12.1.2", "table", "2", ns=ns)
    sh("ip", "rule", "add", "from", "10.12.1.2", "table", "1", ns=ns)
    try:
        until(lambda: any("leave by the same route" in p for p in checker_problems("c1")))
        record("misrouted uplink: reported by the running checker", time.monotonic() - moved)
        seen = bed.http("GET", "/api/v1/health").json["checkers"]["c1"]["path_problems"]
        assert any("paths isp-a and isp-b" in p for p in seen), seen
    finally:
        sh("ip", "rule", "del", "from", "10.12.1.2", "table", "1", ns=ns)
        sh("ip", "rule", "add", "from", "10.12.1.2", "table", "2", ns=ns)
    until(lambda: checker_problems("c1") == ())


def test_a_cut_isp_link_makes_answers_lead_with_the_other_isp(bed: Bed) -> None:
    cut = time.monotonic()
    sh("ip", "link", "set", "dev", "sa", "down", ns=NET)  # ISP A no longer reaches the sites
    try:
        until(
            lambda: everywhere(bed, lambda a: not any(x.startswith("10.1.") for x in a)), BOUND + 2
        )
        record("ISP A link cut: answers lead with ISP B", time.monotonic() - cut)
        assert time.monotonic() - cut <= BOUND + 1
        for _ in range(10):  # every rotation: ISP B leads, and is all there is
            for node in bed.nodes:
                got = answers(node)
                assert got and got[0].startswith("10.2.") and set(got) == {"10.2.0.10", "10.2.0.20"}
    finally:
        sh("ip", "link", "set", "dev", "sa", "up", ns=NET)
    until(lambda: everywhere(bed, lambda a: set(a) == ALL), INTERVAL * RISE + 6)


def test_an_isp_path_cut_at_one_site_is_written_isp_wide_and_cleared(bed: Bed) -> None:
    import redis

    client = redis.Redis.from_url(bed.redis_url, socket_timeout=2)

    def cut() -> set[str]:
        return {m.decode() for m in client.smembers("gslb:paths_down")}

    def clean() -> bool:
        states = [json.loads(v) for v in client.hgetall("gslb:health").values()]
        return len(states) == 4 and all(h["health"] == "up" and not h["paths_down"] for h in states)

    # From a clean start: an earlier scenario's paths may still be rising back.
    until(lambda: clean() and not cut(), 30)
    # Over ISP A, nothing reaches London's ISP A member any more; over ISP B it still does.
    rule = ("from", "10.11.0.0/16", "to", "10.1.0.10", "blackhole")
    sh("ip", "rule", "add", *rule, ns=NET)
    try:
        started = time.monotonic()
        until(lambda: "isp-a|lon" in cut(), BOUND + 4)
        record("ISP A path cut at London: written ISP-wide", time.monotonic() - started)
        assert "isp-a|nyc" not in cut(), "New York's ISP A path still works"
        until(lambda: everywhere(bed, lambda a: a and a[-1] == "10.1.0.10"), 10)
        for _ in range(6):  # every rotation: the cut address last, still there
            for node in bed.nodes:
                got = answers(node)
                assert got[-1] == "10.1.0.10" and set(got) == ALL, got
    finally:
        sh("ip", "rule", "del", *rule, ns=NET)
    until(lambda: "isp-a|lon" not in cut(), INTERVAL * RISE + 6)
    client.close()


def test_a_checker_cut_off_from_the_members_raises_no_false_alarm(bed: Bed) -> None:
    ns = f"{TAG}c1"
    routes = [("10.1.0.0/24", t) for t in ("1", "2", "main")] + [
        ("10.2.0.0/24", t) for t in ("1", "2", "main")
    ]
    for prefix, table in routes:
        sh("ip", "route", "add", "blackhole", prefix, "table", table, ns=ns)
    try:
        deadline = time.monotonic() + 3 * BOUND
        while time.monotonic() < deadline:  # c1 sees every member down; the quorum does not
            assert everywhere(bed, lambda a: set(a) == ALL)
            time.sleep(0.1)
        seen = bed.http("GET", "/api/v1/health").json["members"]["gslb.example.com/www/10.1.0.10"]
        assert seen["health"] == "up"
        assert seen["checkers"]["c1|isp-a"]["vote"] == "down"
        assert seen["checkers"]["c2|isp-a"]["vote"] == "up"
    finally:
        for prefix, table in routes:
            sh("ip", "route", "del", "blackhole", prefix, "table", table, ns=ns)


def test_a_killed_checker_is_replaced_and_its_votes_expire(bed: Bed) -> None:
    bed.procs.pop("c3").kill()
    killed = time.monotonic()
    key = "gslb.example.com/www/10.2.0.20"

    def c3_gone() -> bool:
        seen = bed.http("GET", "/api/v1/health").json
        fresh = [c for c, v in seen["members"][key]["checkers"].items() if v["fresh"]]
        return not seen["checkers"].get("c3", {}).get("alive") and not any(
            c.startswith("c3|") for c in fresh
        )

    until(c3_gone)
    record("checker killed: its votes gone", time.monotonic() - killed)
    # The other two probe everything (replication 3 over two live checkers) and still decide.
    stop_process(bed.procs.pop("10.2.0.20"))
    try:
        until(lambda: everywhere(bed, lambda a: "10.2.0.20" not in a), BOUND + 2)
    except AssertionError:  # say what the checkers saw
        seen = bed.http("GET", "/api/v1/health").json["members"][key]
        raise AssertionError(json.dumps(seen, indent=1)) from None
    bed.start_backend("10.2.0.20")
    bed.start_checker(3)
    until(lambda: everywhere(bed, lambda a: set(a) == ALL), INTERVAL * RISE + 8)


def test_thirty_seconds_without_redis(bed: Bed) -> None:
    until(lambda: everywhere(bed, lambda a: set(a) == ALL))
    time.sleep(3)  # settled, and kept on disk (written at most every 2 s)
    before = [set(answers(node)) for node in bed.nodes]
    assert before == [ALL, ALL]
    bed.procs.pop("redis").kill()
    try:
        started = time.monotonic()
        restarted = False
        while time.monotonic() - started < 30:
            for i, node in enumerate(bed.nodes):  # both answer from their last state, all along
                assert set(answers(node)) == before[i]
            if not restarted and time.monotonic() - started > 5:
                # A node that restarts meanwhile answers from the snapshot it kept on disk.
                bed.nodes[1].stop()
                bed.nodes[1] = bed.start_node(2)
                restarted = True
            time.sleep(0.2)
        write = bed.http("POST", "/api/v1/zones/gslb.example.com/pools/www/members/10.1.0.10/drain")
        assert write.status == 503
    finally:
        bed.start_redis()
    # Everything resyncs, nothing of the configuration lost: the zone is there, writes work.
    back = time.monotonic()
    until(lambda: bed.http("GET", "/api/v1/zones/gslb.example.com").status == 200)
    record("redis back: API serves again", time.monotonic() - back)
    path = "/api/v1/zones/gslb.example.com/pools/www/members/10.1.0.10"
    assert bed.http("POST", path + "/drain").status == 200
    until(lambda: everywhere(bed, lambda a: "10.1.0.10" not in a and len(a) == 3))
    assert bed.http("POST", path + "/enable").status == 200
    until(lambda: everywhere(bed, lambda a: set(a) == ALL))
