"""`/metrics` parses with prometheus-client's parser and its counters move under traffic
(issue 9, "Done when")."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import dns.message
import dns.query
from prometheus_client.parser import text_string_to_metric_families

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
            10,
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
            5,
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
        assert value(after, "gslb_redis_up") == 1
        assert value(after, "gslb_snapshot_version") >= 1
    finally:
        server.stop()
        stop_process(backend)
