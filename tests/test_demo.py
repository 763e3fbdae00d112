"""`gslb demo-backends` (what `make run` starts): loopback stand-ins that can be made to fail."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers import write_zones
from tests.test_checkers import stop_process
from tests.test_redis_state import until

ZONE = """\
zone: demo.example
soa: {mname: ns1, rname: hostmaster.demo.example.}
records: |
  @ NS ns1
  ns1 A 192.0.2.53
monitors:
  web: {type: http, port: 18095, path: /healthz}
pools:
  www:
    monitor: web
    members:
      - {address: 127.10.9.10}
      - {address: 192.0.2.10}
"""


DEMO = [sys.executable, "-m", "gslb", "demo-backends"]


def status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def test_a_demo_backend_answers_its_check_and_fails_on_request(tmp_path: Path) -> None:
    zones = write_zones(tmp_path / "zones", {"z.yaml": ZONE})
    proc = subprocess.Popen(
        [*DEMO, "--zones", str(zones)],
        stderr=subprocess.DEVNULL,
    )
    base = "http://127.10.9.10:18095"
    try:
        until(lambda: status(base + "/healthz") == 200)
        assert status(base + "/demo/fail", "POST") == 200
        assert status(base + "/healthz") == 503
        assert status(base + "/demo/recover", "POST") == 200
        assert status(base + "/healthz") == 200
    finally:
        stop_process(proc)


def test_demo_backends_stop_with_the_process_they_stand_in_for(tmp_path: Path) -> None:
    """`make run` gives the server's pid: when the server exits, its backends go too."""
    zones = write_zones(tmp_path / "zones", {"z.yaml": ZONE})
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    proc = subprocess.Popen(
        [*DEMO, "--zones", str(zones), "--while-pid", str(server.pid)], stderr=subprocess.DEVNULL
    )
    try:
        until(lambda: status("http://127.10.9.10:18095/healthz") == 200)
        assert server.stdin is not None
        server.stdin.close()  # the "server" exits
        server.wait(10)
        assert proc.wait(10) == 0
        assert status("http://127.10.9.10:18095/healthz") == 0, "nothing left listening"
    finally:
        stop_process(proc)
        stop_process(server)
