"""make bench-checker: how fast one checker probes, and how fast a failure leaves the answers.

1. Probe rate: one `gslb checker` process pinned to one core, with N TCP targets on loopback
   (one accept-and-close server pinned to the other core), interval 1 s; the checker's own
   probe counter over a measured window gives the sustained probes per second.
2. Failover: three checkers (interval 1, fall 2, rise 1, majority quorum) and a DNS node,
   PowerDNS `ifportup` and gdnsd `tcp_connect` beside it, four members each its own process
   in a network namespace; 50 times a member's process is killed (SIGKILL), 20 times its
   packets are dropped (a silent death), and we measure until each server stops handing it
   out (polled every 5 ms), then it is brought back.

3. Agent drain: three DNS nodes sharing Redis; 20 times, a member's agent announces it is
   leaving (healthchecks.agent.announce, what `gslb agent drain` runs) and we measure until
   none of the three hands it out any more, then it says it is back.

Writes the figures into docs/performance.md between the bench-checker markers. Only loopback
addresses and a network namespace's are used (root: `ip netns`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dns.message
import dns.query
import redis
from benchlib import free_port, start_redis, stop

from gslb.common.redis import connect
from healthchecks.agent import announce

ROOT = Path(__file__).resolve().parent.parent
PERF = ROOT / "docs" / "performance.md"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
TARGETS = int(os.environ.get("BENCH_TARGETS", "6000"))  # offered: more than the aim
RATE_SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
TRIALS = int(os.environ.get("BENCH_TRIALS", "50"))  # process deaths
SILENT_TRIALS = int(os.environ.get("BENCH_SILENT_TRIALS", "20"))


def monitor(kind: str, port: int, interval: float, fall: int, rise: int) -> dict[str, object]:
    return {
        "type": kind,
        "port": port,
        "interval": interval,
        "timeout": 0.5,
        "rise": rise,
        "fall": fall,
        "method": "GET",
        "path": "/",
        "host": None,
        "expect_status": [200],
        "expect_body": None,
        "tls_verify": True,
        "query_name": None,
        "query_type": "A",
        "expect_rcode": "NOERROR",
        "watch": False,  # the probe rate is plain probes' (the sink resets every connection)
    }


def gslb(*args: str, cpu: int | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "gslb", *args]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    stderr = log.open("w") if log else subprocess.DEVNULL
    return subprocess.Popen(command, cwd=ROOT, stderr=stderr)


def probe_rate(work: Path) -> dict[str, float]:
    redis_proc, url = start_redis(work)
    port = free_port()
    sink = subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, "-c", SINK, str(port)], stdout=subprocess.PIPE
    )
    assert sink.stdout is not None and sink.stdout.readline().strip() == b"ready"
    client = redis.Redis.from_url(url)
    # The state as a gslb node of this release lays it out (layout 2): one zone, its monitor,
    # and its targets in pools of 100 members.
    addresses = [f"127.30.{i // 250}.{i % 250 + 1}" for i in range(TARGETS)]
    targets = [{"key": f"bench/p{i // 100 * 100}/{a}"} for i, a in enumerate(addresses)]
    pools = {
        f"p{n}": json.dumps(
            {"monitor": "tcp", "members": [[a, None, None] for a in addresses[n : n + 100]]}
        )
        for n in range(0, TARGETS, 100)
    }
    client.set("gslb:layout", 2)
    client.sadd("gslb:zone-list", "bench")
    client.hset("gslb:zone:bench:monitors", "tcp", json.dumps(monitor("tcp", port, 1.0, 2, 2)))
    client.hset("gslb:zone:bench:targets", mapping=pools)
    log = work / "rate-checker.log"
    checker = gslb(
        "checker", "--redis", url, "--id", "rate", "--log-format", "json", cpu=0, log=log
    )
    counts: list[tuple[float, int]] = []
    reader = threading.Thread(target=_read_counts, args=(sink, counts), daemon=True)
    reader.start()
    try:
        time.sleep(6)  # warm up: first heartbeat, every task started and spread
        first = len(counts)
        time.sleep(RATE_SECONDS)
        window = counts[first - 1 :]
        failures = _failure_fraction(client, targets)
    finally:
        stop(checker)
        stop(sink)
        redis_proc.kill()
    (t0, n0), (t1, n1) = window[0], window[-1]
    return {
        "targets": TARGETS,
        "probes_per_second": (n1 - n0) / (t1 - t0),
        "failed": failures,
    }


def _read_counts(proc: subprocess.Popen[bytes], counts: list[tuple[float, int]]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        moment, _, count = line.decode().partition(" ")
        counts.append((float(moment), int(count)))


def _failure_fraction(client: redis.Redis, targets: list[dict[str, object]]) -> float:
    """Share of the latest probe results that failed (timeouts when the checker cannot keep
    up), over a sample of the targets."""
    results = [
        json.loads(raw)
        for target in targets[::25]
        for raw in client.hgetall(f"gslb:results:{target['key']}").values()
    ]
    return sum(not r["ok"] for r in results) / max(1, len(results))


SINK = r"""
import asyncio, sys, time
accepted = 0
async def main():
    port = int(sys.argv[1])
    def accept(reader, writer):
        global accepted
        accepted += 1
        writer.transport.abort()
    server = await asyncio.start_server(accept, "0.0.0.0", port, backlog=4096, reuse_address=True)
    print("ready", flush=True)
    while True:  # the running count, once a second: probes as the members see them
        await asyncio.sleep(1)
        print(f"{time.monotonic()} {accepted}", flush=True)
try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


def ask(port: int) -> set[str]:
    try:
        reply = dns.query.udp(
            dns.message.make_query("www.bench.example.", "A"), "127.0.0.1", port=port, timeout=1
        )
    except Exception:
        return set()
    return {rr.to_text() for rrset in reply.answer for rr in rrset}


def dns_node(zones: Path, url: str, port: int, cpu: int) -> subprocess.Popen[bytes]:
    return gslb(
        "serve",
        "--zones",
        str(zones),
        "--redis",
        url,
        "--no-checker",
        "--dns",
        f"127.0.0.1:{port}",
        "--http",
        "127.0.0.1:0",
        cpu=cpu,
    )


FAILOVER_ZONE = """\
zone: bench.example.
soa: {{mname: ns, rname: h}}
records: '@ NS ns'
monitors:
  tcp: {{type: tcp, port: {port}, interval: 1, timeout: 0.5, rise: 1, fall: 2}}
pools:
  www:
    policy: [health, limit]
    monitor: tcp
    fallback: none
    members:
"""
NS = "gbench"  # the members' network namespace
MEMBER_NET = "10.77.0"  # .1 the root namespace's side, .11-.14 the members
GDNSD_TRIALS = 5  # gdnsd takes tens of seconds each way (down_thresh, up_thresh)


class Members:
    """One member process per address (tests.backend, which holds idle connections open as
    a service does), in a network namespace of their own behind a veth pair, so that a fault
    can be real: a process killed with SIGKILL (its kernel closes every connection it held),
    or every packet from an address dropped (`ip rule from ADDRESS blackhole`: a machine or
    link gone, nothing said)."""

    def __init__(self, addresses: list[str], port: int) -> None:
        self.port = port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{NS}0"], capture_output=True)
        for command in (
            ["ip", "netns", "add", NS],
            ["ip", "link", "add", f"{NS}0", "type", "veth", "peer", "name", "eth0", "netns", NS],
            ["ip", "addr", "add", f"{MEMBER_NET}.1/24", "dev", f"{NS}0"],
            ["ip", "link", "set", f"{NS}0", "up"],
            ["ip", "-n", NS, "link", "set", "lo", "up"],
            ["ip", "-n", NS, "link", "set", "eth0", "up"],
            *(["ip", "-n", NS, "addr", "add", f"{a}/24", "dev", "eth0"] for a in addresses),
        ):
            subprocess.run(command, check=True, capture_output=True)
        for address in addresses:
            self.start(address)

    def start(self, address: str) -> None:
        member = [sys.executable, "-m", "tests.backend", address, str(self.port), "200", "3600"]
        proc = subprocess.Popen(
            ["ip", "netns", "exec", NS, *member],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        self.procs[address] = proc

    def kill(self, address: str) -> None:
        proc = self.procs.pop(address)
        proc.kill()
        proc.wait(10)

    def silence(self, address: str, silent: bool) -> None:
        action = "add" if silent else "del"
        subprocess.run(
            ["ip", "-n", NS, "rule", action, "from", address, "blackhole"],
            check=True,
            capture_output=True,
        )

    def close(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait(10)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{NS}0"], capture_output=True)


def pdns_peer(work: Path, port: int, addresses: list[str], member_port: int) -> list[str]:
    """PowerDNS with `ifportup` over the same members: each node checks alone (no quorum),
    every second (lua-health-checks-interval=1), a connect timeout of 2 s (its default)."""
    work.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f"'{a}'" for a in addresses)
    (work / "bench.zone").write_text(
        "$TTL 300\n@ SOA ns h 1 3600 600 1209600 30\n@ NS ns\nns A 192.0.2.53\n"
        f"www 5 IN LUA A \"ifportup({member_port}, {{{listed}}}, {{selector='all'}})\"\n"
    )
    (work / "named.conf").write_text(f'zone "bench.example" {{ file "{work}/bench.zone"; }};\n')
    (work / "pdns.conf").write_text(
        f"launch=bind\nbind-config={work}/named.conf\n"
        f"local-address=127.0.0.1\nlocal-port={port}\nsocket-dir={work}\n"
        "guardian=no\ndaemon=no\ndisable-syslog=yes\nloglevel=3\n"
        "enable-lua-records=yes\nlua-health-checks-interval=1\n"
    )
    return ["pdns_server", f"--config-dir={work}"]


def gdnsd_peer(work: Path, port: int, addresses: list[str], member_port: int) -> list[str]:
    """gdnsd with `multifo` over `tcp_connect` at its shortest interval (2 s) and its default
    thresholds (down after down_thresh 10 failures, up after up_thresh 20 successes)."""
    (work / "zones").mkdir(parents=True, exist_ok=True)
    listed = " ".join(f"m{i} => {a}," for i, a in enumerate(addresses)).rstrip(",")
    (work / "config").write_text(
        f"options => {{ listen => [ 127.0.0.1:{port} ], udp_threads => 1, tcp_threads => 1 }}\n"
        f"service_types => {{ tcp => {{ plugin => tcp_connect, port => {member_port},"
        " interval => 2, timeout => 1 } }\n"
        "plugins => { multifo => { www => { service_types => [ tcp ],"
        f" addrs_v4 => {{ {listed} }} }} }} }}\n"
    )
    (work / "zones" / "bench.example").write_text(
        "$TTL 300\n@ SOA ns h 1 3600 600 1209600 30\n@ NS ns\nns A 192.0.2.53\n"
        "www 5 DYNA multifo!www\n"
    )
    return ["gdnsd", "-c", str(work), "-D", "start"]


def gone_after(port: int, victim: str, began: float, limit: float) -> float | None:
    """Seconds from `began` until the server on `port` stops handing `victim` out."""
    while time.monotonic() - began < limit:
        if victim not in ask(port):
            return time.monotonic() - began
        time.sleep(0.005)
    return None


def gone_everywhere(
    ports: dict[str, int], victim: str, began: float, limits: dict[str, float]
) -> dict[str, float | None]:
    """gone_after for every server at once, each polled by a thread of its own."""
    with concurrent.futures.ThreadPoolExecutor(len(ports)) as pool:
        futures = {
            name: pool.submit(gone_after, port, victim, began, limits[name])
            for name, port in ports.items()
        }
        return {name: future.result() for name, future in futures.items()}


def summary(delays: list[float]) -> dict[str, float]:
    delays = sorted(delays)
    if not delays:
        return {"trials": 0}
    return {
        "trials": len(delays),
        "median": statistics.median(delays),
        "p99": delays[min(len(delays) - 1, int(0.99 * len(delays)))],
        "max": delays[-1],
        "min": delays[0],
    }


def failover(work: Path, fault: str, trials: int) -> dict[str, dict[str, float]]:
    """`fault` (kill | silent) `trials` times, measured at gslb (3 checkers in quorum, one DNS
    node), PowerDNS ifportup and gdnsd (its first GDNSD_TRIALS only), all watching the same
    members at once."""
    redis_proc, url = start_redis(work)
    port = free_port()
    addresses = [f"{MEMBER_NET}.{i}" for i in range(11, 15)]
    zone = work / "zones"
    zone.mkdir()
    members_yaml = "".join(f"      - {{address: {a}}}\n" for a in addresses)
    (zone / "bench.yaml").write_text(FAILOVER_ZONE.format(port=port) + members_yaml)
    ports = {"gslb": free_port(), "pdns": free_port(), "gdnsd": free_port()}
    members = Members(addresses, port)
    procs = [
        dns_node(zone, url, ports["gslb"], cpu=0),
        *(
            gslb("checker", "--redis", url, "--id", f"c{i}", "--region", f"r{i}", cpu=i % 2)
            for i in range(3)
        ),
    ]
    peers = {
        "pdns": subprocess.Popen(
            pdns_peer(work / "pdns", ports["pdns"], addresses, port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        "gdnsd": subprocess.Popen(
            gdnsd_peer(work / "gdnsd", ports["gdnsd"], addresses, port),
            stderr=subprocess.STDOUT,
            stdout=(work / "gdnsd.log").open("wb"),
        ),
    }
    delays: dict[str, list[float]] = {name: [] for name in ports}
    limits = {"gslb": 10.0, "pdns": 10.0, "gdnsd": 120.0}
    try:
        deadline = time.monotonic() + 90
        while any(ask(p) != set(addresses) for p in ports.values()):
            if time.monotonic() > deadline:
                seen = {name: sorted(ask(p)) for name, p in ports.items()}
                raise RuntimeError(f"not every server answers with every member: {seen}")
            time.sleep(0.2)
        for trial in range(trials):
            watched = [n for n in ports if n != "gdnsd" or trial < GDNSD_TRIALS]
            if trial == GDNSD_TRIALS:
                stop(peers.pop("gdnsd"))
            victim = addresses[trial % len(addresses)]
            time.sleep(0.3 + (trial * 0.137) % 1.0)  # spread failures over the probe phase
            began = time.monotonic()
            if fault == "kill":
                members.kill(victim)
            else:
                members.silence(victim, True)
            found = gone_everywhere({n: ports[n] for n in watched}, victim, began, limits)
            for name, delay in found.items():
                if delay is not None:
                    delays[name].append(delay)
            if fault == "kill":
                members.start(victim)
            else:
                members.silence(victim, False)
            back = time.monotonic() + (120 if "gdnsd" in watched else 15)
            while any(victim not in ask(ports[n]) for n in watched) and time.monotonic() < back:
                time.sleep(0.05)
    finally:
        for proc in [*procs, *peers.values()]:
            stop(proc)
        members.close()
        redis_proc.kill()
    return {name: summary(found) for name, found in delays.items()}


DRAIN_ZONE = """\
zone: bench.example.
soa: {mname: ns, rname: h}
records: '@ NS ns'
pools:
  www:
    policy: [health, limit]
    members:
"""
DRAIN_TRIALS = 20


def agent_drain(work: Path) -> dict[str, float]:
    """From the announcement to the moment no node of three hands the member out."""
    redis_proc, url = start_redis(work)
    addresses = [f"127.31.1.{i}" for i in range(1, 5)]
    zone = work / "zones"
    zone.mkdir()
    members_yaml = "".join(f"      - {{address: {a}}}\n" for a in addresses)
    (zone / "bench.yaml").write_text(DRAIN_ZONE + members_yaml)
    ports = [free_port() for _ in range(3)]
    nodes = [dns_node(zone, url, port, cpu=i % 2) for i, port in enumerate(ports)]

    async def say(member: str, leaving: bool) -> float:
        client = connect(url)
        try:
            await client.ping()
            began = time.monotonic()
            await announce(client, member, leaving)
            return began
        finally:
            await client.aclose()

    delays = []
    try:
        deadline = time.monotonic() + 60
        while any(ask(port) != set(addresses) for port in ports):
            if time.monotonic() > deadline:
                raise RuntimeError("the nodes never answered with every member")
            time.sleep(0.1)
        for trial in range(DRAIN_TRIALS):
            member = addresses[trial % len(addresses)]
            time.sleep(0.2 + (trial * 0.137) % 0.5)
            began = asyncio.run(say(member, True))
            waiting = set(ports)
            while waiting:
                waiting = {port for port in waiting if member in ask(port)}
            delays.append(time.monotonic() - began)
            asyncio.run(say(member, False))
            back = time.monotonic() + 10
            while any(member not in ask(port) for port in ports) and time.monotonic() < back:
                time.sleep(0.01)
    finally:
        for proc in nodes:
            stop(proc)
        redis_proc.kill()
    return summary(delays)


Faults = dict[str, dict[str, dict[str, float]]]  # fault -> server -> summary

FAULT_AIMS = {"kill": ("<= 0.15 s", "<= 0.3 s"), "silent": ("<= 2.8 s", "<= 2.8 s")}
SERVERS = {
    "gslb": "gslb, 3 checkers in quorum",
    "pdns": "PowerDNS ifportup, interval 1",
    "gdnsd": "gdnsd tcp_connect, interval 2 (its minimum)",
}


def fault_rows(faults: Faults) -> str:
    rows = []
    for fault, title in (("kill", "process death"), ("silent", "silent death")):
        for server, label in SERVERS.items():
            found = faults[fault][server]
            if not found.get("trials"):
                continue
            median_aim, p99_aim = FAULT_AIMS[fault] if server == "gslb" else ("", "")
            figures = (
                f"{found['median']:.3f} s / {found['p99']:.3f} s "
                f"({found['min']:.3f} to {found['max']:.3f})"
            )
            aim = f"{median_aim} / {p99_aim}" if median_aim else ""
            rows.append(f"| {title}: {label} ({found['trials']:.0f}) | {figures} | {aim} |")
    return "\n".join(rows)


def write(rate: dict[str, float], faults: Faults, drain: dict[str, float]) -> None:
    text = PERF.read_text() if PERF.exists() else "# Performance\n"
    targets = f"{rate['targets']:.0f}"
    rate_now = f"{rate['probes_per_second']:.0f}"
    failed = f"{rate['failed']:.1%}"
    drain_trials = f"{drain['trials']:.0f}"
    drain_median, drain_max = f"{drain['median'] * 1000:.1f} ms", f"{drain['max'] * 1000:.1f} ms"
    rows = fault_rows(faults)
    section = f"""<!-- bench-checker:start -->
## Health checking (`make bench-checker`, {time.strftime("%Y-%m-%d")})

Machine: 2 cores; the checker pinned to core 0, the target server to core 1.

| measure | figure | aim |
|---|---|---|
| TCP probes per second, one checker, {targets} targets every 1 s | {rate_now} | >= 5 000 |
| probes of those that failed (timeouts: the checker falling behind) | {failed} | 0 |
| agent drain to no answer from any of 3 DNS nodes: median / max of {drain_trials} | {drain_median} / {drain_max} | <= 100 ms |

Failover, from the fault to the first moment a server no longer hands the member out (each
polled every 5 ms, all of them watching the same four members at once; median / p99, min to
max, and the number of faults):

| fault: server (faults) | median / p99 (min to max) | aim (median / p99) |
|---|---|---|
{rows}

Probe rate: counted where the target server sees the connections, over 20 s after a warm-up.
6 000 targets a second are offered, more than the aim, so the figure is the checker's
capacity: its core is then at 100 % (uvloop; what remains is mostly connection set-up, about
half of what bare uvloop connects do here). Beyond capacity its schedule stretches (each task
waits `interval` from the start of its last probe), so it probes a little less often but
never reports a false failure; a fixed schedule was tried and turned the same overload into
timeouts, that is false "down" votes. More members than one core can probe need more
checkers (`--replicas` spreads the work). Figures vary by about 15 % between runs on this
shared machine.

The faults: the members are processes (which hold idle connections open, as services do) in
a network namespace of their own behind a veth pair. A *process death* is a SIGKILL: its
kernel closes every connection the process held. Each gslb checker keeps a watched
connection per member (docs/health.md, "Connection watch"), hears the close, and votes the
member down after `fall` (2) confirming probes 25 ms apart; the quorum's second vote decides.
A *silent death* drops every packet from the member's address (`ip rule from ADDRESS
blackhole` in its namespace): nothing is said, so only the probe timer can tell, within
interval x fall + timeout (1 x 2 + 0.5) + 0.3 s. gslb's monitor: tcp, interval 1, timeout 0.5,
rise 1, fall 2. PowerDNS `ifportup` checks each address every second
(`lua-health-checks-interval=1`), alone (no quorum), with its default 2 s connect timeout.
gdnsd runs `tcp_connect` at its shortest interval, 2 s, with its default thresholds (down after
`down_thresh` 10 failures, up after `up_thresh` 20 successes), so only its first
{GDNSD_TRIALS} faults of each kind are measured (each takes tens of seconds each way).

Agent drain: the announcement is one Redis transaction (`gslb:leaving` and an entry in the
health log); each DNS node is blocked reading that log, so the delay is a round trip to
Redis and a snapshot swap, measured from just before the transaction until all three nodes
(polled in turn) have stopped handing the member out.
<!-- bench-checker:end -->"""
    if "<!-- bench-checker:start -->" in text:
        text = re.sub(
            r"<!-- bench-checker:start -->.*<!-- bench-checker:end -->", section, text, flags=re.S
        )
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    PERF.write_text(text)


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("make bench-checker needs root: the members live in a network namespace")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "rate").mkdir()
        rate = probe_rate(work / "rate")
        print(f"probe rate: {rate}", flush=True)
        faults: Faults = {}
        for fault, trials in (("kill", TRIALS), ("silent", SILENT_TRIALS)):
            (work / fault).mkdir()
            faults[fault] = failover(work / fault, fault, trials)
            print(f"{fault}: {faults[fault]}", flush=True)
        (work / "drain").mkdir()
        drain = agent_drain(work / "drain")
        print(f"agent drain: {drain}", flush=True)
    write(rate, faults, drain)
    print(f"written to {PERF}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
