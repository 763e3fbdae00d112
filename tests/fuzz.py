"""A fuzz target for the whole answer path: `python -m tests.fuzz [COUNT] [SEED]` (`make fuzz`).

Valid queries (names in and out of the zones, pools with location and rotation, EDNS with
Client Subnet, NSID, DO, DNS Cookies, odd sizes, other opcodes) are mutated at random — bytes
flipped, inserted, cut, counts and lengths rewritten, options spliced — and each result goes
through `handle()` (UDP and TCP), the UDP front (`answer_udp`), and what rate limiting asks of
a query and its reply (its cookie, the response's identity). A finding is any exception, a
reply that is not a well-formed DNS message, a SERVFAIL (the handler's mark of an internal
error), or a UDP reply larger than the query allowed (512 octets, or its EDNS size).
"""

from __future__ import annotations

import dataclasses
import random
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.edns
import dns.message
import dns.rcode

from gslb.core import cookies, rrl
from gslb.core.answer import Client, bad_cookie, cookie_status, handle
from gslb.core.front import Front, answer_udp
from gslb.core.replycache import ReplyCache
from gslb.core.snapshot import Snapshot
from tests.helpers import CORE_ZONE, snapshot_of, write_zones

POOL_ZONE = """\
zone: pools.example
soa: {mname: ns1, rname: hostmaster.pools.example.}
records: |
  @     NS    ns1
  ns1   A     192.0.2.53
isps:
  isp-a: [192.0.2.0/24]
  isp-b: [198.51.100.0/24]
sites:
  lon: {lat: 51.5, lon: -0.1}
  nyc: {lat: 40.7, lon: -74.0}
pools:
  www:
    policy: [health, proximity, isp_interleave, limit]
    members:
      - {address: 192.0.2.10, site: lon}
      - {address: 198.51.100.10, site: nyc}
  rr:
    policy: [health, round_robin, sticky, limit]
    max_answers: 1
    members:
      - {address: 192.0.2.20}
      - {address: 192.0.2.21}
  v6:
    type: AAAA
    members:
      - {address: "2001:db8::1"}
"""

NAMES = [
    "www.gslb.example.com",
    "alias.gslb.example.com",
    "x.wild.gslb.example.com",
    "nothing.gslb.example.com",
    "gslb.example.com",
    "deep.a.b.gslb.example.com",
    "www.pools.example",
    "rr.pools.example",
    "v6.pools.example",
    "pools.example",
    "www.example.org",
    "child.gslb.example.com",
]
TYPES = ["A", "AAAA", "ANY", "MX", "TXT", "SOA", "NS", "CNAME", "DS", "SRV", "TYPE65280"]
SECRETS = cookies.Secrets(b"\x11" * 16, b"\x22" * 16, b"\x33" * 16)
CLIENT_COOKIE = b"\x42" * 8


def seeds(rng: random.Random) -> list[bytes]:
    out = []
    for name in NAMES:
        for rdtype in TYPES:
            message = dns.message.make_query(name, rdtype)
            out.append(message.to_wire())
            options: list[dns.edns.Option] = [dns.edns.ECSOption("81.2.69.0", 24)]
            if rng.random() < 0.5:
                options.append(dns.edns.GenericOption(dns.edns.NSID, b""))
            message.use_edns(0, payload=rng.choice([512, 1232, 4096, 65535]), options=options)
            message.want_dnssec(rng.random() < 0.5)
            out.append(message.to_wire())
            # DNS Cookies: a client cookie alone, and one with a server cookie of ours.
            server = rng.choice((b"", cookies.make(SECRETS, CLIENT_COOKIE, "198.51.100.7", 0)))
            message.use_edns(0, options=[dns.edns.CookieOption(CLIENT_COOKIE, server)])
            out.append(message.to_wire())
    for opcode in (1, 2, 4, 5, 6, 15):  # IQUERY, STATUS, NOTIFY, UPDATE, DSO, unassigned
        message = dns.message.make_query("gslb.example.com", "SOA")
        message.set_opcode(opcode)
        wire = message.to_wire()
        out += [wire, wire[:4] + b"\x00\x00" + wire[6:12]]  # with QDCOUNT 0 too
    return out


def mutate(wire: bytes, rng: random.Random) -> bytes:
    data = bytearray(wire)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(8)
        if kind == 0 and data:  # flip a byte
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:  # insert bytes
            at = rng.randrange(len(data) + 1)
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 2 and len(data) > 1:  # cut
            del data[rng.randrange(len(data)) :]
        elif kind == 3 and len(data) >= 12:  # rewrite a count
            struct.pack_into("!H", data, rng.choice((4, 6, 8, 10)), rng.choice((0, 1, 2, 0xFFFF)))
        elif kind == 4 and len(data) >= 4:  # flags: opcode, QR, rcode
            struct.pack_into("!H", data, 2, rng.randrange(0x10000))
        elif kind == 5:  # an option spliced in at the end
            code = rng.choice((3, 8, 10, 12, rng.randrange(0x10000)))
            body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 12)))
            data += struct.pack("!HH", code, rng.choice((len(body), rng.randrange(64)))) + body
        elif kind == 6 and len(data) > 13:  # a label length made wrong
            data[12] = rng.choice((0, 63, 64, 0xC0, 0xC0 | 12, 255))
        elif kind == 7:  # duplicate a slice
            a = rng.randrange(len(data) + 1)
            b = rng.randrange(a, min(len(data), a + 20) + 1)
            data[b:b] = data[a:b]
    return bytes(data)


def allowed_size(wire: bytes) -> int:
    try:
        query = dns.message.from_wire(wire)
    except Exception:
        return 512
    return max(512, query.payload) if query.edns >= 0 else 512


def check(wire: bytes, reply: bytes | None, udp: bool) -> str | None:
    if reply is None or reply == b"":
        return None
    try:
        message = dns.message.from_wire(reply)
    except Exception as e:
        return f"malformed reply ({e})"
    if message.rcode() == dns.rcode.SERVFAIL:
        return "SERVFAIL: an internal error"
    if udp and len(reply) > allowed_size(wire):
        return f"UDP reply of {len(reply)} octets, more than the query allows"
    return None


def example_snapshot() -> Snapshot:
    """The zones above, with cookie secrets, as a node would serve them."""
    base = Path(tempfile.mkdtemp()) / "zones"
    snapshot = snapshot_of(write_zones(base, {"core.yaml": CORE_ZONE, "pools.yaml": POOL_ZONE}))
    return dataclasses.replace(snapshot, cookies=SECRETS)


@dataclass
class Target:
    """Everything one input goes through, with the caches a process keeps between queries."""

    snapshot: Snapshot
    cache: ReplyCache = field(default_factory=ReplyCache)
    udp_cache: ReplyCache = field(default_factory=ReplyCache)
    front: Front = field(default_factory=Front)

    def probe(self, wire: bytes, client: str) -> str | None:
        """What is wrong with how `wire` from `client` is answered (None: nothing)."""
        snapshot = self.snapshot
        try:
            reply = handle(wire, Client(client, 53, False), snapshot, self.cache)
            problem = check(wire, reply, True)
            problem = problem or check(
                wire, handle(wire, Client(client, 53, True), snapshot, self.cache), False
            )
            problem = problem or check(
                wire, answer_udp(wire, client, snapshot, self.udp_cache, self.front), True
            )
            # What rate limiting reads of a query it would limit: never an exception.
            cookie_status(wire, client, snapshot)
            problem = problem or check(wire, bad_cookie(wire, client, snapshot), True)
            if reply:
                rrl.identity(wire, reply, snapshot)
        except Exception as e:  # none of these may raise, whatever the input
            problem = f"raised {type(e).__name__}: {e}"
        return problem


def run(count: int, seed: int = 1, snapshot: Snapshot | None = None) -> list[tuple[bytes, str]]:
    rng = random.Random(seed)
    target = Target(snapshot or example_snapshot())
    base_seeds = seeds(rng)
    findings: list[tuple[bytes, str]] = []
    for i in range(count):
        wire = mutate(rng.choice(base_seeds), rng)
        client = f"198.51.100.{i % 256}" if i % 3 else f"2001:db8::{i % 65536:x}"
        problem = target.probe(wire, client)
        if problem:
            findings.append((wire, problem))
    return findings


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else int(time.time())
    started = time.monotonic()
    findings = run(count, seed)
    took = time.monotonic() - started
    print(
        f"{count} mutated queries (seed {seed}), each through UDP, TCP and the UDP front, "
        f"in {took:.0f} s: {len(findings)} findings"
    )
    for wire, problem in findings[:20]:
        print(f"  {problem}: {wire.hex()}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
