"""make bench: gslb's answer path against PowerDNS LUA records and gdnsd, side by side.

The same zone and the same load-balanced name are served by each server in turn, on loopback,
with four members that pass their health checks (`gslb demo-backends` listens on them):

- gslb: a pool with [health, proximity, isp_interleave, limit], a GeoIP2 City database, an
  HTTP monitor; one worker, then `--workers 2`;
- PowerDNS (bind backend) with a LUA record `ifportup(8080, {...})`, with
  `enable-lua-records=shared` and with `=yes` (a Lua state per query);
- gdnsd with `multifo` over a `tcp_connect` monitor;
- signed (DNSSEC, ECDSAP256SHA256, DO=1 queries): gslb with `dnssec:` in the same zone, and
  PowerDNS LUA shared with the zone secured by `pdnsutil secure-zone` (its bind backend's
  DNSSEC database), both signing answers as they make them.

The server is pinned to core 0 and dnsperf to core 1 (gslb with 2 workers gets both cores,
sharing core 1 with dnsperf). Each server answers two mixes, three runs each: one name from
one resolver, and the same name with 10 000 different EDNS Client Subnets (raw wire queries,
`dnsperf -B`). Reported: median queries per second at full load; then p50, p99 and p99.9
of every reply timed (`dnsperf -v`, written to a file) at half of gdnsd's rate, the same for
every server that can answer that many (gdnsd runs first to set it; a server that cannot is
timed at half its own rate, and gdnsd again at gslb's, so gslb's ratio compares one load); a
latency histogram of gslb and gdnsd; ratios to the peers from the same run. Then what signing costs gslb: the time to sign a new
RRset and to find one already signed (gslb.core.dnssec, both algorithms), and, from the signed
server's /metrics, how often a DO=1 query needed a signature made.

Writes docs/performance.md between the bench-dns markers. Only loopback addresses are used.
"""

from __future__ import annotations

import bisect
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
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.edns
import dns.message
import dns.name
import dns.query
import dns.rdatatype
from benchlib import free_port, stop

ROOT = Path(__file__).resolve().parent.parent
PERF = ROOT / "docs" / "performance.md"
GSLB = [sys.executable, "-m", "gslb"]
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
WARM_UP_SECONDS = 3.0  # long enough for dnsperf to send every query of a mix at least once
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
    out: list[tuple[str, float, float]] = []
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


def gslb_zone(directory: Path, signed: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    members = "".join(f"      - {{address: {a}, site: {s}}}\n" for a, s in MEMBERS)
    (directory / "gslb.example.com.yaml").write_text(
        "zone: gslb.example.com\n"
        "soa: {mname: ns1, rname: hostmaster.example.com., serial: 1}\n"
        "records: |\n  @ NS ns1\n  ns1 A 192.0.2.53\n"
        "isps:\n  isp-a: [127.10.1.0/24]\n  isp-b: [127.10.2.0/24]\n"
        + ("dnssec: {algorithm: ECDSAP256SHA256}\n" if signed else "")
        + "sites:\n  lon: {lat: 51.51, lon: -0.13}\n  nyc: {lat: 40.71, lon: -74.01}\n"
        "monitors:\n  web: {type: http, port: 8080, path: /healthz, interval: 2, timeout: 1}\n"
        "pools:\n  www:\n    ttl: 20\n    monitor: web\n"
        "    policy: [health, proximity, isp_interleave, limit]\n"
        f"    members:\n{members}"
    )
    return directory


def pdns_config(directory: Path, port: int, shared: bool, signed: bool = False) -> Path:
    """PowerDNS's configuration; `signed` secures the zone (a CSK, ECDSAP256SHA256, NSEC: what
    `pdnsutil secure-zone` makes by default) in the bind backend's DNSSEC database."""
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
        + (f"bind-dnssec-db={directory}/dnssec.db\n" if signed else "")
    )
    if signed:
        pdnsutil = ["pdnsutil", f"--config-dir={directory}"]
        subprocess.run([*pdnsutil, "create-bind-db", f"{directory}/dnssec.db"], check=True)
        subprocess.run(
            [*pdnsutil, "secure-zone", "gslb.example.com"], check=True, capture_output=True
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


@dataclass(frozen=True)
class Mix:
    """Queries dnsperf sends: a file of them, and its flags."""

    path: Path
    flags: tuple[str, ...] = ()


MIXES = {
    "single": "one name",
    "ecs": "10 000 client subnets",
    "single-do": "one name, DO=1",
    "ecs-do": "10 000 client subnets, DO=1",
}


def query_files(directory: Path, networks: list[tuple[str, float, float]]) -> dict[str, Mix]:
    single = directory / "single.txt"
    single.write_text(f"{NAME} A\n")
    mixes = {"single": Mix(single), "single-do": Mix(single, ("-D",))}
    for mix, dnssec in (("ecs", False), ("ecs-do", True)):
        rng = random.Random(7)  # the same subnets, in the same order, signed or not
        raw = bytearray()
        for i in range(SUBNETS):
            network = ipaddress.ip_network(rng.choice(networks)[0])
            subnet = str(network.network_address + rng.randrange(256) * 256)
            message = dns.message.make_query(NAME, "A", use_edns=0, payload=1232)
            message.use_edns(0, payload=1232, options=[dns.edns.ECSOption(subnet, 24)])
            if dnssec:
                message.want_dnssec()
            message.id = i & 0xFFFF
            wire = message.to_wire()
            raw += struct.pack("!H", len(wire)) + wire
        path = directory / f"{mix}.raw"
        path.write_bytes(bytes(raw))
        mixes[mix] = Mix(path)
    return mixes


# --- the servers -------------------------------------------------------------------------


@dataclass
class Server:
    label: str
    argv: list[str]
    port: int
    cores: str = SERVER_CORE
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    signed: bool = False  # a signed zone, asked with DO=1
    metrics: str | None = None  # the URL of its /metrics, to read what signing did

    @property
    def mixes(self) -> tuple[str, ...]:
        return ("single-do", "ecs-do") if self.signed else ("single", "ecs")

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
                query = dns.message.make_query(NAME, "A", want_dnssec=self.signed)
                reply = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5)
                found = {
                    rr.to_text() for rrset in reply.answer if rrset.rdtype == 1 for rr in rrset
                }
                # Signed: the answer carries its RRSIG (gslb answers SERVFAIL until it has
                # read the zone's key).
                signatures = [r for r in reply.answer if r.rdtype == dns.rdatatype.RRSIG]
                if (
                    found
                    and found <= {a for a, _ in MEMBERS}
                    and self.healthy(found)
                    and (signatures or not self.signed)
                ):
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


def dnsperf_argv(port: int, queries: Mix, seconds: float, extra: list[str]) -> list[str]:
    argv = ["taskset", "-c", CLIENT_CORE, "dnsperf", "-s", "127.0.0.1", "-p", str(port)]
    argv += ["-d", str(queries.path), "-l", str(seconds), "-c", "4", "-q", "200"]
    argv += [*queries.flags, *extra]
    if queries.path.suffix == ".raw":
        argv.append("-B")
    return argv


def dnsperf(port: int, queries: Mix, seconds: float, extra: list[str]) -> str:
    argv = dnsperf_argv(port, queries, seconds, extra)
    return subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout


def full_load(port: int, queries: Mix) -> Run:
    out = dnsperf(port, queries, SECONDS, [])
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = float(re.search(r"Average Latency \(s\):\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lost = float(re.search(r"Queries lost:\s+\d+ \(([\d.]+)%\)", out).group(1)) / 100  # type: ignore[union-attr]
    return Run(qps, latency, lost)


# Upper bounds (seconds) of the latency histogram's buckets; the last is everything slower.
BUCKETS = (25e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3)
TIMED_SECONDS = int(os.environ.get("BENCH_TIMED_SECONDS", "5"))


@dataclass
class Timed:
    """Every reply timed at one fixed rate."""

    rate: float
    p50: float
    p99: float
    p999: float
    answered: int
    lost: float  # fraction of the queries sent
    histogram: list[int]  # replies per bucket of BUCKETS, and one more for the slower

    @classmethod
    def of(cls, rate: float, times: list[float], lost: float) -> Timed:
        times.sort()

        def at(q: float) -> float:
            return times[int(q * (len(times) - 1))] if times else float("nan")

        histogram = [0] * (len(BUCKETS) + 1)
        for t in times:
            histogram[bisect.bisect_left(BUCKETS, t)] += 1
        return cls(rate, at(0.50), at(0.99), at(0.999), len(times), lost, histogram)


def timed_load(port: int, queries: Mix, rate: float, work: Path) -> Timed:
    """Every reply's latency at `rate` queries per second (dnsperf -v). dnsperf writes a
    line per reply; into a pipe, it stalls whenever the reader falls behind, and times its
    own stall (a 270 ms pause every run here, which made p99 a figure of the pipe): so it
    writes to a file."""
    out = work / "timed.txt"
    argv = dnsperf_argv(port, queries, TIMED_SECONDS, ["-Q", str(int(rate)), "-v"])
    with out.open("wb") as sink:
        subprocess.run(argv, stdout=sink, stderr=subprocess.DEVNULL, timeout=TIMED_SECONDS + 60)
    times: list[float] = []
    lost = 0.0
    with out.open() as lines:
        for line in lines:
            # "> NOERROR name type 0.000123"; a query that timed out has no time
            if line.startswith("> "):
                last = line.rsplit(None, 1)[-1]
                if last[0].isdigit():
                    times.append(float(last))
            elif "Queries lost:" in line:
                lost = float(re.search(r"\(([\d.]+)%\)", line).group(1)) / 100  # type: ignore[union-attr]
    out.unlink()
    return Timed.of(rate, times, lost)


# --- the run ---------------------------------------------------------------------------------


def gslb_serve(
    zones: Path, port: int, data: Path, city: Path, workers: int, http: int = 0
) -> list[str]:
    return [
        *GSLB,
        "serve",
        "--zones",
        str(zones),
        "--dns",
        f"127.0.0.1:{port}",
        "--http",
        f"127.0.0.1:{http}",
        "--data-dir",
        str(data),
        "--geoip",
        str(city),
        "--workers",
        str(workers),
        # Rate limiting runs for dnsperf's queries as for any resolver's: loopback is exempt by
        # default, which would skip it, so another network is; and the rate is too high to
        # limit one benchmark client. Every reply then pays what a real client's does.
        "--rrl-exempt",
        "192.0.2.0/24",
        "--rrl-rate",
        "1000000000",
    ]


def main() -> int:
    for tool in ("dnsperf", "pdns_server", "pdnsutil", "gdnsd", "taskset", "redis-server"):
        if shutil.which(tool) is None:
            print(f"make bench needs {tool} (bench/deps.sh installs it)", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="gslb-bench-"))
    rng = random.Random(42)
    networks = geoip_networks(rng)
    city = write_geoip(work / "city.mmdb", networks)
    zones = gslb_zone(work / "zones")
    signed_zones = gslb_zone(work / "zones-signed", signed=True)
    queries = query_files(work, networks)
    keys = (
        "gslb",
        "gslb-python",
        "gslb2",
        "gslb-signed",
        "http-signed",
        "pdns",
        "pdns-lua",
        "pdns-signed",
        "gdnsd",
    )
    ports = {key: free_port() for key in keys}
    # gdnsd first: half of its rate is the rate every server's latency is measured at.
    servers = [
        Server(
            "gdnsd multifo",
            ["gdnsd", "-c", str(gdnsd_config(work / "gdnsd", ports["gdnsd"])), "start"],
            ports["gdnsd"],
        ),
        Server("gslb", gslb_serve(zones, ports["gslb"], work / "data1", city, 1), ports["gslb"]),
        Server(
            "gslb, Python UDP loop",
            gslb_serve(zones, ports["gslb-python"], work / "data4", city, 1),
            ports["gslb-python"],
            env={"GSLB_UDP_LOOP": "python"},
        ),
        Server(
            "gslb --workers 2",
            gslb_serve(zones, ports["gslb2"], work / "data2", city, 2),
            ports["gslb2"],
            cores=f"{SERVER_CORE},{CLIENT_CORE}",
        ),
        Server(
            "gslb signed",
            gslb_serve(
                signed_zones, ports["gslb-signed"], work / "data3", city, 1, ports["http-signed"]
            ),
            ports["gslb-signed"],
            signed=True,
            metrics=f"http://127.0.0.1:{ports['http-signed']}/metrics",
        ),
        Server(
            "PowerDNS LUA shared",
            ["pdns_server", f"--config-dir={pdns_config(work / 'pdns', ports['pdns'], True)}"],
            ports["pdns"],
        ),
        Server(
            "PowerDNS LUA shared signed",
            [
                "pdns_server",
                f"--config-dir={pdns_config(work / 'pdns-signed', ports['pdns-signed'], True, True)}",
            ],
            ports["pdns-signed"],
            signed=True,
        ),
        Server(
            "PowerDNS LUA",
            [
                "pdns_server",
                f"--config-dir={pdns_config(work / 'pdns-lua', ports['pdns-lua'], False)}",
            ],
            ports["pdns-lua"],
        ),
    ]
    backends = subprocess.Popen(
        [*GSLB, "demo-backends", "--zones", str(zones)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: dict[str, dict[str, object]] = {}
    signing: dict[str, float] = {}
    try:
        time.sleep(1)
        for server in servers:
            print(f"{server.label}: starting", flush=True)
            with server.running(work / f"{server.port}.log"):
                entry: dict[str, object] = {}
                for mix in server.mixes:
                    # A first pass through the mix before it is measured, for every server
                    # alike: what is measured is answering questions seen before (gslb fills
                    # its front from the first pass through the 10 000 subnets).
                    dnsperf(server.port, queries[mix], WARM_UP_SECONDS, [])
                    runs = [full_load(server.port, queries[mix]) for _ in range(RUNS)]
                    qps = statistics.median(r.qps for r in runs)
                    # Half of gdnsd's rate for the same queries (signed or not); a server
                    # that cannot answer that many is timed at half its own rate instead.
                    reference = results.get("gdnsd multifo", {}).get(mix.removesuffix("-do"))
                    rate = reference["qps"] / 2 if isinstance(reference, dict) else qps / 2
                    own = qps < rate
                    timed = timed_load(server.port, queries[mix], qps / 2 if own else rate, work)
                    entry[mix] = {
                        "qps": qps,
                        "runs": [round(r.qps) for r in runs],
                        "lost": max(r.lost for r in runs),
                        "timed": timed,
                        "own_rate": own,
                    }
                    print(
                        f"  {mix}: {qps:,.0f} qps {[round(r.qps) for r in runs]}, at "
                        f"{timed.rate:,.0f} qps p50/p99/p99.9 {timed.p50 * 1e3:.3f} / "
                        f"{timed.p99 * 1e3:.3f} / {timed.p999 * 1e3:.3f} ms",
                        flush=True,
                    )
                results[server.label] = entry
                if server.metrics:
                    signing.update(signing_counts(server.metrics))
        # gslb timed at half its own rate (it cannot answer half of gdnsd's): gdnsd again, at
        # gslb's rate, so that the p99 ratio and the histogram compare the same load.
        gdnsd = servers[0]
        if any(results["gslb"][mix]["own_rate"] for mix in ("single", "ecs")):  # type: ignore[index]
            with gdnsd.running(work / "gdnsd-again.log"):
                for mix in ("single", "ecs"):
                    rate = results["gslb"][mix]["timed"].rate  # type: ignore[index]
                    again = timed_load(gdnsd.port, queries[mix], rate, work)
                    results[gdnsd.label][mix]["same_rate"] = again  # type: ignore[index]
                    print(f"  gdnsd again, {mix} at {rate:,.0f}: p99 {again.p99 * 1e3:.3f} ms")
    finally:
        stop(backends)
    signing.update(signing_cost())
    write_doc(results, signing)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def signing_counts(url: str) -> dict[str, float]:
    """What the signed server did in the whole run, from its /metrics: DO=1 queries answered,
    signatures made, and signatures found already made."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    out = {"queries": 0.0, "made": 0.0, "hits": 0.0}
    names = {
        "gslb_dns_queries_total": "queries",
        "gslb_dnssec_signatures_made_total": "made",
        "gslb_dnssec_signature_cache_hits_total": "hits",
    }
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in names:
                out[names[sample.name]] += sample.value
    return out


def signing_cost() -> dict[str, float]:
    """Median seconds to sign a new RRset (four A records, as the pool answers) and to find
    one already signed (another order of the same set), with gslb's own signer."""
    from gslb.core.dnssec import Signer, SigningKey
    from gslb.core.records import A, RRset

    owner = dns.name.from_text(NAME).to_wire()
    assert owner is not None
    out: dict[str, float] = {}
    for algorithm in ("ECDSAP256SHA256", "ED25519"):
        signer = Signer(
            dns.name.from_text("gslb.example.com").to_wire() or b"",
            (SigningKey.generate(algorithm),),
            int(time.time()),
        )
        new, again = [], []
        for i in range(2000):
            members = tuple((bytes([10, i >> 8, i & 0xFF, n]),) for n in range(4))
            rrset = RRset(owner, A, 20, members)
            started = time.perf_counter()
            signer.rrsig(rrset)
            new.append(time.perf_counter() - started)
            rotated = RRset(owner, A, 20, members[1:] + members[:1])
            started = time.perf_counter()
            signer.rrsig(rotated)
            again.append(time.perf_counter() - started)
        out[f"new {algorithm}"] = statistics.median(new)
        out[f"again {algorithm}"] = statistics.median(again)
    return out


def write_doc(results: dict[str, dict[str, object]], signing: dict[str, float]) -> None:
    def q(label: str, mix: str) -> float:
        return float(results[label][mix]["qps"])  # type: ignore[index]

    def timed(label: str, mix: str) -> Timed:
        return results[label][mix]["timed"]  # type: ignore[index, no-any-return]

    def gdnsd_at_gslb_rate(mix: str) -> Timed:
        entry = results["gdnsd multifo"][mix]
        return entry.get("same_rate") or entry["timed"]  # type: ignore[index, attr-defined, no-any-return]

    rows = []
    order = ["gslb", "gslb, Python UDP loop", "gslb --workers 2", "gslb signed"]
    order += ["PowerDNS LUA shared"]
    order += ["PowerDNS LUA shared signed", "PowerDNS LUA", "gdnsd multifo"]
    for label in order:
        for mix, r in results[label].items():
            t = timed(label, mix)
            mark = " (own)" if r["own_rate"] else ""  # type: ignore[index]
            rows.append(
                f"| {label} | {MIXES[mix]} "
                f"| {r['qps']:,.0f} | {' / '.join(f'{x:,}' for x in r['runs'])} "  # type: ignore[index]
                f"| {r['lost']:.2%} | {t.rate:,.0f}{mark} | {t.p50 * 1e3:.3f} "  # type: ignore[index]
                f"| {t.p99 * 1e3:.3f} | {t.p999 * 1e3:.3f} | {t.lost:.2%} |"
            )
    ratios = []
    for mix, text in (("single", "one name"), ("ecs", "10 000 client subnets")):
        g = q("gslb", mix)
        p99 = timed("gslb", mix).p99 / gdnsd_at_gslb_rate(mix).p99
        mark = f" at {timed('gslb', mix).rate:,.0f} qps" if results["gslb"][mix]["own_rate"] else ""  # type: ignore[index]
        ratios.append(
            f"| {text} | {g / q('gdnsd multifo', mix):.2f}x | {p99:.1f}x{mark} "
            f"| {g / q('PowerDNS LUA shared', mix):.2f}x | {g / q('PowerDNS LUA', mix):.2f}x "
            f"| {q('gslb --workers 2', mix) / g:.2f}x "
            f"| {g / q('gslb, Python UDP loop', mix):.2f}x |"
        )
    bounds = [f"< {b * 1e6:.0f} µs" for b in BUCKETS] + [f">= {BUCKETS[-1] * 1e6:.0f} µs"]
    histogram = []
    for label, t in (
        ("gslb", timed("gslb", "single")),
        ("gdnsd multifo", gdnsd_at_gslb_rate("single")),
    ):
        histogram.append(
            f"| {label} ({t.rate:,.0f} qps) | "
            + " | ".join(f"{n / max(1, t.answered):.2%}" for n in t.histogram)
            + " |"
        )
    signed_ratios = []
    for mix, text in (("single", "one name"), ("ecs", "10 000 client subnets")):
        g = q("gslb signed", f"{mix}-do")
        signed_ratios.append(
            f"| {text} | {g / q('PowerDNS LUA shared signed', f'{mix}-do'):.2f}x "
            f"| {g / q('gslb', mix):.2f}x "
            f"| {q('PowerDNS LUA shared signed', f'{mix}-do') / q('PowerDNS LUA shared', mix):.2f}x |"
        )
    asked = signing["queries"]
    made, hits = signing["made"], signing["hits"]
    section = f"""<!-- bench-dns:start -->
## DNS answers (`make bench`, {time.strftime("%Y-%m-%d")})

Machine: 2 cores (a shared virtual machine: figures move by 10-20 % between runs). Each server
pinned to core 0, dnsperf 2.10 to core 1 (`-c 4 -q 200`); `gslb --workers 2` on both cores,
sharing core 1 with dnsperf. The same name, `{NAME}`, load-balanced over four members that
pass their health checks: gslb with [health, proximity, isp_interleave, limit] and a GeoIP2
City database of 2 000 networks; PowerDNS 4.7 (bind backend) with
`ifportup(8080, {{...}})`; gdnsd 3.8 with `multifo` over `tcp_connect`. {RUNS} runs of
{SECONDS:.0f} s each per mix, at full load, after a {WARM_UP_SECONDS:.0f} s pass through the
same mix; the median is shown with every run. Latency: every
reply timed (`dnsperf -v -Q`, {TIMED_SECONDS} s, its output written to a file) at half of
gdnsd's median rate for the same queries, the same rate for every server; "(own)" marks a
server that cannot answer that many, timed at half of its own rate instead.

| server | queries | median qps | runs | lost at full load | timed at (qps) | p50 (ms) | p99 (ms) | p99.9 (ms) | lost when timed |
|---|---|---:|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Ratios from this run, one column per aim of issue 17 (throughput >= 1.0x gdnsd multifo for
one name and >= 0.8x for 10 000 client subnets; p99 at half of gdnsd's rate <= 1.5x gdnsd's;
throughput >= 4x PowerDNS LUA shared):

| queries | gslb / gdnsd multifo | gslb p99 / gdnsd p99 | gslb / PowerDNS LUA shared | gslb / PowerDNS LUA | gslb 2 workers / 1 | compiled UDP loop / Python loop |
|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(ratios)}

Where the replies fell, one name, both timed at the same rate (share of the replies; when
gslb cannot answer half of gdnsd's rate, gdnsd is timed again at gslb's):

| server | {" | ".join(bounds)} |
|---|{"---:|" * len(bounds)}
{chr(10).join(histogram)}

### Signed answers

The signed rows serve the same zone signed (ECDSAP256SHA256, one combined key, as
`pdnsutil secure-zone` makes by default) and ask with DO=1, so every answer carries its RRSIG.
PowerDNS signs its LUA answers as it makes them (bind backend, its DNSSEC database); gslb signs
each new RRset once (gslb.core.dnssec) and keeps whole signed replies in its reply caches.
Aims: signed gslb >= 2x PowerDNS LUA signed, >= 0.7x unsigned gslb.

| queries | signed gslb / PowerDNS LUA shared signed | signed gslb / unsigned gslb | PowerDNS signed / unsigned |
|---|---:|---:|---:|
{chr(10).join(signed_ratios)}

What signing cost the signed gslb over its whole run ({asked:,.0f} DO=1 queries, warm-ups
and latency runs included), signatures made: {made:,.0f}; found already made: {hits:,.0f}
(every order of the pool's answer shares one: a hit rate of {hits / max(1.0, hits + made):.1%}).
So {1 - (made + hits) / max(1.0, asked):.2%} of the DO=1 queries were answered from a reply
already kept whole, without looking at the signer at all.

gslb's signer alone, on this machine (median of 2 000, one core; the pool's four A records):

| | ECDSAP256SHA256 | ED25519 |
|---|---:|---:|
| a new RRset's signature | {signing["new ECDSAP256SHA256"] * 1e6:.0f} µs | {signing["new ED25519"] * 1e6:.0f} µs |
| an RRset already signed (another order of the same set) | {signing["again ECDSAP256SHA256"] * 1e6:.1f} µs | {signing["again ED25519"] * 1e6:.1f} µs |

The ECS mix sends 10 000 different /24 client subnets from the GeoIP networks, each answered
by location; gdnsd's `multifo` and PowerDNS's `ifportup` do not look at the client, so for them
it is the same work with a larger query. gslb answers repeated questions from its front cache
(whole replies by the query's bytes, per rotation slot and client subnet), so what is measured
after the first pass through the 10 000 subnets is that path; a new snapshot (any change in
Redis) empties it and the next queries take the whole way once per question.

"gslb" runs the compiled UDP loop (gslb/shell/_udploop.c); "gslb, Python UDP loop" is the
same server with `GSLB_UDP_LOOP=python`, what a machine without a C compiler runs.

gslb's rate limiter works on every reply here as it does for a real resolver (the bench
moves its exemption off loopback and sets a rate no benchmark client reaches); PowerDNS and
gdnsd have none.

Two workers do not answer more here: with two cores, the second worker shares its core with
dnsperf, which is then the limit (they help on machines with cores to spare). Latencies are
as dnsperf sees them, its own scheduling included, for every server alike. A server timed
near its own maximum rate queues, and its latency is then mostly that queue.

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
