"""The scale section of make bench: what a change costs at 10 000 to 1 000 000 pools.

For each size, one zone of N pools of four members (two sites, two ISPs, a monitor) is
written into Debian's redis-server through the state layer, with a decided health for every
member (what checkers would have written). Then an API process and two DNS processes start
on it, and the bench measures:

- the resident memory of each DNS process, and its cold start (start to answering);
- a one-member write through the REST API (`POST .../drain`): its latency, and the time until
  every DNS node answers without the member;
- a health change (written as a checker writes it): the time until every node answers without
  the member;
- answers per second (dnsperf) for ten names of the zone, against ten names of a 10-pool
  zone served by the same process in the same run; and for 10 000 different names.

Then static records: a zone file of 100 000 and 1 000 000 records read by `gslb check-zones`
(time and peak memory), and a zone of 100 000 records PUT through the API (until a DNS node
answers its last name).

The DNS processes are pinned to core 0; Redis, the API, dnsperf and this script to core 1.
Writes docs/performance.md between the bench-scale markers. Only loopback is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import dns.message
import dns.query
from benchlib import free_port, rss_mb, start_redis, stop

ROOT = Path(__file__).resolve().parent.parent
PERF = ROOT / "docs" / "performance.md"
GSLB = [sys.executable, "-m", "gslb"]
SERVER_CORE, CLIENT_CORE = "0", "1"
POOLS = [int(n) for n in os.environ.get("BENCH_SCALE", "10000,100000,1000000").split(",") if n]
RECORDS = [int(n) for n in os.environ.get("BENCH_RECORDS", "100000,1000000").split(",") if n]
API_RECORDS = [int(n) for n in os.environ.get("BENCH_API_RECORDS", "100000").split(",") if n]
REPEAT = int(os.environ.get("BENCH_REPEAT", "20"))
QPS_SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
TOKEN = "bench-token-0123456789abcdef"
BIG, SMALL = "big.example", "small.example"


def member_addresses(i: int) -> list[str]:
    """Four addresses of pool i: two per ISP (10.0/9 and 10.128/9), distinct for every pool."""
    a, b, c = (i >> 14) & 127, (i >> 6) & 255, (i & 63) * 4
    return [
        f"10.{a}.{b}.{c}",
        f"10.{a}.{b}.{c + 1}",
        f"10.{128 + a}.{b}.{c}",
        f"10.{128 + a}.{b}.{c + 1}",
    ]


def document(zone: str, pools: int) -> dict[str, Any]:
    return {
        "zone": zone,
        "soa": {"mname": "ns1", "rname": f"hostmaster.{zone}."},
        "records": "@ NS ns1\nns1 A 192.0.2.53\n",
        "isps": {"isp-a": ["10.0.0.0/9"], "isp-b": ["10.128.0.0/9"]},
        "sites": {"lon": {"lat": 51.5, "lon": -0.1}, "nyc": {"lat": 40.7, "lon": -74.0}},
        "monitors": {"web": {"type": "tcp", "port": 80}},
        "pools": {
            f"p{i}": {
                "monitor": "web",
                "policy": ["health", "proximity", "isp_interleave", "limit"],
                "members": [
                    {"address": a, "site": "lon" if j % 2 == 0 else "nyc"}
                    for j, a in enumerate(member_addresses(i))
                ],
            }
            for i in range(pools)
        },
    }


async def store_zone(url: str, zone: str, pools: int) -> float:
    """Write the zone and every member's health up; seconds the zone write took."""
    sys.path.insert(0, str(ROOT))
    from gslb.common.gcpause import gc_paused
    from gslb.common.redis import connect
    from gslb.schema import HEALTH, Health
    from gslb.state.migrate import ensure_layout
    from gslb.state.store import Store
    from gslb.state.zones import Who, write_document

    client = connect(url, socket_timeout=600)
    try:
        await ensure_layout(client)
        store = Store(client)
        doc = document(zone, pools)
        who = Who("api:bench", "put", f"zones/{zone}")
        started = time.monotonic()
        with gc_paused():
            await store.change(zone, lambda view: write_document(view, zone, doc, who))
        took = time.monotonic() - started
        up = Health("up", 0.0012, (), time.time()).to_json()
        batch: dict[str, str] = {}
        for i in range(pools):
            for a in member_addresses(i):
                batch[f"{zone}/p{i}/{a}"] = up
            if len(batch) >= 20_000:
                await client.hset(HEALTH, mapping=batch)  # type: ignore[arg-type]
                batch = {}
        if batch:
            await client.hset(HEALTH, mapping=batch)  # type: ignore[arg-type]
        return took
    finally:
        await client.aclose()


def answer(port: int, name: str) -> set[str] | None:
    with contextlib.suppress(Exception):
        reply = dns.query.udp(
            dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=0.5
        )
        return {rr.to_text() for rrset in reply.answer for rr in rrset}
    return None


def until_all(ports: list[int], name: str, good: Any, timeout: float) -> float:
    """Seconds until every node's answer for `name` satisfies `good`."""
    started = time.monotonic()
    pending = set(ports)
    while pending:
        for port in list(pending):
            found = answer(port, name)
            if found is not None and good(found):
                pending.discard(port)
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{name}: not on every node within {timeout} s")
    return time.monotonic() - started


def post(port: int, path: str) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1{path}",
        method="POST",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return time.monotonic() - started


def scrape(port: int) -> tuple[float, int]:
    """Seconds a GET /metrics takes, and the octets of the body."""
    started = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=120) as response:
        size = len(response.read())
    return time.monotonic() - started, size


def start(args: list[str], core: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["taskset", "-c", core, *GSLB, *args, "--log-format", "json"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def dnsperf_qps(port: int, names: list[str], work: Path, label: str) -> float:
    queries = work / f"{label}.txt"
    queries.write_text("".join(f"{n} A\n" for n in names))
    argv = ["taskset", "-c", CLIENT_CORE, "dnsperf", "-s", "127.0.0.1", "-p", str(port)]
    argv += ["-d", str(queries), "-l", "2", "-c", "4", "-q", "200"]
    subprocess.run(argv, capture_output=True, timeout=60)  # a pass to warm the caches
    argv[argv.index("-l") + 1] = str(QPS_SECONDS)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=QPS_SECONDS + 60).stdout
    return float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def set_health(url: str, key: str, word: str) -> None:
    from gslb.common.redis import connect
    from gslb.core.state import MemberState
    from gslb.state.store import Store

    async def go() -> None:
        client = connect(url)
        try:
            await Store(client).set_health({key: MemberState(word, 0.0012)})  # type: ignore[arg-type]
        finally:
            await client.aclose()

    asyncio.run(go())


def pool_figures(work: Path, pools: int) -> dict[str, float]:
    base = work / f"pools-{pools}"
    base.mkdir()
    redis_proc, url = start_redis(base, CLIENT_CORE)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        load = asyncio.run(store_zone(url, BIG, pools))
        asyncio.run(store_zone(url, SMALL, 10))
        print(f"  stored {pools} pools in {load:.1f} s", flush=True)
        tokens = base / "tokens.yaml"
        tokens.write_text(json.dumps([{"name": "bench", "role": "write", "token": TOKEN}]))
        api_port = free_port()
        procs.append(
            start(
                [
                    "api",
                    "--redis",
                    url,
                    "--http",
                    f"127.0.0.1:{api_port}",
                    "--api-tokens",
                    str(tokens),
                    "--data-dir",
                    str(base / "api"),
                ],
                CLIENT_CORE,
                base / "api.log",
            )
        )
        dns_ports = [free_port(), free_port()]
        metrics_port = free_port()  # the first node serves /metrics, as a production node does
        started = time.monotonic()
        nodes = []
        for i, dns_port in enumerate(dns_ports):
            argv = ["dns", "--redis", url, "--dns", f"127.0.0.1:{dns_port}", "--workers", "1"]
            if i == 0:
                argv += ["--http", f"127.0.0.1:{metrics_port}"]
            nodes.append(start(argv, SERVER_CORE, base / f"dns{i}.log"))
        procs.extend(nodes)
        last = f"p{pools - 1}.{BIG}"
        cold = until_all(dns_ports, last, lambda a: len(a) == 4, 900)
        cold_start = time.monotonic() - started
        until_all([dns_ports[0]], f"p0.{SMALL}", lambda a: len(a) == 4, 60)
        # The API process reads the state too (for explain): wait until it serves.
        until_api(api_port, 900)
        rss = [rss_mb(p.pid) for p in nodes]
        rng = random.Random(pools)
        writes, to_answers, health = [], [], []
        for _ in range(REPEAT):
            i = rng.randrange(pools)
            first = member_addresses(i)[0]
            name = f"p{i}.{BIG}"
            path = f"/zones/{BIG}/pools/p{i}/members/{first}"
            t0 = time.monotonic()
            writes.append(post(api_port, path + "/drain"))
            until_all(dns_ports, name, lambda a, first=first: first not in a, 30)
            to_answers.append(time.monotonic() - t0)
            post(api_port, path + "/enable")
            until_all(dns_ports, name, lambda a, first=first: first in a, 30)
            second = member_addresses(i)[1]
            t0 = time.monotonic()
            set_health(url, f"{BIG}/p{i}/{second}", "down")
            until_all(dns_ports, name, lambda a, second=second: second not in a, 30)
            health.append(time.monotonic() - t0)
            set_health(url, f"{BIG}/p{i}/{second}", "up")
            until_all(dns_ports, name, lambda a, second=second: second in a, 30)
        rss = [max(r, rss_mb(p.pid)) for r, p in zip(rss, nodes, strict=True)]
        # The same shape of questions for both zones (ten names), so that what differs is the
        # size of what the answers come from; then 10 000 different names of the big zone.
        ten = [f"p{rng.randrange(pools)}.{BIG}" for _ in range(10)]
        qps_big = dnsperf_qps(dns_ports[0], [ten[k % 10] for k in range(10_000)], base, "big")
        qps_small = dnsperf_qps(
            dns_ports[0], [f"p{k % 10}.{SMALL}" for k in range(10_000)], base, "small"
        )
        many = [f"p{rng.randrange(pools)}.{BIG}" for _ in range(10_000)]
        qps_many = dnsperf_qps(dns_ports[0], many, base, "many")
        scrapes = [scrape(metrics_port) for _ in range(5)]
        del cold
        return {
            "load": load,
            "rss": max(rss),
            "cold": cold_start,
            "write": statistics.median(writes),
            "write_p90": sorted(writes)[int(0.9 * (len(writes) - 1))],
            "to_answers": statistics.median(to_answers),
            "health": statistics.median(health),
            "qps": qps_big,
            "qps_small": qps_small,
            "qps_many": qps_many,
            "scrape": statistics.median(s for s, _ in scrapes),
            "scrape_kb": scrapes[-1][1] / 1024,
        }
    finally:
        for proc in procs:
            stop(proc)
        stop(redis_proc)


def until_api(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(Exception),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response,
        ):
            if json.loads(response.read()).get("redis") == "up":
                return
        time.sleep(0.2)
    raise RuntimeError("the API did not come up")


def master_file(records: int) -> str:
    """A zone's records: the NS, its address, and one A record per name up to `records`."""
    lines = ["@ NS ns1", "ns1 A 192.0.2.53"]
    lines += [f"h{i} A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(records - 2)]
    return "\n".join(lines) + "\n"


def record_figures(work: Path, records: int) -> dict[str, float]:
    directory = work / f"records-{records}"
    directory.mkdir()
    (directory / "big.yaml").write_text(
        "zone: records.example\nsoa: {mname: ns1, rname: hostmaster.records.example.}\n"
        "records_file: big.zone\n"
    )
    (directory / "big.zone").write_text(master_file(records))
    started = time.monotonic()
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, *GSLB, "check-zones", str(directory)],
        stdout=subprocess.DEVNULL,
    )
    # The peak resident memory of the command itself (VmHWM counts from its exec; the
    # rusage of a child forked from this big process would count this one's pages too).
    peak = 0.0
    while proc.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        time.sleep(0.02)
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"check-zones of {records} records failed")
    return {"load": took, "rss": peak}


def api_record_figures(work: Path, records: int) -> dict[str, float]:
    """A zone of `records` static records PUT through the API: the write's latency, then
    until a DNS node following the same Redis answers its last name, and that node's RSS."""
    base = work / f"api-records-{records}"
    base.mkdir()
    redis_proc, url = start_redis(base, CLIENT_CORE)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        tokens = base / "tokens.yaml"
        tokens.write_text(json.dumps([{"name": "bench", "role": "write", "token": TOKEN}]))
        api_port, dns_port = free_port(), free_port()
        api = ["api", "--redis", url, "--http", f"127.0.0.1:{api_port}", "--data-dir"]
        api += [str(base / "api"), "--api-tokens", str(tokens), "--api-max-body", str(256 << 20)]
        procs.append(start(api, CLIENT_CORE, base / "api.log"))
        node = start(
            ["dns", "--redis", url, "--dns", f"127.0.0.1:{dns_port}", "--workers", "1"],
            SERVER_CORE,
            base / "dns.log",
        )
        procs.append(node)
        until_api(api_port, 60)
        body = json.dumps(
            {
                "soa": {"mname": "ns1", "rname": "hostmaster.records.example."},
                "records": master_file(records),
            }
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/api/v1/zones/records.example",
            data=body,
            method="PUT",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()
        put = time.monotonic() - started
        last = f"h{records - 3}.records.example"
        until_all([dns_port], last, lambda a: len(a) == 1, 600)
        return {"put": put, "to_answers": time.monotonic() - started, "rss": rss_mb(node.pid)}
    finally:
        for proc in procs:
            stop(proc)
        stop(redis_proc)


def write_doc(
    pools: dict[int, dict[str, float]],
    records: dict[int, dict[str, float]],
    api_records: dict[int, dict[str, float]],
) -> None:
    rows = [
        f"| {n:,} | {f['rss']:.0f} MB | {f['cold']:.1f} s | {f['write'] * 1000:.1f} ms "
        f"| {f['to_answers'] * 1000:.1f} ms | {f['health'] * 1000:.1f} ms "
        f"| {f['qps']:,.0f} / {f['qps_small']:,.0f} ({f['qps'] / f['qps_small']:.2f}x) "
        f"| {f['qps_many']:,.0f} | {f['scrape'] * 1000:.0f} ms, {f['scrape_kb']:.0f} KB "
        f"| {f['load']:.1f} s |"
        for n, f in pools.items()
    ]
    record_rows = [f"| {n:,} | {f['load']:.1f} s | {f['rss']:.0f} MB |" for n, f in records.items()]
    api_rows = [
        f"| {n:,} | {f['put']:.1f} s | {f['to_answers']:.1f} s | {f['rss']:.0f} MB |"
        for n, f in api_records.items()
    ]
    largest = max(pools) if pools else 0
    aims = ""
    if largest:
        f = pools[largest]
        checks = [
            ("health change to answers on every node", f["health"] * 1000, 50, "ms"),
            ("one-member API write to answers on every node", f["to_answers"] * 1000, 100, "ms"),
            ("one-member API write latency", f["write"] * 1000, 50, "ms"),
            ("RSS per DNS process", f["rss"], 2048, "MB"),
        ]
        lines = [
            f"| {what} | {value:.1f} {unit} | <= {aim} {unit} | {'met' if value <= aim else 'missed'} |"
            for what, value, aim, unit in checks
        ]
        ratio = f["qps"] / f["qps_small"]
        lines.append(
            f"| answers per second, against a 10-pool zone | {ratio:.2f}x | >= 0.90x "
            f"| {'met' if ratio >= 0.9 else 'missed'} |"
        )
        aims = (
            f"\nAims at {largest:,} pools, from this run:\n\n| measure | measured | aim | |\n"
            "|---|---:|---:|---|\n" + "\n".join(lines) + "\n"
        )
    section = f"""<!-- bench-scale:start -->
## Scale (`make bench`, {time.strftime("%Y-%m-%d")})

One zone of N pools, four members each (two sites, two ISPs, a monitor, policy [health,
proximity, isp_interleave, limit]), stored per resource in Debian's redis-server with a
decided health for every member; one `gslb api` and two `gslb dns` processes (one worker
each) on it. The DNS processes share core 0; Redis, the API, dnsperf and the bench core 1.
Medians of {REPEAT} changes, each at a random pool. "To answers" is from the start of the
write until both DNS nodes answer without the member (polled on both, alternately).

| pools | RSS per DNS process | cold start (both nodes) | API write latency | API write to answers, every node | health change to answers, every node | answers/s, ten names: N pools / 10 pools | answers/s, 10 000 names | a /metrics scrape | storing the zone |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}
{aims}
A write names the resource it changes (a member is a change of its pool); the API checks that
pool and what it refers to, stores it with its log entry in one transaction, and each DNS
node's configuration lane reads just that pool (with the zone's meta and head) and swaps in a
zone that shares every other pool with the last one. A health change is one entry of the
health lane, applied without reading anything. "Storing the zone" is the first write of the
whole document (checked whole, as a zone file or a `PUT` of the zone is); the cold start is a
node reading everything (a few thousand fields per round trip) and compiling it. The first
node serves `/metrics` (a scrape costs what it reports: per pool up to 1 000 pools, per zone
beyond, kept as changes arrive).

### Static records

A zone file of N records (`records_file`, one A record per line) read by `gslb check-zones`
(the whole command: interpreter start, reading, checking, building the zone; peak resident
memory from /proc):

| records | load time | peak RSS |
|---:|---:|---:|
{chr(10).join(record_rows)}

The same zone as a `PUT` of the whole document through the API (the records inline, with
`--api-max-body` raised for it), and one DNS node following the same Redis:

| records | PUT answered | until the node answers the last name | RSS of the DNS node |
|---:|---:|---:|---:|
{chr(10).join(api_rows)}
<!-- bench-scale:end -->"""
    text = PERF.read_text() if PERF.exists() else "# Performance\n"
    if "<!-- bench-scale:start -->" in text:
        text = re.sub(
            r"<!-- bench-scale:start -->.*<!-- bench-scale:end -->", section, text, flags=re.S
        )
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    PERF.write_text(text)
    print(f"wrote {PERF}")


def main() -> int:
    for tool in ("dnsperf", "taskset", "redis-server"):
        if shutil.which(tool) is None:
            print(f"the scale bench needs {tool} (bench/deps.sh installs it)", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="gslb-scale-"))
    try:
        records, api_records = {}, {}
        for n in RECORDS:  # first, while this process is small (it starts the command)
            print(f"scale: {n} static records", flush=True)
            records[n] = record_figures(work, n)
            print(f"  {records[n]}", flush=True)
        for n in API_RECORDS:
            print(f"scale: {n} static records through the API", flush=True)
            api_records[n] = api_record_figures(work, n)
            print(f"  {api_records[n]}", flush=True)
        pools = {}
        for n in POOLS:
            print(f"scale: {n} pools", flush=True)
            pools[n] = pool_figures(work, n)
            print(f"  {pools[n]}", flush=True)
        write_doc(pools, records, api_records)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
