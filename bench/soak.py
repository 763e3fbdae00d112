"""make soak: ten minutes of mixed DNS load at half the measured maximum, while members flap
and the configuration changes every few seconds.

One `gslb serve` (pinned to core 0) with the example zone and `gslb demo-backends` for its
members; dnsperf on core 1. First a short full-load run finds the maximum; then dnsperf sends
half of it for SOAK_SECONDS (600) with a mix of a load-balanced name (A and AAAA), a static
name, the apex SOA and a name that does not exist. Meanwhile a member's health check fails
for three seconds every three seconds (`/demo/fail`), and every four seconds the pool is
changed through the API (its TTL, a member drained and enabled again). Checked: no reply
codes but NOERROR and NXDOMAIN, no query lost, and the server's memory after a one-minute
warm-up grows by less than 10 %. Writes docs/reliability.md between the soak markers.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchlib import free_port, rss_mb, stop

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
GSLB = [sys.executable, "-m", "gslb"]
SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
WARM_UP = min(60, SECONDS // 5)
MEMBERS = ["127.10.1.10", "127.10.2.10", "127.10.1.20", "127.10.2.20"]
# Members that close idle connections on their own schedule (tests.backend's IDLE): faster
# than the probe interval, a little slower, a web server's header timeout, and never. Their
# services never die, so any "down" of theirs in the soak is a false one.
WATCHED = {"127.10.9.1": 0.3, "127.10.9.2": 1.5, "127.10.9.3": 5.0, "127.10.9.4": 3600.0}
WATCH_PORT = 18471
WATCH_ZONE = """\
zone: watch.example.com
soa: {{mname: ns1, rname: hostmaster.example.com.}}
records: "@ NS ns1"
monitors:
  tcp: {{type: tcp, port: {port}, interval: 1, timeout: 0.5, rise: 2, fall: 2}}
  http: {{type: http, port: {port}, path: /, interval: 1, timeout: 0.5, rise: 2, fall: 2}}
pools:
  tcp:
    monitor: tcp
    members: [{members}]
  http:
    monitor: http
    members: [{members}]
"""
MIX = [
    "www.gslb.example.com A",
    "www.gslb.example.com AAAA",
    "ns1.gslb.example.com A",
    "gslb.example.com SOA",
    "nothing.gslb.example.com A",
]


def post(url: str, token: str | None = None, body: object = None, method: str = "POST") -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def dnsperf(port: int, queries: Path, seconds: float, rate: float | None = None) -> str:
    argv = [
        "taskset",
        "-c",
        "1",
        "dnsperf",
        "-s",
        "127.0.0.1",
        "-p",
        str(port),
        "-d",
        str(queries),
        "-l",
        str(seconds),
        "-c",
        "4",
        "-q",
        "200",
    ]
    if rate:
        argv += ["-Q", str(int(rate))]
    return subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60).stdout


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="gslb-soak-"))
    zones = work / "zones"
    shutil.copytree(ROOT / "zones", zones)
    listed = ", ".join(f"{{address: {a}}}" for a in WATCHED)
    (zones / "watch.yaml").write_text(WATCH_ZONE.format(port=WATCH_PORT, members=listed))
    watched = []
    for address, idle in WATCHED.items():
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.backend", address, str(WATCH_PORT), "200", str(idle)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        watched.append(proc)
    queries = work / "mix.txt"
    queries.write_text("\n".join(MIX) + "\n")
    dns_port, http_port = free_port(), free_port()
    backends = subprocess.Popen(
        [*GSLB, "demo-backends", "--zones", str(ROOT / "zones")],  # not the watched members
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            *GSLB,
            "serve",
            "--zones",
            str(zones),
            "--dns",
            f"127.0.0.1:{dns_port}",
            "--http",
            f"127.0.0.1:{http_port}",
            "--data-dir",
            str(work / "data"),
            "--workers",
            "1",
            "--log-format",
            "json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(work / "serve.log").open("wb"),
    )
    api = f"http://127.0.0.1:{http_port}/api/v1"
    ending = threading.Event()
    changes = {"flaps": 0, "config": 0, "config_failed": 0}
    try:
        deadline = time.monotonic() + 30
        while not (work / "data" / "api-token").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        token = (work / "data" / "api-token").read_text().strip()
        time.sleep(6)  # members checked up
        maximum = float(
            re.search(r"Queries per second:\s+([\d.]+)", dnsperf(dns_port, queries, 5)).group(1)
        )  # type: ignore[union-attr]
        rate = maximum / 2
        print(f"maximum {maximum:,.0f} qps; soaking at {rate:,.0f} qps for {SECONDS} s", flush=True)

        def flap() -> None:
            rng = random.Random(1)
            while not ending.is_set():
                member = rng.choice(MEMBERS)
                post(f"http://{member}:8080/demo/fail")
                changes["flaps"] += 1
                ending.wait(3)
                post(f"http://{member}:8080/demo/recover")
                ending.wait(3)

        def configure() -> None:
            pool = f"{api}/zones/gslb.example.com/pools/www"
            n = 0
            while not ending.is_set():
                n += 1
                codes = [post(pool, token, {"ttl": 20 + n % 2}, "PATCH")]
                member = f"{pool}/members/{MEMBERS[n % 4]}"
                codes.append(post(member + "/drain", token))
                ending.wait(2)
                codes.append(post(member + "/enable", token))
                changes["config"] += len(codes)
                changes["config_failed"] += sum(c != 200 for c in codes)
                ending.wait(2)

        memory: list[tuple[float, float]] = []

        def watch() -> None:
            started = time.monotonic()
            while not ending.is_set():
                memory.append((time.monotonic() - started, rss_mb(server.pid)))
                ending.wait(5)

        threads = [threading.Thread(target=f, daemon=True) for f in (flap, configure, watch)]
        for t in threads:
            t.start()
        out = dnsperf(dns_port, queries, SECONDS, rate)
        ending.set()
        for t in threads:
            t.join(10)
        false_downs, watch_ends = watch_figures(work / "data", http_port)
    finally:
        ending.set()
        for proc in (server, backends, *watched):
            stop(proc)
    codes = dict(re.findall(r"(\w+) (\d+) \(", re.search(r"Response codes:\s+(.*)", out).group(1)))  # type: ignore[union-attr]
    sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    achieved = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = float(re.search(r"Average Latency \(s\):\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    after = [m for t, m in memory if t >= WARM_UP]
    base = after[0] if after else float("nan")
    growth = (max(after) - base) / base if after else float("nan")
    unexpected = {k: v for k, v in codes.items() if k not in ("NOERROR", "NXDOMAIN")}
    ok = (
        not unexpected
        and lost == 0
        and growth < 0.10
        and changes["config_failed"] == 0
        and false_downs == 0
        and watch_ends > 0
    )
    changes["false_downs"], changes["watch_ends"] = false_downs, watch_ends
    write_doc(
        maximum,
        rate,
        SECONDS,
        sent,
        achieved,
        lost,
        latency,
        codes,
        changes,
        memory,
        base,
        growth,
        ok,
    )
    print(
        json.dumps({"codes": codes, "lost": lost, "growth": growth, "changes": changes}), flush=True
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def watch_figures(data: Path, http_port: int) -> tuple[int, int]:
    """Decided "down"s of the WATCHED members over the run (from the health history), and
    the watched connections that ended (the checker's counter on /metrics)."""
    import redis

    client = redis.Redis(unix_socket_path=str(data / "redis.sock"), decode_responses=True)
    downs = 0
    for raw in client.lrange("gslb:history", 0, -1):
        entry = json.loads(raw)
        if entry["member"].startswith("watch.example.com/") and entry["health"] == "down":
            downs += 1
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    ends = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("gslb_checker_watch_ends_total")
    )
    return downs, int(ends)


def write_doc(
    maximum: float,
    rate: float,
    seconds: int,
    sent: int,
    achieved: float,
    lost: int,
    latency: float,
    codes: dict[str, str],
    changes: dict[str, int],
    memory: list[tuple[float, float]],
    base: float,
    growth: float,
    ok: bool,
) -> None:
    samples = ", ".join(f"{m:.0f}" for t, m in memory[:: max(1, len(memory) // 12)])
    section = f"""<!-- soak:start -->
## Soak (`make soak`, {time.strftime("%Y-%m-%d")}): {"passed" if ok else "FAILED"}

{seconds} s of dnsperf at half the measured maximum ({maximum:,.0f} qps measured, {rate:,.0f} qps
offered; gslb pinned to core 0, dnsperf to core 1) with a mix of a load-balanced name (A and
AAAA), a static name, the SOA and a name that does not exist; meanwhile a member's health
check failed for 3 s every 6 s ({changes["flaps"]} flaps) and the pool was changed through the
API {changes["config"]} times (TTL, a member drained and enabled; {changes["config_failed"]}
refused). Four more members, never failing, close idle connections after 0.3 s, 1.5 s, 5 s
and never, under a tcp and an http monitor (interval 1, fall 2) whose connection watch is on:
each close is confirmed by probes, and none may turn into a "down".

| measure | figure | bound |
|---|---|---|
| queries sent | {sent:,} ({achieved:,.0f} qps answered) | |
| reply codes | {", ".join(f"{k} {int(v):,}" for k, v in codes.items())} | NOERROR and NXDOMAIN only |
| queries lost | {lost} | 0 |
| average latency | {latency * 1000:.2f} ms | |
| resident memory after the {WARM_UP} s warm-up | {base:.0f} MB, at most +{growth:.1%} | < +10 % |
| watched connections that ended (members closing idle ones) | {changes["watch_ends"]:,} | > 0 |
| false downs of those members (tcp and http monitors) | {changes["false_downs"]} | 0 |

Memory over the run (MB, sampled): {samples}.
<!-- soak:end -->"""
    text = DOC.read_text() if DOC.exists() else "# Reliability\n"
    if "<!-- soak:start -->" in text:
        text = re.sub(r"<!-- soak:start -->.*<!-- soak:end -->", section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    sys.exit(main())
