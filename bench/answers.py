"""make bench: gslb's answer path against PowerDNS LUA records and gdnsd, side by side.

The same zone and the same load-balanced name are served by each server in turn, on loopback,
with four members that pass their health checks (`gslb demo-backends` listens on them):

- gslb: a pool with [health, proximity, isp_interleave, limit], a GeoIP2 City database, an
  HTTP monitor; one worker, then `--workers 2`;
- PowerDNS (bind backend) with a LUA record `ifportup(8080, {...})`, with
  `enable-lua-records=shared` and with `=yes` (a Lua state per query);
- gdnsd with `multifo` over a `tcp_connect` monitor.

The server is pinned to core 0 and dnsperf to core 1 (gslb with 2 workers gets both cores,
sharing core 1 with dnsperf). Each server answers two mixes, three runs each: one name from
one resolver, and the same name with 10 000 different EDNS Client Subnets (raw wire queries,
`dnsperf -B`). Reported: median queries per second and dnsperf's average latency at full
load; then average and p99 latency at half that load (every reply timed, `dnsperf -v`);
ratios to the peers from the same run.

Writes docs/performance.md between the bench-dns markers. Only loopback addresses are used.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.edns
import dns.message
import dns.query
from benchlib import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
PERF = ROOT / "docs" / "performance.md"
GSLB = [sys.executable, "-m", "gslb"]
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SUBNETS = 10_000
NAME = "www.gslb.example.com"
MEMBERS = [
    ("127.10.1.10", "lon"),
    ("127.10.2.10", "lon"),
    ("127.10.1.20", "nyc"),
    ("127.10.2.20", "nyc"),
]
SERVER_CORE, CLIENT_CORE = "0", "1"


# --- what each server serves -------------------------------------------------------------


def geoip_networks(rng: random.Random) -> list[tuple[str, float, float]]:
    """2 000 /16 networks over the IPv4 unicast space, each somewhere on Earth."""
    seen: set[tuple[int, int]] = set()
    out = []
    while len(out) < 2000:
        a, b = rng.randint(1, 223), rng.randint(0, 255)
        if a in (10, 127, 169, 172, 192) or (a, b) in seen:
            continue
        seen.add((a, b))
        out.append((f"{a}.{b}.0.0/16", rng.uniform(-60, 70), rng.uniform(-180, 180)))
    return out


def write_geoip(path: Path, networks: list[tuple[str, float, float]]) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(
        ip_version=6, database_type="GeoIP2-City", languages=["en"], ipv4_compatible=True
    )
    for network, lat, lon in networks:
        writer.insert_network(
            IPSet([network]),
            {"country": {"iso_code": "ZZ"}, "location": {"latitude": lat, "longitude": lon}},
        )
    writer.to_db_file(str(path))
    return path


def gslb_zone(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    members = "".join(f"      - {{address: {a}, site: {s}}}\n" for a, s in MEMBERS)
    (directory / "gslb.example.com.yaml").write_text(
        "zone: gslb.example.com\n"
        "soa: {mname: ns1, rname: hostmaster.example.com., serial: 1}\n"
        "records: |\n  @ NS ns1\n  ns1 A 192.0.2.53\n"
        "isps:\n  isp-a: [127.10.1.0/24]\n  isp-b: [127.10.2.0/24]\n"
        "sites:\n  lon: {lat: 51.51, lon: -0.13}\n  nyc: {lat: 40.71, lon: -74.01}\n"
        "monitors:\n  web: {type: http, port: 8080, path: /healthz, interval: 2, timeout: 1}\n"
        "pools:\n  www:\n    ttl: 20\n    monitor: web\n"
        "    policy: [health, proximity, isp_interleave, limit]\n"
        f"    members:\n{members}"
    )
    return directory


def pdns_config(directory: Path, port: int, shared: bool) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    addresses = ", ".join(f"'{a}'" for a, _ in MEMBERS)
    (directory / "gslb.example.com.zone").write_text(
        "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 1209600 30\n@ NS ns1\nns1 A 192.0.2.53\n"
        f'www 20 IN LUA A "ifportup(8080, {{{addresses}}})"\n'
    )
    (directory / "named.conf").write_text(
        f'zone "gslb.example.com" {{ type master; file "{directory}/gslb.example.com.zone"; }};\n'
    )
    (directory / "pdns.conf").write_text(
        "launch=bind\n"
        f"bind-config={directory}/named.conf\n"
        f"local-address=127.0.0.1\nlocal-port={port}\nsocket-dir={directory}\n"
        "guardian=no\ndaemon=no\ndisable-syslog=yes\nloglevel=3\n"
        f"enable-lua-records={'shared' if shared else 'yes'}\n"
        "edns-subnet-processing=yes\n"
    )
    return directory


def gdnsd_config(directory: Path, port: int) -> Path:
    (directory / "zones").mkdir(parents=True, exist_ok=True)
    addresses = " ".join(f"m{i} => {a}," for i, (a, _) in enumerate(MEMBERS)).rstrip(",")
    (directory / "config").write_text(
        f"options => {{ listen => [ 127.0.0.1:{port} ], udp_threads => 1, tcp_threads => 1 }}\n"
        "service_types => { tcp8080 => { plugin => tcp_connect, port => 8080, interval => 2,"
        " timeout => 1 } }\n"
        "plugins => { multifo => { www => { service_types => [ tcp8080 ],"
        f" addrs_v4 => {{ {addresses} }} }} }} }}\n"
    )
    (directory / "zones" / "gslb.example.com").write_text(
        "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 1209600 30\n@ NS ns1\nns1 A 192.0.2.53\n"
        "www 20 DYNA multifo!www\n"
    )
    return directory


def query_files(directory: Path, networks: list[tuple[str, float, float]]) -> dict[str, Path]:
    single = directory / "single.txt"
    single.write_text(f"{NAME} A\n")
    rng = random.Random(7)
    raw = bytearray()
    for i in range(SUBNETS):
        network = ipaddress.ip_network(rng.choice(networks)[0])
        subnet = str(network.network_address + rng.randrange(256) * 256)
        message = dns.message.make_query(NAME, "A", use_edns=0, payload=1232)
        message.use_edns(0, payload=1232, options=[dns.edns.ECSOption(subnet, 24)])
        message.id = i & 0xFFFF
        wire = message.to_wire()
        raw += struct.pack("!H", len(wire)) + wire
    ecs = directory / "ecs.raw"
    ecs.write_bytes(bytes(raw))
    return {"single": single, "ecs": ecs}


# --- the servers -------------------------------------------------------------------------


@dataclass
class Server:
    label: str
    argv: list[str]
    port: int
    cores: str = SERVER_CORE
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def running(self, log: Path) -> Iterator[None]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["taskset", "-c", self.cores, *self.argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env={**os.environ, **self.env},
            )
            try:
                self.wait_ready(proc, log)
                yield
            finally:
                stop(proc)

    def wait_ready(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        """Until the name is answered with members that passed their health checks."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(Exception):
                reply = dns.query.udp(
                    dns.message.make_query(NAME, "A"), "127.0.0.1", port=self.port, timeout=0.5
                )
                found = {rr.to_text() for rrset in reply.answer for rr in rrset}
                if found and found <= {a for a, _ in MEMBERS} and self.healthy(found):
                    time.sleep(1)
                    return
            time.sleep(0.5)
        raise RuntimeError(f"{self.label} did not become ready: {log.read_text()[-2000:]}")

    def healthy(self, found: set[str]) -> bool:
        # gslb and gdnsd hand out every healthy member; PowerDNS's ifportup picks one.
        return len(found) == len(MEMBERS) or self.label.startswith("PowerDNS")


@dataclass
class Run:
    qps: float
    latency: float  # seconds, dnsperf's average
    lost: float  # fraction


def dnsperf(port: int, queries: Path, seconds: float, extra: list[str]) -> str:
    argv = ["taskset", "-c", CLIENT_CORE, "dnsperf", "-s", "127.0.0.1", "-p", str(port)]
    argv += ["-d", str(queries), "-l", str(seconds), "-c", "4", "-q", "200", *extra]
    if queries.suffix == ".raw":
        argv.append("-B")
    return subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout


def full_load(port: int, queries: Path) -> Run:
    out = dnsperf(port, queries, SECONDS, [])
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = float(re.search(r"Average Latency \(s\):\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lost = float(re.search(r"Queries lost:\s+\d+ \(([\d.]+)%\)", out).group(1)) / 100  # type: ignore[union-attr]
    return Run(qps, latency, lost)


def timed_load(port: int, queries: Path, rate: float) -> tuple[float, float, int]:
    """(average, p99) latency in seconds of every reply at `rate` queries per second."""
    out = dnsperf(port, queries, 5, ["-Q", str(int(rate)), "-v"])
    # "> NOERROR name type 0.000123"; a query that timed out has no time (it is lost, and
    # counted as such by the full-load runs).
    times = sorted(
        float(fields[-1])
        for fields in (line.split() for line in out.splitlines() if line.startswith("> "))
        if fields[-1].replace(".", "", 1).isdigit()
    )
    if not times:
        return float("nan"), float("nan"), 0
    return statistics.fmean(times), times[int(0.99 * (len(times) - 1))], len(times)


# --- the run ---------------------------------------------------------------------------------


def main() -> int:
    for tool in ("dnsperf", "pdns_server", "gdnsd", "taskset", "redis-server"):
        if shutil.which(tool) is None:
            print(f"make bench needs {tool} (bench/deps.sh installs it)", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="gslb-bench-"))
    rng = random.Random(42)
    networks = geoip_networks(rng)
    city = write_geoip(work / "city.mmdb", networks)
    zones = gslb_zone(work / "zones")
    queries = query_files(work, networks)
    ports = {key: free_port() for key in ("gslb", "gslb2", "pdns", "pdns-lua", "gdnsd")}
    servers = [
        Server(
            "gslb",
            [
                *GSLB,
                "serve",
                "--zones",
                str(zones),
                "--dns",
                f"127.0.0.1:{ports['gslb']}",
                "--http",
                "127.0.0.1:0",
                "--data-dir",
                str(work / "data1"),
                "--geoip",
                str(city),
                "--workers",
                "1",
            ],
            ports["gslb"],
        ),
        Server(
            "gslb --workers 2",
            [
                *GSLB,
                "serve",
                "--zones",
                str(zones),
                "--dns",
                f"127.0.0.1:{ports['gslb2']}",
                "--http",
                "127.0.0.1:0",
                "--data-dir",
                str(work / "data2"),
                "--geoip",
                str(city),
                "--workers",
                "2",
            ],
            ports["gslb2"],
            cores=f"{SERVER_CORE},{CLIENT_CORE}",
        ),
        Server(
            "PowerDNS LUA shared",
            ["pdns_server", f"--config-dir={pdns_config(work / 'pdns', ports['pdns'], True)}"],
            ports["pdns"],
        ),
        Server(
            "PowerDNS LUA",
            [
                "pdns_server",
                f"--config-dir={pdns_config(work / 'pdns-lua', ports['pdns-lua'], False)}",
            ],
            ports["pdns-lua"],
        ),
        Server(
            "gdnsd multifo",
            ["gdnsd", "-c", str(gdnsd_config(work / "gdnsd", ports["gdnsd"])), "start"],
            ports["gdnsd"],
        ),
    ]
    backends = subprocess.Popen(
        [*GSLB, "demo-backends", "--zones", str(zones)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: dict[str, dict[str, object]] = {}
    try:
        time.sleep(1)
        for server in servers:
            print(f"{server.label}: starting", flush=True)
            with server.running(work / f"{server.port}.log"):
                dnsperf(server.port, queries["single"], 2, [])  # warm-up
                entry: dict[str, object] = {}
                for mix, path in queries.items():
                    runs = [full_load(server.port, path) for _ in range(RUNS)]
                    qps = statistics.median(r.qps for r in runs)
                    average, p99, timed = timed_load(server.port, path, qps / 2)
                    entry[mix] = {
                        "qps": qps,
                        "runs": [round(r.qps) for r in runs],
                        "latency": statistics.median(r.latency for r in runs),
                        "lost": max(r.lost for r in runs),
                        "half_average": average,
                        "half_p99": p99,
                        "half_count": timed,
                    }
                    print(
                        f"  {mix}: {qps:,.0f} qps {[round(r.qps) for r in runs]}, "
                        f"p99 at half load {p99 * 1000:.2f} ms",
                        flush=True,
                    )
                results[server.label] = entry
    finally:
        stop(backends)
    write_doc(results)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def write_doc(results: dict[str, dict[str, object]]) -> None:
    def q(label: str, mix: str) -> float:
        return float(results[label][mix]["qps"])  # type: ignore[index]

    rows = []
    for label, entry in results.items():
        for mix in ("single", "ecs"):
            r = entry[mix]
            rows.append(
                f"| {label} | {'one name' if mix == 'single' else '10 000 client subnets'} "
                f"| {r['qps']:,.0f} | {' / '.join(f'{x:,}' for x in r['runs'])} "  # type: ignore[index]
                f"| {r['latency'] * 1000:.2f} | {r['half_average'] * 1000:.3f} "  # type: ignore[index]
                f"| {r['half_p99'] * 1000:.3f} | {r['lost']:.2%} |"  # type: ignore[index]
            )
    ratios = []
    for mix, text in (("single", "one name"), ("ecs", "10 000 client subnets")):
        g = q("gslb", mix)
        ratios.append(
            f"| {text} | {g / q('PowerDNS LUA shared', mix):.2f}x | {g / q('PowerDNS LUA', mix):.2f}x "
            f"| {g / q('gdnsd multifo', mix):.2f}x | {q('gslb --workers 2', mix) / g:.2f}x |"
        )
    section = f"""<!-- bench-dns:start -->
## DNS answers (`make bench`, {time.strftime("%Y-%m-%d")})

Machine: 2 cores (a shared virtual machine: figures move by 10-20 % between runs). Each server
pinned to core 0, dnsperf 2.10 to core 1 (`-c 4 -q 200`); `gslb --workers 2` on both cores,
sharing core 1 with dnsperf. The same name, `{NAME}`, load-balanced over four members that
pass their health checks: gslb with [health, proximity, isp_interleave, limit] and a GeoIP2
City database of 2 000 networks; PowerDNS 4.7 (bind backend) with
`ifportup(8080, {{...}})`; gdnsd 3.8 with `multifo` over `tcp_connect`. {RUNS} runs of
{SECONDS:.0f} s each per mix; the median is shown with every run. Latency at half load: every
reply timed (`dnsperf -v -Q` at half the median rate, 5 s).

| server | queries | median qps | runs | avg latency at full load (ms) | avg at half load (ms) | p99 at half load (ms) | lost |
|---|---|---:|---|---:|---:|---:|---:|
{chr(10).join(rows)}

Ratios from this run (aims: >= 2.0x PowerDNS LUA shared, >= 0.5x gdnsd on one name):

| queries | gslb / PowerDNS LUA shared | gslb / PowerDNS LUA | gslb / gdnsd multifo | gslb 2 workers / 1 |
|---|---:|---:|---:|---:|
{chr(10).join(ratios)}

The ECS mix sends 10 000 different /24 client subnets from the GeoIP networks, each answered
by location; gdnsd's `multifo` and PowerDNS's `ifportup` do not look at the client, so for them
it is the same work with a larger query. gslb answers repeated questions from its front cache
(whole replies by the query's bytes, per rotation slot and client subnet), so what is measured
after the first pass through the 10 000 subnets is that path; a new snapshot (any change in
Redis) empties it and the next queries take the whole way once per question.

Two workers do not answer more here: with two cores, the second worker shares its core with
dnsperf, which is then the limit (they help on machines with cores to spare). p99 latencies are
as dnsperf sees them, its own scheduling included, for every server alike; at full load
dnsperf keeps 200 queries outstanding, so average latency there is queueing, not answer time.

How the state behind these answers holds up at 10 000 to 1 000 000 pools is the "Scale"
section below (bench/scale.py, the second half of `make bench`).
<!-- bench-dns:end -->"""
    text = PERF.read_text() if PERF.exists() else "# Performance\n"
    if "<!-- bench-dns:start -->" in text:
        text = re.sub(
            r"<!-- bench-dns:start -->.*<!-- bench-dns:end -->", section, text, flags=re.S
        )
    elif "<!-- bench-checker:start -->" in text:
        text = text.replace(
            "<!-- bench-checker:start -->", section + "\n\n<!-- bench-checker:start -->"
        )
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    PERF.write_text(text)
    print(f"wrote {PERF}")


if __name__ == "__main__":
    sys.exit(main())
