"""`/metrics` parses with prometheus-client's parser and its counters move under traffic
(issue 9, "Done when")."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import dns.message
import dns.query
from prometheus_client.parser import text_string_to_metric_families

from gslb.shell import metrics
from gslb.shell.poolstats import PoolStats, ZoneStats
from tests.helpers import query, write_zones
from tests.server import ServerProcess
from tests.test_checkers import stop_process
from tests.test_redis_state import until

PORT = 18097
ZONE = f"""\
zone: metrics.example
soa: {{mname: ns1, rname: hostmaster.metrics.example.}}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
monitors:
  web: {{type: http, port: {PORT}, path: /healthz, interval: 1, timeout: 0.5, rise: 1, fall: 1}}
pools:
  www:
    monitor: web
    members:
      - {{address: 127.10.8.10}}
      - {{address: 127.10.8.20}}
      - {{address: 127.10.8.30, state: drained}}
"""


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http[0][1]}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_parse_and_move_under_traffic(tmp_path: Path) -> None:
    backend = subprocess.Popen(
        [sys.executable, "-m", "tests.backend", "127.10.8.10", str(PORT)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert backend.stdout is not None and backend.stdout.readline().strip() == "ready"
    server = ServerProcess(write_zones(tmp_path / "zones", {"z.yaml": ZONE}), tmp_path / "data")
    try:
        until(
            lambda: (
                value(
                    scrape(server),
                    "gslb_pool_members",
                    zone="metrics.example",
                    pool="www",
                    state="down",
                )
                == 1
            ),
        )
        before = scrape(server)
        for _ in range(40):
            dns.query.udp(query("www.metrics.example"), server.host, port=server.port, timeout=2)
        for _ in range(5):
            dns.query.udp(
                query("nothing.metrics.example"), server.host, port=server.port, timeout=2
            )
            dns.query.udp(query("www.example.org"), server.host, port=server.port, timeout=2)
        for _ in range(3):
            dns.query.tcp(
                query("www.metrics.example", "AAAA"), server.host, port=server.port, timeout=2
            )
        until(
            lambda: (
                value(
                    scrape(server),
                    "gslb_member_answers_total",
                    member="metrics.example/www/127.10.8.10",
                )
                >= 40
            ),
        )
        after = scrape(server)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert moved("gslb_dns_answers_total", transport="udp", qtype="A", rcode="NOERROR") == 40
        assert moved("gslb_dns_answers_total", transport="udp", qtype="A", rcode="NXDOMAIN") == 5
        assert moved("gslb_dns_answers_total", transport="udp", qtype="A", rcode="REFUSED") == 5
        assert moved("gslb_dns_answers_total", transport="tcp", qtype="AAAA", rcode="NOERROR") == 3
        assert moved("gslb_dns_answer_seconds_count", transport="tcp") == 3
        assert moved("gslb_dns_answer_seconds_count", transport="udp") >= 1  # one in eight timed
        assert moved("gslb_member_answers_total", member="metrics.example/www/127.10.8.10") == 40
        assert (
            value(after, "gslb_member_answers_total", member="metrics.example/www/127.10.8.30") == 0
        )
        members = {
            state: value(
                after, "gslb_pool_members", zone="metrics.example", pool="www", state=state
            )
            for state in ("up", "down", "drained")
        }
        assert members == {"up": 1, "down": 1, "drained": 1}
        assert value(after, "gslb_pool_on_fallback", zone="metrics.example", pool="www") == 0
        zone = {"zone": "metrics.example"}
        assert value(after, "gslb_zone_members", **zone, state="up") == 1
        assert value(after, "gslb_zone_members", **zone, state="drained") == 1
        assert value(after, "gslb_zone_pools", **zone) == 1
        assert value(after, "gslb_zone_pools_on_fallback", **zone) == 0
        assert moved("gslb_zone_answers_total", **zone) == 40
        checker = server.events("checker started")[0]["id"]
        assert (
            moved("gslb_checker_probes_total", checker=str(checker), path="default", result="ok")
            > 0
        )
        assert (
            moved(
                "gslb_checker_probes_total", checker=str(checker), path="default", result="failed"
            )
            > 0
        )
        # The node's own checker, as its heartbeat in Redis says (re-read every few seconds).
        until(lambda: value(scrape(server), "gslb_checkers", state="alive") == 1)
        assert value(scrape(server), "gslb_checkers", state="dead") == 0
        assert (
            value(scrape(server), "gslb_checker_heartbeat_timestamp_seconds", checker=str(checker))
            > time.time() - 10
        )
        # The member that answers is watched (docs/health.md, "Connection watch").
        assert value(after, "gslb_checker_watched_connections", checker=str(checker)) >= 1
        assert value(after, "gslb_redis_up") == 1
        assert value(after, "gslb_snapshot_version") >= 1
    finally:
        server.stop()
        stop_process(backend)


def test_a_node_of_many_pools_reports_them_by_zone_and_names_those_on_fallback() -> None:
    """At a million pools, a series per pool (and per member) is millions of series and
    seconds of rendering at every scrape: beyond SERIES_LIMIT pools the node reports per
    zone, and names only the pools on fallback, the ones to alert on."""
    stats = PoolStats()
    many = metrics.SERIES_LIMIT + 5
    zone = stats.zones.setdefault("big.example", ZoneStats())
    for i in range(many):
        down = i % 1000 == 0
        counts = (0, 2, 0, 0, 0) if down else (2, 0, 0, 0, 0)
        zone.pools[f"p{i}"] = counts
        zone.members = [a + b for a, b in zip(zone.members, counts, strict=True)]
        if down:
            zone.on_fallback.add(f"p{i}")
    node = SimpleNamespace(sync=SimpleNamespace(pool_stats=stats))
    families = {f.name: f for f in metrics._pools(node)}  # type: ignore[arg-type]
    assert not families["gslb_pool_members"].samples, "no series per pool"
    named = {s.labels["pool"] for s in families["gslb_pool_on_fallback"].samples}
    assert named == {f"p{i}" for i in range(0, many, 1000)}
    by_zone = {
        (s.labels["state"], s.value)
        for s in families["gslb_zone_members"].samples
        if s.labels["state"] in ("up", "down")
    }
    fallen = len(named)
    assert by_zone == {("up", 2 * (many - fallen)), ("down", 2 * fallen)}
    assert families["gslb_zone_pools"].samples[0].value == many
    assert families["gslb_zone_pools_on_fallback"].samples[0].value == fallen
