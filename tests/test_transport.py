"""The UDP and TCP listeners of a real `gslb serve` process, driven with dnspython over sockets."""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.helpers import CORE_ZONE, PARENT_ZONE, query, rrset_text, write_zones
from tests.server import ServerProcess

WWW = ["www.gslb.example.com. 30 IN A 192.0.2.10\nwww.gslb.example.com. 30 IN A 198.51.100.10"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("transport")
    zones = write_zones(base / "zones", {"gslb.yaml": CORE_ZONE, "parent.yaml": PARENT_ZONE})
    proc = ServerProcess(
        zones,
        base / "data",
        "--tcp-idle-timeout",
        "1",
        "--tcp-max-connections",
        "20",
        "--nsid",
        "node-a",
        dns=("127.0.0.1:0", "[::1]:0"),
    )
    yield proc
    assert proc.stop() == 0


def tcp_connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=5)


def framed(message: dns.message.Message) -> bytes:
    wire = message.to_wire()
    return struct.pack("!H", len(wire)) + wire


def read_reply(sock: socket.socket) -> dns.message.Message:
    length = struct.unpack("!H", recv_exactly(sock, 2))[0]
    return dns.message.from_wire(recv_exactly(sock, length))


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def test_udp_ipv4_and_ipv6(server: ServerProcess) -> None:
    for host, port in server.dns:
        reply = dns.query.udp(query("www.gslb.example.com"), host, port=port, timeout=5)
        assert reply.rcode() == dns.rcode.NOERROR
        assert rrset_text(reply.answer) == WWW
    assert {h for h, _ in server.dns} == {"127.0.0.1", "::1"}


def test_tcp_ipv4_and_ipv6(server: ServerProcess) -> None:
    for host, port in server.dns:
        reply = dns.query.tcp(query("big.gslb.example.com", "TXT"), host, port=port, timeout=5)
        assert len(reply.answer[0]) == 2


def test_udp_truncates_and_tcp_completes(server: ServerProcess) -> None:
    udp = dns.query.udp(
        query("big.gslb.example.com", "TXT", use_edns=False),
        server.host,
        port=server.port,
        timeout=5,
    )
    assert udp.flags & dns.flags.TC
    tcp = dns.query.tcp(
        query("big.gslb.example.com", "TXT", use_edns=False),
        server.host,
        port=server.port,
        timeout=5,
    )
    assert not tcp.flags & dns.flags.TC and tcp.answer


def test_tcp_pipelined_queries_all_answered(server: ServerProcess) -> None:
    names = [f"q{i}.wild.gslb.example.com" for i in range(20)]
    messages = [query(name) for name in names]
    with tcp_connect(server) as sock:
        sock.sendall(b"".join(framed(m) for m in messages))
        replies = [read_reply(sock) for _ in messages]
    by_id = {r.id: r for r in replies}
    for message in messages:
        assert by_id[message.id].question == message.question


def test_tcp_query_split_across_writes(server: ServerProcess) -> None:
    data = framed(query("www.gslb.example.com"))
    with tcp_connect(server) as sock:
        for byte in data:
            sock.sendall(bytes([byte]))
            time.sleep(0.001)
        assert rrset_text(read_reply(sock).answer) == WWW


def test_tcp_idle_connection_is_closed(server: ServerProcess) -> None:
    with tcp_connect(server) as sock:
        sock.sendall(framed(query("www.gslb.example.com")))
        read_reply(sock)
        started = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(1) == b"", "the server closes an idle connection"
        assert 0.5 < time.monotonic() - started < 4


def test_tcp_connection_cap(server: ServerProcess) -> None:
    held = [tcp_connect(server) for _ in range(20)]
    try:
        time.sleep(0.2)
        extra = tcp_connect(server)
        extra.settimeout(5)
        try:
            extra.sendall(framed(query("www.gslb.example.com")))
            assert extra.recv(2) == b"", "the connection over the cap is closed"
        except ConnectionResetError:
            pass  # closed even before our query: equally refused
        extra.close()
        # UDP is not affected by the TCP cap.
        assert dns.query.udp(
            query("www.gslb.example.com"), server.host, port=server.port, timeout=5
        ).answer
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert dns.query.tcp(
        query("www.gslb.example.com"), server.host, port=server.port, timeout=5
    ).answer


def test_stalled_clients_do_not_stall_others(server: ServerProcess) -> None:
    half = tcp_connect(server)
    half.sendall(framed(query("www.gslb.example.com"))[:5])  # half a message, then nothing
    greedy = tcp_connect(server)
    greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    many = framed(query("big.gslb.example.com", "TXT")) * 2000  # asks, never reads
    greedy.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        greedy.send(many)
    try:
        started = time.monotonic()
        for _ in range(20):
            reply = dns.query.tcp(
                query("www.gslb.example.com"), server.host, port=server.port, timeout=2
            )
            assert rrset_text(reply.answer) == WWW
            reply = dns.query.udp(
                query("www.gslb.example.com"), server.host, port=server.port, timeout=2
            )
            assert rrset_text(reply.answer) == WWW
        assert time.monotonic() - started < 10
    finally:
        half.close()
        greedy.close()


def test_malformed_datagrams_never_stop_the_server(server: ServerProcess) -> None:
    rng = random.Random(7)
    valid = query("www.gslb.example.com").to_wire()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(3000):
            kind = i % 3
            if kind == 0:
                data = rng.randbytes(rng.randrange(0, 300))
            elif kind == 1:  # a valid query with bytes flipped
                data = bytearray(valid)
                for _ in range(rng.randrange(1, 6)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                data = bytes(data)
            else:  # a valid query cut short
                data = valid[: rng.randrange(len(valid))]
            sock.sendto(data, (server.host, server.port))
    assert server.proc.poll() is None, "still running"
    reply = dns.query.udp(query("www.gslb.example.com"), server.host, port=server.port, timeout=5)
    assert rrset_text(reply.answer) == WWW


def test_nsid_over_the_wire(server: ServerProcess) -> None:
    message = query(
        "www.gslb.example.com", use_edns=0, options=[dns.edns.GenericOption(dns.edns.NSID, b"")]
    )
    reply = dns.query.udp(message, server.host, port=server.port, timeout=5)
    assert [o.to_wire() for o in reply.options if o.otype == dns.edns.NSID] == [b"node-a"]


def test_no_log_line_per_query(server: ServerProcess) -> None:
    before = len(server.lines)
    for _ in range(50):
        dns.query.udp(query("www.gslb.example.com"), server.host, port=server.port, timeout=5)
    time.sleep(0.2)
    assert len(server.lines) == before


def test_reload_on_sighup_and_refusal_keeps_running_zones(tmp_path: Path) -> None:
    zones = write_zones(tmp_path / "zones", {"gslb.yaml": CORE_ZONE})
    proc = ServerProcess(zones, tmp_path / "data")
    try:

        def www() -> list[str]:
            reply = dns.query.udp(
                query("www.gslb.example.com"), proc.host, port=proc.port, timeout=5
            )
            return rrset_text(reply.answer)

        def serial() -> int:
            reply = dns.query.udp(
                query("gslb.example.com", "SOA"), proc.host, port=proc.port, timeout=5
            )
            return int(reply.answer[0][0].serial)

        assert www() == WWW
        # "zones reloaded" follows the answers once the node follows Redis; before its first
        # sync it stores the files and says so, and the answers follow at the sync.
        proc.wait_for_event("redis synced")
        changed = CORE_ZONE.replace("198.51.100.10", "198.51.100.11").replace(
            "serial: 2024010101", "serial: 2024010102"
        )
        (zones / "gslb.yaml").write_text(changed)
        proc.signal(signal.SIGHUP)
        proc.wait_for_event("zones reloaded")
        assert "198.51.100.11" in www()[0]
        assert serial() == 2024010102

        (zones / "broken.yaml").write_text(
            "zone: other.test\nsoa: {mname: ns, rname: h}\nrecords: '@ NS ns\n"
        )
        proc.signal(signal.SIGHUP)
        refused = proc.wait_for_event("zone refused, keeping the running zones")
        assert str(refused[0]["error"]).endswith(
            "broken.yaml:4: not valid YAML: found unexpected end of stream"
            " (while scanning a quoted scalar on line 3)"
        )
        assert "198.51.100.11" in www()[0], "still answering from the last good zones"
        assert serial() == 2024010102
    finally:
        assert proc.stop() == 0
    assert proc.events("stopped"), "a clean stop is logged"


def test_bad_zones_at_start_exit_nonzero_with_reason(tmp_path: Path) -> None:
    zones = write_zones(tmp_path / "zones", {"bad.yaml": "zone: a.test\n"})
    with pytest.raises(RuntimeError, match=r"bad.yaml:1: no SOA"):
        ServerProcess(zones, tmp_path / "data")


def test_sigterm_finishes_the_tcp_replies_in_flight_and_exits_cleanly(tmp_path: Path) -> None:
    zones = write_zones(tmp_path / "zones", {"gslb.yaml": CORE_ZONE})
    own = ServerProcess(zones, tmp_path / "data", "--no-checker")
    messages = [query(f"q{i}.wild.gslb.example.com") for i in range(200)]
    with tcp_connect(own) as sock:
        sock.sendall(b"".join(framed(m) for m in messages))
        time.sleep(0.05)  # the queries are in; the replies may still be on their way
        own.signal(signal.SIGTERM)
        replies = [read_reply(sock) for _ in messages]
    assert {r.id for r in replies} == {m.id for m in messages}
    assert own.stop() == 0
    assert own.events("stopped")
    # It no longer accepts anything.
    with pytest.raises(OSError):
        socket.create_connection((own.host, own.port), timeout=1).close()


def test_a_tcp_connection_is_closed_after_its_query_cap(tmp_path: Path) -> None:
    zones = write_zones(tmp_path / "zones", {"gslb.yaml": CORE_ZONE})
    own = ServerProcess(zones, tmp_path / "data", "--no-checker", "--tcp-max-queries", "5")
    try:
        messages = [query(f"q{i}.wild.gslb.example.com") for i in range(8)]
        with tcp_connect(own) as sock:
            sock.sendall(b"".join(framed(m) for m in messages))
            replies = [read_reply(sock) for _ in range(5)]
            sock.settimeout(2)
            assert sock.recv(1) == b""  # closed after the fifth reply
        assert [r.id for r in replies] == [m.id for m in messages[:5]]
    finally:
        own.stop()
