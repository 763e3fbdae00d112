"""`gslb agent drain`: a member's agent says it is going away, every DNS process drops the
address from every pool at once, and it comes back through slow start (issue 18 §2)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import dns.query

from tests.helpers import query, write_zones
from tests.server import ServerProcess
from tests.test_checkers import stop_process
from tests.test_redis_state import until

LEAVER = "192.0.2.43"
ZONE = f"""\
zone: gslb.example.com
soa: {{mname: ns1, rname: hostmaster.example.com.}}
records: "@ NS ns1"
pools:
  slow:
    policy: [health, round_robin, limit]
    max_answers: 1
    slow_start: 60
    members:
      - {{address: 192.0.2.41}}
      - {{address: 192.0.2.42}}
      - {{address: {LEAVER}}}
  plain:
    policy: [health, round_robin, limit]
    max_answers: 1
    members:
      - {{address: 192.0.2.51}}
      - {{address: 192.0.2.52}}
      - {{address: {LEAVER}}}
"""


def leads(server: ServerProcess, pool: str, count: int = 60) -> Counter[str]:
    """Who leads `count` answers, each asked from a fresh source port (so both DNS worker
    processes answer some: SO_REUSEPORT spreads them by port)."""
    out: Counter[str] = Counter()
    for _ in range(count):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            reply = dns.query.udp(
                query(f"{pool}.gslb.example.com"),
                server.host,
                port=server.port,
                timeout=2,
                sock=sock,
            )
        out[reply.answer[0][0].to_text() if reply.answer else ""] += 1
    return out


def leaving(server: ServerProcess, data: Path) -> dict[str, dict[str, object]]:
    """What the API's health view says is leaving."""
    token = (data / "api-token").read_text().strip()
    host, port = server.http[0]
    request = urllib.request.Request(
        f"http://{host}:{port}/api/v1/health", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as r:
        return json.loads(r.read())["leaving"]  # type: ignore[no-any-return]


def agent(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "gslb", "agent", *args, "--redis", url, "--member", LEAVER]


def test_an_agent_drain_reaches_every_process_and_the_member_ramps_back(tmp_path: Path) -> None:
    zones = write_zones(tmp_path / "zones", {"z.yaml": ZONE})
    server = ServerProcess(zones, tmp_path / "data", "--workers", "2", "--no-checker")
    url = f"unix://{(tmp_path / 'data' / 'redis.sock').resolve()}"
    running: subprocess.Popen[bytes] | None = None
    try:
        server.wait_for_event("dns worker started")
        until(
            lambda: leads(server, "plain", 30)[LEAVER] > 0 and leads(server, "slow", 30)[LEAVER] > 0
        )

        subprocess.run(agent(url, "drain"), check=True, timeout=30, capture_output=True)
        assert leaving(server, tmp_path / "data")[LEAVER]["reason"] == "drain"
        # Gone from both pools, in every process, though every check still says it is up.
        until(lambda: leads(server, "plain")[LEAVER] == 0 and leads(server, "slow")[LEAVER] == 0)

        # Its agent starts again: back at once where there is no slow start, ramping where
        # there is (60 s from 5 %: far less than its third of the leads for now).
        running = subprocess.Popen(
            agent(url, "--interval", "0.5", "--drain-on-stop"), stderr=subprocess.DEVNULL
        )
        until(lambda: LEAVER not in leaving(server, tmp_path / "data"))
        until(lambda: leads(server, "plain")[LEAVER] > 0)
        plain, slow = leads(server, "plain", 150), leads(server, "slow", 150)
        assert plain[LEAVER] >= 30, plain  # its third, give or take
        assert 0 < slow[LEAVER] <= 25, slow  # trial answers only

        # Its SIGTERM says it leaves (systemd stopping the host's services, a shutdown).
        stop_process(running)
        assert running.returncode == 0
        assert leaving(server, tmp_path / "data")[LEAVER]["reason"] == "stop"
        until(lambda: leads(server, "plain")[LEAVER] == 0 and leads(server, "slow")[LEAVER] == 0)

        subprocess.run(agent(url, "undrain"), check=True, timeout=30, capture_output=True)
        until(lambda: leads(server, "plain")[LEAVER] > 0)
        assert leaving(server, tmp_path / "data") == {}
    finally:
        if running is not None:
            stop_process(running)
        assert server.stop() == 0


def test_a_node_started_after_the_drain_reads_it(tmp_path: Path) -> None:
    """The announcement is state, not only a message: a DNS process that reads Redis whole
    (a start, a resync) leaves the address out too."""
    zones = write_zones(tmp_path / "zones", {"z.yaml": ZONE})
    data = tmp_path / "data"
    url = f"unix://{(data / 'redis.sock').resolve()}"
    first = ServerProcess(zones, data, "--no-checker")
    try:
        first.wait_for_event("redis synced")
        subprocess.run(agent(url, "drain"), check=True, timeout=30, capture_output=True)
        until(lambda: leads(first, "plain", 20)[LEAVER] == 0)
    finally:
        assert first.stop() == 0
    again = ServerProcess(zones, data, "--no-checker")
    try:
        again.wait_for_event("redis synced")
        assert leads(again, "plain")[LEAVER] == 0
        assert len(leads(again, "plain")) == 2
    finally:
        assert again.stop() == 0
