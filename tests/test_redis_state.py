"""Shared state in a real Redis-protocol server: changes reach the answers within a second,
and answering survives Redis going away (issue 3, "Done when")."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from gslb.common.redis import connect
from gslb.core.state import MemberState
from gslb.state.store import Store
from gslb.state.zones import Who, write_pool
from tests.helpers import query, write_zones
from tests.server import ServerProcess

ZONE = """\
zone: gslb.example.com
soa: {mname: ns1, rname: hostmaster.example.com.}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
isps:
  isp-a: [192.0.2.0/24]
  isp-b: [198.51.100.0/24]
pools:
  www:
    policy: [health, isp_interleave, limit]
    members:
      - {address: 192.0.2.10}
      - {address: 198.51.100.10}
"""
MEMBER = "gslb.example.com/www/192.0.2.10"


def answers(server: ServerProcess) -> set[str]:
    reply = dns.query.udp(query("www.gslb.example.com"), server.host, port=server.port, timeout=2)
    return {rr.to_text() for rrset in reply.answer for rr in rrset}


def run(coro_factory: object, url: str) -> object:
    async def go() -> object:
        client = connect(url)
        try:
            return await coro_factory(Store(client))  # type: ignore[operator]
        finally:
            await client.aclose()

    return asyncio.run(go())


async def add_member(store: Store, zone: str, pool: str, address: str) -> None:
    """Add a member to a pool as the API does (checked, one pool written, logged)."""

    def change(old: object) -> object:
        assert isinstance(old, dict)
        return {**old, "members": [*old["members"], {"address": address}]}

    who = Who("api:test", "add", f"zones/{zone}/pools/{pool}")
    _, changed = await store.change(
        zone, lambda view: write_pool(view, zone, pool, change, lambda p: p, who)
    )
    assert changed


# How long a test waits for what it waits for before it gives up. The wait ends when the
# event happens (a change in the answers, a line in the log); the deadline only bounds a
# failure, generously, so that a busy 2-core machine does not fail a good change. How fast
# things happen is measured by `make bench` (docs/performance.md), not asserted here.
WAIT = 30.0


def until(predicate: object, timeout: float = WAIT) -> float:
    """Seconds until `predicate()` holds; fails after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout} s")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    base = tmp_path_factory.mktemp("embedded")
    server = ServerProcess(write_zones(base / "zones", {"z.yaml": ZONE}), base / "data")
    url = f"unix://{(base / 'data' / 'redis.sock').resolve()}"
    until(lambda: server.events("redis synced"))
    yield server, url
    assert server.stop() == 0


def test_zone_files_are_stored_in_redis(embedded: tuple[ServerProcess, str]) -> None:
    _, url = embedded
    client = redis.Redis.from_url(url)
    meta = json.loads(client.get("gslb:zone:gslb.example.com:meta"))
    assert meta["source"].startswith("file:") and meta["source"].endswith("z.yaml")
    assert client.hexists("gslb:zone:gslb.example.com:pools", "www")
    assert b"ns1   A     192.0.2.53" in client.get("gslb:zone:gslb.example.com:records")
    assert client.get("gslb:layout") == b"2"


def test_a_health_change_reaches_the_answers(
    embedded: tuple[ServerProcess, str],
) -> None:
    server, url = embedded
    assert "192.0.2.10" in answers(server)
    run(lambda store: store.set_health({MEMBER: MemberState("down")}), url)
    until(lambda: "192.0.2.10" not in answers(server))
    run(lambda store: store.set_health({MEMBER: MemberState("up")}), url)
    until(lambda: "192.0.2.10" in answers(server))


def test_a_config_change_reaches_the_answers(
    embedded: tuple[ServerProcess, str],
) -> None:
    server, url = embedded
    run(lambda store: add_member(store, "gslb.example.com", "www", "198.51.100.77"), url)
    until(lambda: "198.51.100.77" in answers(server))


def test_answers_handed_out_are_counted_in_redis(embedded: tuple[ServerProcess, str]) -> None:
    server, url = embedded
    for _ in range(20):
        answers(server)
    client = redis.Redis.from_url(url)

    def counted() -> int:
        # Each answer counts once, for the member it leads with.
        total = 0
        for key in client.scan_iter("gslb:answers:*"):
            for member, count in client.hgetall(key).items():
                if member.decode().startswith("gslb.example.com/www/"):
                    total += int(count)
        return total

    until(lambda: counted() >= 20)


# --- against Debian's redis-server, which the test stops and starts ---------------------------


def redis_ready(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, directory: Path, port: int, *extra: str) -> None:
        self.directory = directory
        self.port = port
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                # Every acknowledged write on disk before the reply: the tests kill this server
                # and expect what it acknowledged back (with everysec, a busy disk postpones
                # the write by up to two seconds, and a kill loses it).
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        until(self.alive)

    def alive(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.AuthenticationError:
            return True  # up, and wanting a password
        except redis.RedisError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


def test_debian_redis_server_outage_and_return(tmp_path: Path) -> None:
    port = free_port()
    backing = RedisServer(tmp_path, port)
    backing.start()
    url = f"redis://127.0.0.1:{port}/0"
    server = ServerProcess(
        write_zones(tmp_path / "zones", {"z.yaml": ZONE}), tmp_path / "data", "--redis", url
    )
    try:
        until(lambda: server.events("redis synced"))
        before = answers(server)
        assert before == {"192.0.2.10", "198.51.100.10"}

        backing.kill()
        until(lambda: server.events("redis unreachable, answering from the last snapshot"))
        for _ in range(50):
            assert answers(server) == before, "answering goes on from the last snapshot"
        with urllib.request.urlopen(
            f"http://127.0.0.1:{server.http[0][1]}/healthz", timeout=5
        ) as r:
            health = json.loads(r.read())
        assert health["redis"] == "down" and health["stale_seconds"] is not None
        with urllib.request.urlopen(
            f"http://127.0.0.1:{server.http[0][1]}/metrics", timeout=5
        ) as r:
            scraped = {
                s.name: s.value
                for family in text_string_to_metric_families(r.read().decode())
                for s in family.samples
            }
        assert scraped["gslb_redis_up"] == 0
        assert scraped["gslb_snapshot_stale_seconds"] > 0
        assert scraped["gslb_dns_queries_total"] >= 51

        backing.start()  # the same directory: its append-only file brings the data back
        until(lambda: server.events("redis reachable again, resynced"))
        run(lambda store: store.set_health({MEMBER: MemberState("down")}), url)
        until(lambda: answers(server) == {"198.51.100.10"})
    finally:
        server.stop()
        backing.kill()
