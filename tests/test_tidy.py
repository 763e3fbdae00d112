"""Health of members no longer in the configuration leaves Redis with them (issue 18 §4):
the write that removes a member (or its pool, or its zone) takes its decided health and the
checkers' results, and a checker that was probing it takes what it still had in flight."""

from __future__ import annotations

import json
from pathlib import Path

import redis

from tests.api_client import Http
from tests.helpers import start_backend, write_zones
from tests.server import ServerProcess
from tests.test_checkers import stop_process
from tests.test_redis_state import until

PORT = 18441
ADDRESSES = ["127.10.11.1", "127.10.11.2", "127.10.11.3"]
ZONE = f"""\
zone: gslb.example.com
soa: {{mname: ns1, rname: hostmaster.example.com.}}
records: "@ NS ns1"
monitors:
  tcp: {{type: tcp, port: {PORT}, interval: 0.5, timeout: 0.5, rise: 1, fall: 2}}
pools:
  www:
    monitor: tcp
    members: [{", ".join(f"{{address: {a}}}" for a in ADDRESSES[:2])}]
  api:
    monitor: tcp
    members: [{{address: {ADDRESSES[2]}}}]
"""


def test_removed_members_leave_no_health_behind(tmp_path: Path) -> None:
    procs = [start_backend(a, PORT) for a in ADDRESSES]
    server = ServerProcess(write_zones(tmp_path / "zones", {"z.yaml": ZONE}), tmp_path / "data")
    try:
        url = f"unix://{(tmp_path / 'data' / 'redis.sock').resolve()}"
        client = redis.Redis.from_url(url, decode_responses=True)
        token = (tmp_path / "data" / "api-token").read_text().strip()
        api = Http(*server.http[0], token)
        keys = [f"gslb.example.com/www/{a}" for a in ADDRESSES[:2]]
        keys.append(f"gslb.example.com/api/{ADDRESSES[2]}")

        def up() -> set[str]:
            return {k for k, v in client.hgetall("gslb:health").items() if '"health":"up"' in v}

        def results() -> set[str]:
            return {k.removeprefix("gslb:results:") for k in client.scan_iter("gslb:results:*")}

        def probed_since(key: str, at: float) -> bool:
            fields = client.hgetall(f"gslb:results:{key}")
            return any(json.loads(v)["at"] > at for v in fields.values())

        def assigned() -> int:
            """(member, path) pairs the node's checker probes, as its heartbeat says."""
            (raw,) = client.hgetall("gslb:checkers").values()
            return int(json.loads(raw)["assigned"])

        until(lambda: up() == set(keys) and results() == set(keys))

        # One member of www removed.
        reply = api("DELETE", f"/api/v1/zones/gslb.example.com/pools/www/members/{ADDRESSES[1]}")
        assert reply.status == 204, reply.body
        # The write took them. The checker, until it follows the change (its next
        # heartbeat), may write once more; it takes that back when it drops the member.
        until(lambda: assigned() == 2)
        until(lambda: set(client.hgetall("gslb:health")) == {keys[0], keys[2]})
        until(lambda: results() == {keys[0], keys[2]})
        # Two more probes of the member that stays: nothing came back for the removed one.
        now = max(json.loads(v)["at"] for v in client.hgetall(f"gslb:results:{keys[0]}").values())
        until(lambda: probed_since(keys[0], now + 0.6))
        assert set(client.hgetall("gslb:health")) == {keys[0], keys[2]}
        assert results() == {keys[0], keys[2]}

        # A pool removed whole.
        assert api("DELETE", "/api/v1/zones/gslb.example.com/pools/api").status == 204
        until(lambda: assigned() == 1)
        until(lambda: set(client.hgetall("gslb:health")) == {keys[0]} and results() == {keys[0]})

        # The zone removed: nothing of it is left.
        assert api("DELETE", "/api/v1/zones/gslb.example.com").status == 204
        until(lambda: assigned() == 0)
        until(lambda: client.hgetall("gslb:health") == {} and results() == set())
    finally:
        server.stop()
        for proc in procs:
            stop_process(proc)
