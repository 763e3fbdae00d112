"""The attacks of the security review, tried for real over loopback (issue 14, "Done when"):
each from one address (127.0.0.2), while another (127.0.0.3) must still be served."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import time
import urllib.error
import urllib.request
from pathlib import Path

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode

from tests.api_client import Http
from tests.helpers import query, record, write_zones
from tests.server import ServerProcess
from tests.test_redis_state import until

ATTACKER, BYSTANDER = "127.0.0.2", "127.0.0.3"
BIG = " ".join(['"' + "x" * 250 + '"'] * 16)  # a 4 KB TXT: what a pipelining client asks for
ZONE = f"""\
zone: hostile.example
soa: {{mname: ns1, rname: hostmaster.hostile.example.}}
records: |
  @       NS    ns1
  ns1     A     192.0.2.53
  www     A     192.0.2.10
  big     TXT   {BIG}
  *.wild  TXT   "a wildcard's answer, the kind an amplifier would like to send, and again"
"""
TOKEN = "hostile-write-token-0123456789"


def tokens(directory: Path) -> Path:
    path = directory / "tokens.json"
    path.write_text(json.dumps([{"name": "ops", "role": "write", "token": TOKEN}]))
    return path


def tcp_ask(host: str, port: int, source: str, name: str = "www.hostile.example") -> bool:
    try:
        reply = dns.query.tcp(query(name), host, port=port, timeout=3, source=source)
    except (OSError, dns.exception.DNSException):
        return False
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)


def timed(check: object) -> tuple[bool, float]:
    started = time.monotonic()
    ok = check()  # type: ignore[operator]
    return bool(ok), time.monotonic() - started


def test_clients_that_never_read_cannot_hold_the_tcp_slots(tmp_path: Path) -> None:
    server = ServerProcess(
        write_zones(tmp_path / "zones", {"z.yaml": ZONE}),
        tmp_path / "data",
        "--no-checker",
        "--tcp-max-connections",
        "100",
        "--tcp-write-timeout",
        "3",
    )
    hogs: list[socket.socket] = []
    try:
        wire = query("big.hostile.example", "TXT").to_wire()
        framed = struct.pack("!H", len(wire)) + wire
        for _ in range(150):  # more than the server's 100 slots, all from one address
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.bind((ATTACKER, 0))
            try:
                sock.connect((server.host, server.port))
                sock.setblocking(False)
                try:
                    for _ in range(200):  # 800 KB of answers asked for, none read
                        sock.send(framed)
                except BlockingIOError:
                    pass
            except OSError:
                pass  # refused at once: over its per-client cap
            hogs.append(sock)
        ok, first = timed(lambda: tcp_ask(server.host, server.port, BYSTANDER))
        assert ok, "another client is served at once"
        slowest = first
        started = time.monotonic()
        while time.monotonic() - started < 20:  # and all along, for 20 s
            ok, took = timed(lambda: tcp_ask(server.host, server.port, BYSTANDER))
            assert ok
            slowest = max(slowest, took)
            time.sleep(1)
        record("hostile", "tcp hogs: bystander's first answer (s)", first)
        record("hostile", "tcp hogs: bystander's slowest answer over 20 s (s)", slowest)
        # The hogs were cut off: reading now finds each connection closed or reset.
        closed = 0
        for sock in hogs:
            sock.setblocking(True)
            sock.settimeout(0.2)
            try:
                while sock.recv(65536):
                    pass
                closed += 1
            except (ConnectionResetError, BrokenPipeError):
                closed += 1
            except OSError:
                pass
        assert closed == len(hogs), f"{len(hogs) - closed} connections still held"
    finally:
        for sock in hogs:
            sock.close()
        server.stop()


def test_stalled_http_requests_do_not_starve_the_listener(tmp_path: Path) -> None:
    server = ServerProcess(
        write_zones(tmp_path / "zones", {"z.yaml": ZONE}),
        tmp_path / "data",
        "--no-checker",
        "--http-header-timeout",
        "2",
    )
    stalled: list[socket.socket] = []
    try:
        host, port = server.http[0]
        for _ in range(300):  # half-requests, never finished
            sock = socket.socket()
            sock.bind((ATTACKER, 0))
            try:
                sock.connect((host, port))
                sock.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            except OSError:
                pass
            stalled.append(sock)
        started = time.monotonic()
        with urllib.request.urlopen(
            urllib.request.Request(f"http://{host}:{port}/healthz"), timeout=5
        ) as reply:
            assert reply.status == 200
        record("hostile", "300 stalled http: /healthz answered in (s)", time.monotonic() - started)
        # Every stalled one is closed: refused at once past the per-client cap, the others
        # when their headers did not come within the header timeout.
        deadline = started + 2 + 3  # the header timeout, and room for a loaded machine
        for sock in stalled:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = sock.recv(100)
            except ConnectionResetError:
                continue
            except TimeoutError:
                raise AssertionError("a stalled request was kept past the header timeout") from None
            assert data == b"" or data.startswith(b"HTTP/1.1 4"), data
        record("hostile", "300 stalled http: all closed after (s)", time.monotonic() - started)
    finally:
        for sock in stalled:
            sock.close()
        server.stop()


def rate_limited(tmp_path: Path, zone: str, rate: int) -> ServerProcess:
    """A node rate limiting at `rate` a second with a burst of one second's worth, no slip,
    loopback not exempt, and no checker."""
    return ServerProcess(
        write_zones(tmp_path / "zones", {"z.yaml": zone}),
        tmp_path / "data",
        "--no-checker",
        *("--rrl-rate", str(rate), "--rrl-window", "1", "--rrl-slip", "0"),
        *("--rrl-exempt", "192.0.2.255/32"),  # so that loopback is not exempt
    )


def test_random_names_under_a_wildcard_share_the_rate_limit(tmp_path: Path) -> None:
    server = rate_limited(tmp_path, ZONE, 10)
    try:
        full = 0
        started = time.monotonic()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((ATTACKER, 0))
            sock.settimeout(0.5)
            for i in range(400):
                sock.sendto(
                    query(f"r{i}x.wild.hostile.example", "TXT").to_wire(),
                    (server.host, server.port),
                )
            try:
                while True:
                    reply = dns.message.from_wire(sock.recv(4096))
                    full += bool(reply.answer)
            except TimeoutError:
                pass
        took = time.monotonic() - started
        # The burst (rate x window) and what the rate refilled while they were sent.
        assert full <= 10 + 10 * took + 1, (full, took)
        record("hostile", "400 wildcard names at 10/s: full answers", full)
        record("hostile", "400 wildcard names at 10/s: allowed", 10 + 10 * took + 1)
    finally:
        server.stop()


def test_a_generate_bomb_is_refused_at_once_while_dns_answers(tmp_path: Path) -> None:
    server = ServerProcess(
        write_zones(tmp_path / "zones", {"z.yaml": ZONE}),
        tmp_path / "data",
        "--no-checker",
        "--api-tokens",
        str(tokens(tmp_path)),
    )
    try:
        http = Http(*server.http[0], TOKEN)
        bomb = {
            "soa": {"mname": "ns1", "rname": "hostmaster.bomb.example."},
            "records": "@ NS ns1\n$GENERATE 1-4294967295 h$ A 10.0.0.1\n",
        }
        started = time.monotonic()
        reply = http("PUT", "/api/v1/zones/bomb.example", bomb)
        took = time.monotonic() - started
        assert reply.status == 422 and "the limit is 65536" in reply.json["message"]
        assert took < 1.0, took
        record("hostile", "$GENERATE bomb: refused in (s)", took)
        answer = dns.query.udp(
            query("www.hostile.example"), server.host, port=server.port, timeout=2
        )
        assert answer.answer
        assert server.proc.poll() is None
    finally:
        server.stop()


def test_the_embedded_redis_dies_with_a_node_killed_outright(tmp_path: Path) -> None:
    server = ServerProcess(
        write_zones(tmp_path / "zones", {"z.yaml": ZONE}), tmp_path / "data", "--no-checker"
    )
    pid = int(server.wait_for_event("embedded redis started")[0]["pid"])  # type: ignore[call-overload]
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie of an exited child is gone too: its state says so.
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].startswith("Z")

    until(gone)
    server.stop()


def test_the_data_directory_and_its_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(write_zones(tmp_path / "zones", {"z.yaml": ZONE}), data, "--no-checker")
    try:
        server.wait_for_event("redis synced")
        assert os.stat(data).st_mode & 0o777 == 0o700
        files = [p for p in data.rglob("*") if p.is_file()]
        assert files
        for path in files:
            assert os.stat(path).st_mode & 0o077 == 0, f"{path} is readable by others"
    finally:
        server.stop()


def test_a_browser_sent_another_name_is_turned_away(tmp_path: Path) -> None:
    """DNS rebinding: a page on an attacker's name that resolves to us must not read it."""
    server = ServerProcess(
        write_zones(tmp_path / "zones", {"z.yaml": ZONE}), tmp_path / "data", "--no-checker"
    )
    try:
        host, port = server.http[0]
        for name, status in (("evil.example", 421), (f"127.0.0.1:{port}", 200), ("localhost", 200)):
            request = urllib.request.Request(
                f"http://{host}:{port}/healthz", headers={"Host": name}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as reply:
                    got = reply.status
            except urllib.error.HTTPError as e:
                got = e.code
            assert got == status, name
    finally:
        server.stop()


def test_dns_cookies_are_shared_by_the_nodes_of_a_cluster(tmp_path: Path) -> None:
    from tests.test_redis_state import RedisServer, free_port

    backing = RedisServer(tmp_path, free_port())
    backing.start()
    url = f"redis://127.0.0.1:{backing.port}/0"
    writer = ServerProcess(
        write_zones(tmp_path / "zones", {"z.yaml": ZONE}),
        tmp_path / "writer",
        "--redis",
        url,
        "--no-checker",
    )
    other = ServerProcess(None, None, "--redis", url, role="dns")
    try:
        until(
            lambda: bool(
                dns.query.udp(
                    query("www.hostile.example"), other.host, port=other.port, timeout=2
                ).answer
            ),
            10,
        )
        client = b"\x42" * 8

        def cookie_from(node: ServerProcess, server: bytes = b"") -> bytes:
            message = query("www.hostile.example")
            message.use_edns(0, options=[dns.edns.CookieOption(client, server)])
            reply = dns.query.udp(message, node.host, port=node.port, timeout=2)
            found = next(o for o in reply.options if o.otype == 10)
            assert found.client == client  # type: ignore[attr-defined]
            return found.server  # type: ignore[attr-defined,no-any-return]

        first = cookie_from(writer)
        assert len(first) == 16 and first[0] == 1  # RFC 9018 version 1
        # The other node honours it (sends it back as it is, not a new one): one secret.
        assert cookie_from(other, first) == first
        # A cookie that is not one of ours is replaced by one that is.
        forged = b"\x01\x00\x00\x00" + b"\x00" * 12
        replaced = cookie_from(other, forged)
        assert replaced != forged and cookie_from(writer, replaced) == replaced
    finally:
        other.stop()
        writer.stop()
        backing.kill()


def _answered(server: ServerProcess) -> bool:
    reply = dns.query.udp(query("www.hostile.example"), server.host, port=server.port, timeout=2)
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)


def _stored_zones(port: int) -> set[str]:
    import redis

    try:
        found = redis.Redis(port=port, socket_timeout=1).smembers("gslb:zone-list")
    except redis.RedisError:
        return set()
    return {z.decode() for z in found}  # type: ignore[union-attr]


def _node(tmp_path: Path, url: str) -> ServerProcess:
    """A node serving the hostile zone from its file, on the Redis at `url`."""
    zones = write_zones(tmp_path / "zones", {"z.yaml": ZONE})
    return ServerProcess(zones, tmp_path / "data", "--redis", url, "--no-checker")


def test_an_external_redis_restarted_empty_gets_the_zone_files_again(tmp_path: Path) -> None:
    """Finding 11: after an empty restart, nodes answered REFUSED for their zone-file zones
    until someone sent SIGHUP. Now the node stores them again, answering from its last
    snapshot meanwhile."""
    from tests.test_redis_state import RedisServer, free_port

    port = free_port()
    (tmp_path / "before").mkdir()
    backing = RedisServer(tmp_path / "before", port)
    backing.start()
    server = _node(tmp_path, f"redis://127.0.0.1:{port}/0")
    try:
        server.wait_for_event("redis synced")
        assert _stored_zones(port) == {"hostile.example"}
        backing.kill()
        assert _answered(server)  # Redis down: the snapshot answers
        (tmp_path / "after").mkdir()
        empty = RedisServer(tmp_path / "after", port)  # same address, nothing in it
        empty.start()
        backing = empty
        answers: list[bool] = []

        def stored_again() -> bool:
            answers.append(_answered(server))
            return _stored_zones(port) == {"hostile.example"}

        until(stored_again)
        server.wait_for_event("zone file stored", count=2)
        assert all(answers), "a query went unanswered while the zone files were stored again"
        assert server.events(
            "the shared state went back (redis restarted empty, or from an old copy): "
            "storing the zone files again"
        )
        assert _answered(server)
    finally:
        server.stop()
        backing.kill()


def test_a_redis_emptied_under_a_live_connection_gets_the_zone_files_again(
    tmp_path: Path,
) -> None:
    """The same without a reconnection to notice it by: FLUSHALL, or a failover to an empty
    replica behind a proxy. The epoch the node read is gone."""
    import redis

    from tests.test_redis_state import RedisServer, free_port

    port = free_port()
    backing = RedisServer(tmp_path, port)
    backing.start()
    server = _node(tmp_path, f"redis://127.0.0.1:{port}/0")
    try:
        server.wait_for_event("redis synced")
        redis.Redis(port=port).flushall()
        server.wait_for_event("the shared state went away under this connection", timeout=30)
        until(lambda: _stored_zones(port) == {"hostile.example"})
        assert _answered(server)
    finally:
        server.stop()
        backing.kill()


def test_a_redis_refusing_the_password_is_logged_as_such_and_the_password_is_not(
    tmp_path: Path,
) -> None:
    """Finding 9: an authentication failure read as 'unreachable', and a password given as
    ?password= was logged in clear."""
    from tests.test_redis_state import RedisServer, free_port

    port = free_port()
    backing = RedisServer(tmp_path, port, "--requirepass", "the-right-one")
    backing.start()
    server = _node(tmp_path, f"redis://127.0.0.1:{port}/0?password=Wr0ng-Secret")
    try:
        refused = server.wait_for_event(
            "redis refused our credentials (check the password in the Redis URL); "
            "answering from the last snapshot"
        )
        assert refused
        assert not server.events("redis unreachable, answering from the last snapshot")
        logged = json.dumps(server.lines)
        assert "Wr0ng-Secret" not in logged
        assert f"127.0.0.1:{port}" in logged  # the URL is logged, redacted
    finally:
        server.stop()
        backing.kill()


COLD = """\
zone: cold.example
soa: {mname: ns1, rname: hostmaster.cold.example.}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
monitors:
  web: {type: tcp, port: 9}
pools:
  www:
    monitor: web
    cold_start_wait: 3
    members:
      - {address: 127.10.9.10}
"""


def test_queries_held_for_a_cold_start_are_rate_limited_too(tmp_path: Path) -> None:
    """Finding 3: while a pool waits for its first health results its queries are held,
    and were all answered when the wait ended, past the rate limit: a window for a flood."""
    # No checker: no results ever come, and every query waits the whole cold start.
    server = rate_limited(tmp_path, COLD, 5)
    try:
        full = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((ATTACKER, 0))
            started = time.monotonic()
            for _ in range(60):
                sock.sendto(query("www.cold.example").to_wire(), (server.host, server.port))
            sock.settimeout(6)  # the 3 s wait, and room
            try:
                while True:
                    full += bool(dns.message.from_wire(sock.recv(4096)).answer)
                    sock.settimeout(1)
            except TimeoutError:
                pass
        assert time.monotonic() - started >= 3, "they were held"
        assert 1 <= full <= 5 + 1, full  # the burst, not sixty
        record("hostile", "60 queries held for a cold start at 5/s: answered", full)
    finally:
        server.stop()
