"""SIGHUP under load drops no query; it reloads zones and GeoIP databases (issue 9)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

from tests.geoip_fixtures import write_city
from tests.helpers import query, write_zones
from tests.server import ServerProcess

ZONE = """\
zone: reload.example
soa: {{mname: ns1, rname: hostmaster.reload.example.}}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
  txt   TXT   "generation {n}"
pools:
  www:
    members:
      - {{address: 192.0.2.10}}
      - {{address: 192.0.2.20}}
"""


def test_reloads_under_load_drop_no_query(tmp_path: Path) -> None:
    zones = write_zones(tmp_path / "zones", {"z.yaml": ZONE.format(n=0)})
    city = write_city(tmp_path / "city.mmdb")
    server = ServerProcess(zones, tmp_path / "data", "--no-checker", "--geoip", str(city))
    sent, failures, stop = [0], [], threading.Event()

    def load() -> None:  # a bounded loop: every query must be answered, NOERROR, in time
        while not stop.is_set():
            try:
                reply = dns.query.udp(
                    query("www.reload.example"), server.host, port=server.port, timeout=1
                )
                if reply.rcode() != dns.rcode.NOERROR or len(reply.answer) != 1:
                    failures.append(f"bad reply {reply.rcode()}")
            except dns.exception.Timeout:
                failures.append("timeout")
            sent[0] += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for n in range(1, 6):
            (zones / "z.yaml").write_text(ZONE.format(n=n))
            server.signal(signal.SIGHUP)
            server.wait_for_event("zones reloaded", count=n, timeout=10)
            server.wait_for_event("geoip reloaded", count=n, timeout=10)
            time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        txt = dns.query.udp(
            query("txt.reload.example", "TXT"), server.host, port=server.port, timeout=2
        )
        assert '"generation 5"' in txt.answer[0].to_text()
        assert sent[0] > 500, sent
        assert failures == [], failures[:5]
    finally:
        stop.set()
        server.stop()


def test_the_node_says_its_pid_for_a_reload_that_hits_only_it(tmp_path: Path) -> None:
    zones = write_zones(tmp_path / "zones", {"z.yaml": ZONE.format(n=0)})
    data = tmp_path / "data"
    server = ServerProcess(zones, data, "--no-checker")
    try:
        pid_file = data / "gslb.pid"
        assert pid_file.read_text().strip() == str(server.proc.pid)
        (zones / "z.yaml").write_text(ZONE.format(n=1))
        # The README's reload, as a shell runs it: only the node gets the signal.
        subprocess.run(["sh", "-c", f'kill -HUP "$(cat {pid_file})"'], check=True, timeout=10)
        server.wait_for_event("zones reloaded", timeout=10)
    finally:
        assert server.stop() == 0
    assert not pid_file.exists(), "gone with the node"
