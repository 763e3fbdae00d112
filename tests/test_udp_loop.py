"""The compiled UDP loop (gslb/shell/_udploop.c) answers exactly as the Python loop does.

Two real servers on the same zones, one with the compiled loop and one with
GSLB_UDP_LOOP=python, get the same datagrams in the same order from the same socket; every
reply must be the same octets (IDs, letter case, rotation order, rate limiting's drops and
slips, truncation, FORMERR), and both count the same queries in /metrics."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator

import dns.edns
import dns.message
import pytest

from gslb.shell import transport
from tests import fuzz
from tests.geoip_fixtures import LONDON, NEW_YORK, write_city
from tests.helpers import write_zones
from tests.server import ServerProcess
from tests.test_metrics import scrape, value

MARKERS = 700
ZONE = f"""\
zone: loop.example
soa: {{mname: ns1, rname: hostmaster.loop.example.}}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
  www   A     192.0.2.10
  big   TXT   "{"x" * 200}" "{"y" * 200}" "{"z" * 200}"
{"".join(f"  m{i}   A     192.0.2.{i % 250 + 1}{chr(10)}" for i in range(MARKERS))}\
sites:
  lon: {{lat: 51.5, lon: -0.13}}
  nyc: {{lat: 40.7, lon: -74.0}}
pools:
  rr:
    policy: [round_robin, limit]
    max_answers: 2
    members:
      - {{address: 192.0.2.21}}
      - {{address: 192.0.2.22}}
      - {{address: 192.0.2.23}}
  near:
    policy: [proximity, limit]
    max_answers: 1
    members:
      - {{address: 192.0.2.30, site: lon}}
      - {{address: 198.51.100.30, site: nyc}}
"""


def test_the_compiled_loop_is_built_here() -> None:
    # The suite runs the servers below on it: a machine that could not build it must say so
    # here, not pass by comparing the Python loop with itself.
    assert transport.UDP_LOOP == "compiled", (
        "gslb/shell/_udploop.c was not built: make test installs a C compiler and the Python "
        "headers (tests/system-deps.sh) and pip builds it; rebuild with `make clean test`"
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    root = tmp_path_factory.mktemp("udploop")
    zones = write_zones(root / "zones", {"z.yaml": ZONE})
    city = write_city(root / "city.mmdb")
    # Loopback is exempt by default: another network is, so rate limiting works on these.
    flags = (
        "--geoip",
        str(city),
        "--rrl-exempt",
        "192.0.2.0/24",
        "--rrl-rate",
        "0.01",
        "--rrl-window",
        "500",
    )
    started = []
    try:
        for loop in ("compiled", "python"):
            data = root / f"data-{loop}"
            started.append(
                ServerProcess(
                    zones,
                    data,
                    *flags,
                    dns=("127.0.0.1:0", "[::1]:0"),
                    env={"GSLB_UDP_LOOP": loop},
                )
            )
        yield started
    finally:
        for server in started:
            server.stop()


def datagrams() -> Iterator[bytes]:
    def make(name: str, rdtype: str = "A", qid: int = 1, **kw: object) -> bytes:
        message = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
        message.id = qid
        return message.to_wire()

    for i in range(40):
        yield make("www.loop.example", qid=i)
        yield make("WwW.LoOp.ExAmPlE", qid=i, use_edns=0, payload=1232)
        yield make("rr.loop.example", qid=i)
        yield make("near.loop.example", qid=i)  # no subnet: kept per resolver address
        subnet = LONDON if i % 2 else NEW_YORK
        option = dns.edns.ECSOption(subnet, 24)
        yield make("near.loop.example", qid=i, use_edns=0, options=[option])
        if i % 10 == 0:
            yield make("big.loop.example", "TXT", qid=i)  # over 512 octets: truncated
            yield make(f"nothing{i}.loop.example", qid=i)  # NXDOMAIN
            yield b"\x00\x07\x01\x00\x00\x01"  # too short: silence, never a crash
            yield make("www.loop.example", "AAAA", qid=i)  # NODATA


def exchange(server: ServerProcess, sent: list[bytes], ipv6: bool = False) -> list[bytes | None]:
    """The reply to each datagram, or None when none came. Each datagram is followed by a
    marker (a name of its own, so never rate limited): the marker's reply comes after any
    reply to the datagram before it, so it says that one got none, without a clock."""
    out: list[bytes | None] = []
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(10)  # a lost datagram fails the test, it does not pace it
        sock.connect(server.dns[1] if ipv6 else server.dns[0])
        for n, wire in enumerate(sent):
            marker = dns.message.make_query(f"m{n}.loop.example", "A")
            marker.id = 0xFFFF - n
            mark = marker.to_wire()
            sock.send(wire)
            sock.send(mark)
            reply = None
            while True:
                got = sock.recv(65535)
                if got[:2] == mark[:2] and got[12 : len(mark)] == mark[12:]:
                    break
                assert reply is None, "two replies to one datagram"
                reply = got
            out.append(reply)
    return out


@pytest.mark.parametrize("ipv6", [False, True], ids=["ipv4", "ipv6"])
def test_both_loops_give_the_same_replies(servers: list[ServerProcess], ipv6: bool) -> None:
    sent = list(datagrams())
    compiled, python = (exchange(server, sent, ipv6) for server in servers)
    assert compiled == python  # octet for octet, and the same ones missing
    answered = [r for r in compiled if r is not None]
    assert len(answered) > len(sent) // 2
    assert None in compiled  # rate limiting dropped some (and slipped others)
    slipped = [r for r in answered if r[2] & 0x02 and r[6:8] == b"\x00\x00"]  # TC, empty
    assert slipped
    # Counted alike, by type and code, and timed alike (one query in 8).
    counts = [
        {k: v for k, v in scrape(server).items() if k[0].startswith("gslb_dns_answer")}
        for server in servers
    ]
    by_code = [{k: v for k, v in c.items() if k[0] == "gslb_dns_answers_total"} for c in counts]
    assert by_code[0] == by_code[1]
    assert value(counts[0], "gslb_dns_answers_total", transport="udp", qtype="A", rcode="NOERROR")
    timed = [value(c, "gslb_dns_answer_seconds_count", transport="udp") for c in counts]
    assert timed[0] == timed[1] > 0


def without_cookies(reply: bytes | None) -> object:
    """A reply with its DNS Cookie taken out: each server makes its own (its secret, its
    clock); everything else must match."""
    if reply is None:
        return None
    try:
        message = dns.message.from_wire(reply)
    except Exception:
        return reply
    if message.edns < 0 or not any(o.otype == dns.edns.COOKIE for o in message.options):
        return reply
    message.use_edns(
        message.edns,
        message.ednsflags,
        message.payload,
        options=[o for o in message.options if o.otype != dns.edns.COOKIE],
    )
    return message.to_wire()


def test_mutated_datagrams_get_the_same_replies_from_both_loops(
    servers: list[ServerProcess],
) -> None:
    # make fuzz's mutations of the datagrams above, each sent twice: the second time from the
    # front wherever the front keeps it. Nothing may crash or stop either loop, and both say
    # the same (a malformed one gets FORMERR or silence from both).
    rng = random.Random(20261207)
    base = list(datagrams())
    sent = []
    for _ in range(300):
        wire = fuzz.mutate(rng.choice(base), rng)
        sent += [wire, wire]
    compiled, python = (exchange(server, sent) for server in servers)
    assert [without_cookies(r) for r in compiled] == [without_cookies(r) for r in python]
    assert sum(r is not None for r in compiled) > len(sent) // 4
