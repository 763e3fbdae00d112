"""Response rate limiting (issue 8: amplification and abuse; its counters are issue 9's)."""

from __future__ import annotations

import socket
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode

from gslb.shell.rrl import Limiter, RrlConfig, truncated
from tests.helpers import query, write_zones
from tests.server import ServerProcess
from tests.test_metrics import scrape, value

ZONE = """\
zone: rrl.example
soa: {mname: ns1, rname: hostmaster.rrl.example.}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
  www   A     192.0.2.10
  big   TXT   "a fairly long text record, the kind an amplifier would like to send, and again"
"""


def reply_of(message: dns.message.Message, rcode: int = 0) -> bytes:
    reply = dns.message.make_response(message)
    reply.set_rcode(rcode)
    return reply.to_wire()


def test_identical_responses_beyond_the_rate_are_dropped_or_slipped() -> None:
    limiter = Limiter(RrlConfig(rate=5, window=2, slip=2, exempt=()))
    message = query("www.rrl.example")
    wire, reply = message.to_wire(), reply_of(message)
    outcomes = [limiter.check(wire, "198.51.100.7", reply, 100.0) for _ in range(30)]
    assert outcomes[:10] == [reply] * 10  # the burst: rate x window
    rest = outcomes[10:]
    assert rest.count(None) == 10 and sum(1 for r in rest if r and r != reply) == 10
    slipped = dns.message.from_wire(next(r for r in rest if r and r != reply))
    assert slipped.flags & dns.flags.TC and not slipped.answer and slipped.id == message.id
    assert len(truncated(wire)) <= len(wire)  # no amplification in a slip
    # Time refills the budget at the rate; other networks and other questions have their own.
    assert limiter.check(wire, "198.51.100.7", reply, 100.2) == reply
    assert limiter.check(wire, "203.0.113.1", reply, 100.2) == reply
    other = query("ns1.rrl.example")
    assert limiter.check(other.to_wire(), "198.51.100.7", reply_of(other), 100.2) is not None
    assert limiter.stats.limited == 20


def test_one_network_shares_a_budget_and_nxdomains_share_one_per_network() -> None:
    limiter = Limiter(RrlConfig(rate=1, window=3, slip=0, exempt=()))
    sent = 0
    for i in range(10):  # random names, all NXDOMAIN, from one /24
        message = query(f"r{i}.rrl.example")
        out = limiter.check(message.to_wire(), f"198.51.100.{i}", reply_of(message, 3), 50.0)
        sent += out is not None
    assert sent == 3
    v6 = query("www.rrl.example")
    answers = [
        limiter.check(v6.to_wire(), f"2001:db8:0:1{i}::1", reply_of(v6), 50.0) for i in range(6)
    ]
    assert answers.count(None) == 3  # 2001:db8:0:10::/64 .. :15:: share one /56


def test_exempt_networks_are_never_limited() -> None:
    limiter = Limiter(RrlConfig(rate=1, window=1, exempt=("192.0.2.0/24",)))
    message = query("www.rrl.example")
    wire, reply = message.to_wire(), reply_of(message)
    assert all(limiter.check(wire, "192.0.2.9", reply, 1.0) == reply for _ in range(100))


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
