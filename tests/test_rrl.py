"""Response rate limiting (issue 8: amplification and abuse; its counters are issue 9's)."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import pytest

from gslb.core.answer import Client, handle
from gslb.core.cookies import Secrets
from gslb.core.snapshot import Snapshot
from gslb.shell.rrl import Limiter, RrlConfig, truncated
from tests.api_client import Http
from tests.helpers import query, snapshot_of, write_zones
from tests.server import ServerProcess
from tests.test_metrics import scrape, value
from tests.test_redis_state import until

ZONE = """\
zone: rrl.example
soa: {mname: ns1, rname: hostmaster.rrl.example.}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
  www   A     192.0.2.10
  big   TXT   "a fairly long text record, the kind an amplifier would like to send, and again"
  *.wild TXT  "a fairly long text record, the kind an amplifier would like to send, and again"
  child NS    ns.elsewhere.example.
"""


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    return snapshot_of(write_zones(tmp_path_factory.mktemp("rrl") / "zones", {"z.yaml": ZONE}))


def answered(snapshot: Snapshot, message: dns.message.Message) -> bytes:
    reply = handle(message.to_wire(), Client("198.51.100.7", 1), snapshot)
    assert reply is not None
    return reply


def reply_of(message: dns.message.Message, rcode: int = 0) -> bytes:
    reply = dns.message.make_response(message)
    reply.set_rcode(rcode)
    return reply.to_wire()


def test_identical_responses_beyond_the_rate_are_dropped_or_slipped(snapshot: Snapshot) -> None:
    limiter = Limiter(RrlConfig(rate=5, window=2, slip=2, exempt=()))
    message = query("www.rrl.example")
    wire, reply = message.to_wire(), answered(snapshot, message)
    outcomes = [limiter.check(wire, "198.51.100.7", reply, snapshot, 100.0) for _ in range(30)]
    assert outcomes[:10] == [reply] * 10  # the burst: rate x window
    rest = outcomes[10:]
    assert rest.count(None) == 10 and sum(1 for r in rest if r and r != reply) == 10
    slipped = dns.message.from_wire(next(r for r in rest if r and r != reply))
    assert slipped.flags & dns.flags.TC and not slipped.answer and slipped.id == message.id
    assert len(truncated(wire)) <= len(wire)  # no amplification in a slip
    # Time refills the budget at the rate; other networks and other questions have their own.
    assert limiter.check(wire, "198.51.100.7", reply, snapshot, 100.2) == reply
    assert limiter.check(wire, "203.0.113.1", reply, snapshot, 100.2) == reply
    other = query("ns1.rrl.example")
    out = limiter.check(other.to_wire(), "198.51.100.7", answered(snapshot, other), snapshot, 100.2)
    assert out is not None
    assert limiter.stats.limited == 20


@pytest.mark.parametrize(
    ("names", "rdtype"),
    [
        (lambda i: f"r{i}.rrl.example", "A"),  # NXDOMAIN: one budget per zone
        (lambda i: f"x{i}.wild.rrl.example", "TXT"),  # a wildcard's answers: one per wildcard
        (lambda i: f"h{i}.child.rrl.example", "A"),  # referrals: one per delegation point
        (lambda i: "www.rrl.example", "AAAA"),  # NODATA: one per zone
        (lambda i: f"x{i}.wild.rrl.example", "MX"),  # NODATA from a wildcard: the zone
    ],
)
def test_random_names_share_one_budget_per_network(
    snapshot: Snapshot, names: Callable[[int], str], rdtype: str
) -> None:
    """Found by the security review: random names under a wildcard, under a delegation, or
    that do not exist, each counted as a response of their own: 400 of 400 answered."""
    limiter = Limiter(RrlConfig(rate=1, window=3, slip=0, exempt=()))
    sent = 0
    for i in range(10):  # ten different names from one /24
        message = query(names(i), rdtype)
        out = limiter.check(
            message.to_wire(), f"198.51.100.{i}", answered(snapshot, message), snapshot, 50.0
        )
        sent += out is not None
    assert sent == 3


def test_what_a_reply_is_counted_as_follows_the_snapshot(tmp_path: Path) -> None:
    """The limiter keeps what each question was counted as, per snapshot version: a name made
    from a wildcard shares the wildcard's budget, and once a new snapshot gives it records of
    its own, it has its own budget (same question, same reply header, another identity)."""
    before = snapshot_of(write_zones(tmp_path / "v1", {"z.yaml": ZONE}), version=1)
    after = snapshot_of(
        write_zones(tmp_path / "v2", {"z.yaml": ZONE + '  b.wild TXT "its own"\n'}), version=2
    )
    limiter = Limiter(RrlConfig(rate=1, window=1, slip=0, exempt=()))

    def sent(name: str, snapshot: Snapshot) -> bool:
        message = query(name, "TXT")
        reply = answered(snapshot, message)
        return limiter.check(message.to_wire(), "198.51.100.7", reply, snapshot, 50.0) is not None

    assert sent("a.wild.rrl.example", before)
    assert not sent("b.wild.rrl.example", before), "the wildcard's budget is spent"
    assert sent("b.wild.rrl.example", after), "now a name of its own, with its own budget"


def test_a_name_with_a_zero_octet_in_a_label_is_limited_like_the_others(
    snapshot: Snapshot,
) -> None:
    """Found by `make fuzz`: the question's name was cut at its first zero octet, and a
    label holding one (a valid name: `x\000y`) made the limiter raise instead of count."""
    limiter = Limiter(RrlConfig(rate=1, window=2, slip=0, exempt=()))
    sent = 0
    for i in range(6):
        wire = query(f"x{i}.wild.rrl.example", "TXT").to_wire()
        wire = wire.replace(b"\x02x" + str(i).encode(), b"\x03x\x00" + str(i).encode())
        reply = handle(wire, Client("198.51.100.7", 1), snapshot)
        assert reply is not None and dns.message.from_wire(reply).answer  # the wildcard's
        sent += limiter.check(wire, "198.51.100.7", reply, snapshot, 10.0) is not None
    assert sent == 2  # one budget: the wildcard's


def test_a_limited_update_with_a_cookie_gets_no_badcookie(snapshot: Snapshot) -> None:
    """Found by `make fuzz`: BADCOOKIE was made for any limited query with a client cookie,
    an UPDATE too, and came out as an UPDATE reply with a question: malformed."""
    limiter = Limiter(RrlConfig(rate=1, window=1, slip=0, exempt=()))
    cookied = Secrets(b"\x11" * 16, None, None)
    snapshot = dataclasses.replace(snapshot, cookies=cookied)
    message = query("www.rrl.example", "SOA")
    message.set_opcode(dns.opcode.UPDATE)
    message.use_edns(0, options=[dns.edns.CookieOption(b"\x42" * 8, b"")])
    wire = message.to_wire()
    reply = handle(wire, Client("198.51.100.7", 1), snapshot)
    assert reply is not None and dns.message.from_wire(reply).rcode() == dns.rcode.NOTIMP
    outs = [limiter.check(wire, "198.51.100.7", reply, snapshot, 5.0) for _ in range(5)]
    assert outs[0] == reply and outs[1:] == [None] * 4  # dropped, not a broken BADCOOKIE
    assert limiter.stats.badcookie == 0


def test_an_ipv6_network_is_a_56(snapshot: Snapshot) -> None:
    limiter = Limiter(RrlConfig(rate=1, window=3, slip=0, exempt=()))
    v6 = query("www.rrl.example")
    reply = answered(snapshot, v6)
    answers = [
        limiter.check(v6.to_wire(), f"2001:db8:0:1{i}::1", reply, snapshot, 50.0) for i in range(6)
    ]
    assert answers.count(None) == 3  # 2001:db8:0:10::/64 .. :15:: share one /56


def test_exempt_networks_are_never_limited(snapshot: Snapshot) -> None:
    limiter = Limiter(RrlConfig(rate=1, window=1, exempt=("192.0.2.0/24",)))
    message = query("www.rrl.example")
    wire, reply = message.to_wire(), reply_of(message)
    assert all(limiter.check(wire, "192.0.2.9", reply, snapshot, 1.0) == reply for _ in range(100))


def with_cookie(message: dns.message.Message, cookie: bytes) -> dns.message.Message:
    message.use_edns(0, payload=1232, options=[dns.edns.GenericOption(10, cookie)])
    return message


def test_a_client_with_a_valid_cookie_passes_and_one_without_gets_badcookie(
    snapshot: Snapshot,
) -> None:
    """RFC 7873: a valid server cookie proves the client's address, so its queries are not
    limited; a client cookie alone earns BADCOOKIE and a cookie to ask again with."""
    secrets = Secrets(b"s" * 16, b"p" * 16, b"u" * 16)
    snap = dataclasses.replace(snapshot, cookies=secrets)
    limiter = Limiter(RrlConfig(rate=1, window=1, slip=2, exempt=()))
    client_cookie = b"\x01" * 8
    first = with_cookie(query("www.rrl.example"), client_cookie)
    reply = dns.message.from_wire(handle(first.to_wire(), Client("198.51.100.7", 1), snap))  # type: ignore[arg-type]
    cookie = next(o for o in reply.options if o.otype == 10)
    data = cookie.client + cookie.server  # type: ignore[attr-defined]
    assert data[:8] == client_cookie and len(data) == 24
    limited = 0
    for _ in range(5):  # the budget is one: the rest are over it
        message = with_cookie(query("www.rrl.example"), client_cookie)
        wire = message.to_wire()
        out = limiter.check(wire, "198.51.100.7", answered(snap, message), snap, 10.0)
        assert out is not None
        back = dns.message.from_wire(out)
        if back.rcode() == dns.rcode.BADCOOKIE:
            limited += 1
            assert not back.answer and len(out) < 100
    assert limited == 4 and limiter.stats.badcookie == 4
    for _ in range(5):  # with the server cookie it was given: never limited
        message = with_cookie(query("www.rrl.example"), data)
        out = limiter.check(message.to_wire(), "198.51.100.7", answered(snap, message), snap, 10.0)
        assert out is not None and dns.message.from_wire(out).answer
    assert limiter.stats.cookie_passed == 5
    # A server cookie made for another address is not valid for this one.
    message = with_cookie(query("www.rrl.example"), data)
    out = limiter.check(message.to_wire(), "198.51.100.99", answered(snap, message), snap, 10.0)
    assert out is not None and dns.message.from_wire(out).rcode() in (0, dns.rcode.BADCOOKIE)


def test_a_flood_from_one_network_is_limited_over_the_wire(tmp_path: Path) -> None:
    zones = write_zones(tmp_path / "zones", {"z.yaml": ZONE})
    # Loopback is exempt by default; here nothing is, so the test's own address counts.
    server = ServerProcess(
        zones,
        tmp_path / "data",
        "--no-checker",
        "--rrl-rate",
        "10",
        "--rrl-window",
        "1",
        "--rrl-exempt",
        "192.0.2.255/32",
    )
    try:
        wire = query("big.rrl.example", "TXT").to_wire()
        full = truncated_replies = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            for _ in range(200):
                sock.sendto(wire, (server.host, server.port))
            try:
                while True:
                    data = sock.recv(4096)
                    reply = dns.message.from_wire(data)
                    if reply.flags & dns.flags.TC:
                        truncated_replies += 1
                        assert len(data) <= len(wire)
                    else:
                        full += 1
            except TimeoutError:
                pass
        assert 10 <= full <= 20, full  # the burst, and what the rate refilled meanwhile
        assert 80 <= truncated_replies <= 100, truncated_replies  # every other one slipped
        samples = scrape(server)
        assert value(samples, "gslb_rrl_limited_total") == 200 - full
        assert value(samples, "gslb_rrl_slipped_total") == truncated_replies
        # TCP is never limited: the client the slip sent there gets its answer.
        tcp = dns.query.tcp(
            query("big.rrl.example", "TXT"), server.host, port=server.port, timeout=2
        )
        assert tcp.rcode() == dns.rcode.NOERROR and tcp.answer
    finally:
        server.stop()


def test_a_node_with_two_workers_allows_the_rate_once_not_per_worker(tmp_path: Path) -> None:
    """Each worker limits on its own; a flood spread over both (one source port per query,
    as the kernel spreads flows) gets the node's budget once, not once per worker."""
    zones = write_zones(tmp_path / "zones", {"z.yaml": ZONE})
    server = ServerProcess(
        zones,
        tmp_path / "data",
        "--no-checker",
        "--workers",
        "2",
        "--rrl-rate",
        "10",
        "--rrl-window",
        "4",
        "--rrl-slip",
        "0",
        "--rrl-exempt",
        "192.0.2.255/32",
    )
    try:
        token = (tmp_path / "data" / "api-token").read_text().strip()
        http = Http(*server.http[0], token)

        def reporting() -> int:
            nodes = list(http("GET", "/api/v1/nodes").json["nodes"].values())
            return len(nodes[0].get("queries_by_worker", {})) if nodes else 0

        until(lambda: reporting() == 2)  # a worker reports once its sockets are bound
        wire = query("big.rrl.example", "TXT").to_wire()
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(200)]
        full = 0
        try:
            for sock in socks:
                sock.bind(("127.0.0.1", 0))
                sock.sendto(wire, (server.host, server.port))
            for sock in socks:
                sock.settimeout(0.3 if full == 0 else 0.05)
                try:
                    sock.recv(4096)
                    full += 1
                except TimeoutError:
                    pass
        finally:
            for sock in socks:
                sock.close()
        # A burst of 4 s at 10/s, 40, and what refilled while sending; per worker it would
        # have been 80 and more.
        assert 35 <= full <= 60, full
    finally:
        server.stop()
