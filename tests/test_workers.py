"""`--workers N`: DNS processes sharing the ports, each following Redis (issue 7)."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from tests.helpers import query, write_zones
from tests.server import ServerProcess
from tests.test_redis_state import until

ZONE = """\
zone: gslb.example.com
soa: {mname: ns1, rname: hostmaster.example.com.}
dnssec: {algorithm: ED25519}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
pools:
  www:
    members:
      - {address: 192.0.2.10}
      - {address: 192.0.2.20}
"""


def ask_from_many_ports(
    server: ServerProcess, count: int = 64, dnssec: bool = False
) -> list[set[str]]:
    """Each query from a fresh source port: SO_REUSEPORT spreads them over the workers."""
    out = []
    for _ in range(count):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            message = query("www.gslb.example.com")
            if dnssec:
                message.want_dnssec()
            reply = dns.query.udp(message, server.host, port=server.port, timeout=2, sock=sock)
        out.append({rr.to_text() for rrset in reply.answer if rrset.rdtype == 1 for rr in rrset})
    return out


def metric(host: str, port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_two_workers_share_the_port_and_both_follow_a_change(tmp_path: Path) -> None:
    zones = write_zones(tmp_path / "zones", {"z.yaml": ZONE})
    server = ServerProcess(zones, tmp_path / "data", "--workers", "2", "--no-checker")
    try:
        server.wait_for_event("dns worker started")
        token = (tmp_path / "data" / "api-token").read_text().strip()
        host, port = server.http[0]

        def nodes() -> dict[str, dict[str, object]]:
            request = urllib.request.Request(
                f"http://{host}:{port}/api/v1/nodes", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=5) as r:
                return json.loads(r.read())["nodes"]  # type: ignore[no-any-return]

        until(lambda: len(nodes()) == 1)  # one row for the node: it speaks for its worker

        def counted() -> dict[str, int]:
            (node,) = nodes().values()
            return {k: int(v) for k, v in node.get("queries_by_worker", {}).items()}  # type: ignore[attr-defined]

        # A worker reports once its sockets are bound: wait for both before asking.
        until(lambda: len(counted()) == 2)
        answers = ask_from_many_ports(server, dnssec=True)
        assert all(a == {"192.0.2.10", "192.0.2.20"} for a in answers)

        # Both processes answered some, and the node's row (and /metrics) counts them all.
        until(lambda: sum(counted().values()) == 64)
        assert len(counted()) == 2 and all(c > 0 for c in counted().values()), counted()
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert "gslb_dns_queries_total 64.0" in metrics
        # Each process signed the answer once with its own signer, and /metrics counts both.
        made = 'gslb_dnssec_signatures_made_total{zone="gslb.example.com"}'
        until(lambda: metric(host, port, made) == 2.0)

        request = urllib.request.Request(
            f"http://{host}:{port}/api/v1/zones/gslb.example.com/pools/www/members/192.0.2.10/drain",
            method="POST",
            headers={"Authorization": f"Bearer {token}"},
        )
        started = time.monotonic()
        urllib.request.urlopen(request, timeout=5).close()
        until(lambda: all(a == {"192.0.2.20"} for a in ask_from_many_ports(server, 16)))
        assert time.monotonic() - started < 2.0
        assert all(a == {"192.0.2.20"} for a in ask_from_many_ports(server))
    finally:
        assert server.stop() == 0
    time.sleep(0.5)
    # Stopping the node stops its workers: nothing answers on the port any more.
    try:
        dns.query.udp(query("www.gslb.example.com"), server.host, port=server.port, timeout=1)
        raise AssertionError("a worker outlived its node")
    except dns.exception.Timeout:
        pass
